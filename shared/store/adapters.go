package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/seal"
)

// Adapter is a webhook adapter of a workspace (the /webhook/{name} routes). Its name is unique in
// the whole stack, as it is the URL. Secrets are the only secrets (current first, earlier ones
// during a rotation's overlap); they are written and read by encodeSecrets and decodeSecrets alone
// (attribute "secrets", as sources and subscriptions keep theirs, sealed as seal.KindAdapterSecret),
// opened only by LookupAdapter of a store with an opener, and never appear in JSON or logs.
type Adapter struct {
	WorkspaceID     string          `json:"workspace_id"`
	Name            string          `json:"name"`
	Agent           string          `json:"agent"`
	ReplyHosts      []string        `json:"reply_hosts"`
	MaxBodyBytes    int             `json:"max_body_bytes"`
	MaxInFlight     int             `json:"max_in_flight"`
	Approvers       []string        `json:"approvers"`
	LegacyApprovals bool            `json:"legacy_approvals"`
	ReadAllRuns     bool            `json:"read_all_runs"`
	Secrets         []SigningSecret `json:"-"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
}

// String never shows the secrets.
func (a Adapter) String() string { return "store.Adapter{" + a.WorkspaceID + "/" + a.Name + "}" }

// ActiveSecrets returns the secrets that open the adapter at now, current first (unopened sealed
// ones left out).
func (a Adapter) ActiveSecrets(now time.Time) []string { return activeSecrets(a.Secrets, now) }

// ActiveSecretCount is how many secrets open the adapter at now, whether opened or not.
func (a Adapter) ActiveSecretCount(now time.Time) int { return activeSecretCount(a.Secrets, now) }

// Items: pk ADP#<name>, sk ADP (one read finds an adapter by its URL name); gsi1pk WS#<ws>#ADP,
// gsi1sk <name> list a workspace's adapters.
func adapterKey(name string) map[string]types.AttributeValue { return key("ADP#"+name, "ADP") }
func adaptersGSI(ws string) string                           { return "WS#" + ws + "#ADP" }

func adapterNotFound() error { return apierr.New(apierr.NotFound, "adapter not found") }

func boolAttr(b bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: b} }

func adapterSealCtx(ws, name string) seal.Context {
	return seal.Context{Workspace: ws, Kind: seal.KindAdapterSecret, Item: name}
}

// adapterItem is the adapter's item, its secrets sealed when the store has a sealer.
func (st *Store) adapterItem(ctx context.Context, a Adapter, rev int64) (map[string]types.AttributeValue, error) {
	secrets, err := st.encodeSecrets(ctx, adapterSealCtx(a.WorkspaceID, a.Name), a.Secrets)
	if err != nil {
		return nil, err
	}
	item := adapterKey(a.Name)
	item["gsi1pk"], item["gsi1sk"] = s(adaptersGSI(a.WorkspaceID)), s(a.Name)
	item["workspace_id"], item["name"], item["agent"] = s(a.WorkspaceID), s(a.Name), s(a.Agent)
	item["reply_hosts"], item["approvers"] = strList(a.ReplyHosts), strList(a.Approvers)
	item["max_body_bytes"], item["max_in_flight"] = n(int64(a.MaxBodyBytes)), n(int64(a.MaxInFlight))
	item["legacy_approvals"], item["read_all_runs"] = boolAttr(a.LegacyApprovals), boolAttr(a.ReadAllRuns)
	item["secrets"] = secrets
	item["created_at"], item["updated_at"], item["rev"] = ts(a.CreatedAt), ts(a.UpdatedAt), n(rev)
	return item, nil
}

func boolean(item map[string]types.AttributeValue, name string) bool {
	b, _ := item[name].(*types.AttributeValueMemberBOOL)
	return b != nil && b.Value
}

func decodeAdapter(item map[string]types.AttributeValue) Adapter {
	return Adapter{
		WorkspaceID: str(item, "workspace_id"), Name: str(item, "name"), Agent: str(item, "agent"),
		ReplyHosts: append([]string{}, strs(item, "reply_hosts")...), Approvers: append([]string{}, strs(item, "approvers")...),
		MaxBodyBytes: int(num(item, "max_body_bytes")), MaxInFlight: int(num(item, "max_in_flight")),
		LegacyApprovals: boolean(item, "legacy_approvals"), ReadAllRuns: boolean(item, "read_all_runs"),
		Secrets:   decodeSecrets(item),
		CreatedAt: tm(item, "created_at"), UpdatedAt: tm(item, "updated_at"),
	}
}

// CreateAdapter stores a new adapter; a name any workspace uses is a Conflict.
func (st *Store) CreateAdapter(ctx context.Context, a Adapter) (Adapter, error) {
	now := st.now().UTC()
	a.CreatedAt, a.UpdatedAt = now, now
	item, err := st.adapterItem(ctx, a, 1)
	if err != nil {
		return Adapter{}, err
	}
	_, err = st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")})
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		return Adapter{}, apierr.New(apierr.Conflict, "the adapter name %q is taken", a.Name)
	}
	if err != nil {
		return Adapter{}, fmt.Errorf("create adapter %s: %w", a.Name, err)
	}
	return a, nil
}

// PutAdapter stores a seed of the stack's Adapters parameter, replacing the adapter of that name
// whichever workspace holds it: the names the operator's parameter lists are the operator's (a
// workspace could otherwise claim one, "default" included, before the first seed). It returns
// the workspace whose adapter it replaced, if another.
func (st *Store) PutAdapter(ctx context.Context, a Adapter) (string, error) {
	now := st.now().UTC()
	a.CreatedAt, a.UpdatedAt = now, now
	item, err := st.adapterItem(ctx, a, 1)
	if err != nil {
		return "", err
	}
	out, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.table, Item: item, ReturnValues: types.ReturnValueAllOld})
	if err != nil {
		return "", fmt.Errorf("put adapter %s: %w", a.Name, err)
	}
	if old := str(out.Attributes, "workspace_id"); old != a.WorkspaceID {
		return old, nil
	}
	return "", nil
}

// LookupAdapter returns the adapter of that name, whichever workspace holds it, or NotFound; its
// secrets are opened when the store has an opener (the adapter function's).
func (st *Store) LookupAdapter(ctx context.Context, name string) (Adapter, error) {
	a, _, err := st.lookupAdapter(ctx, name)
	if err != nil {
		return Adapter{}, err
	}
	if st.opener != nil {
		if err := st.openSecrets(ctx, adapterSealCtx(a.WorkspaceID, a.Name), a.Secrets); err != nil {
			return Adapter{}, err
		}
	}
	return a, nil
}

func (st *Store) lookupAdapter(ctx context.Context, name string) (Adapter, map[string]types.AttributeValue, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: adapterKey(name), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Adapter{}, nil, fmt.Errorf("get adapter %s: %w", name, err)
	}
	if len(out.Item) == 0 {
		return Adapter{}, nil, adapterNotFound()
	}
	return decodeAdapter(out.Item), out.Item, nil
}

// GetAdapter returns an adapter of the workspace; another workspace's is NotFound.
func (st *Store) GetAdapter(ctx context.Context, ws, name string) (Adapter, error) {
	a, _, err := st.getAdapter(ctx, ws, name)
	return a, err
}

func (st *Store) getAdapter(ctx context.Context, ws, name string) (Adapter, map[string]types.AttributeValue, error) {
	a, item, err := st.lookupAdapter(ctx, name)
	if err == nil && a.WorkspaceID != ws {
		return Adapter{}, nil, adapterNotFound()
	}
	return a, item, err
}

// ListAdapters returns the workspace's adapters by name (through gsi1, so an adapter created a
// moment ago may be missing for a moment).
func (st *Store) ListAdapters(ctx context.Context, ws string) ([]Adapter, error) {
	// gsi1 projects only keys: it gives the adapters' keys, and the items themselves are read from
	// the table, one by one (a workspace has at most 100 of them).
	in := &dynamodb.QueryInput{
		TableName:                 &st.table,
		IndexName:                 aws.String("gsi1"),
		KeyConditionExpression:    aws.String("gsi1pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(adaptersGSI(ws))},
	}
	var keys []map[string]types.AttributeValue
	for p := dynamodb.NewQueryPaginator(st.db, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list adapters: %w", err)
		}
		for _, item := range page.Items {
			keys = append(keys, map[string]types.AttributeValue{"pk": item["pk"], "sk": item["sk"]})
		}
	}
	out := []Adapter{}
	for _, k := range keys {
		res, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: k, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil, fmt.Errorf("list adapters: %w", err)
		}
		if str(res.Item, "workspace_id") == ws { // deleted meanwhile (and maybe taken by another workspace): not ours
			out = append(out, decodeAdapter(res.Item))
		}
	}
	slices.SortFunc(out, func(a, b Adapter) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// UpdateAdapter lets change compute the adapter's next state and writes it back conditioned on
// the revision (and workspace) it read, retrying when another writer came first.
func (st *Store) UpdateAdapter(ctx context.Context, ws, name string, change func(a *Adapter, now time.Time) error) (Adapter, error) {
	for range maxSubscriptionWriteTries {
		cur, curItem, err := st.getAdapter(ctx, ws, name)
		if err != nil {
			return Adapter{}, err
		}
		rev := num(curItem, "rev")
		now := st.now().UTC()
		next := cur
		if err := change(&next, now); err != nil {
			return Adapter{}, err
		}
		next.WorkspaceID, next.Name, next.CreatedAt, next.UpdatedAt = ws, name, cur.CreatedAt, now
		item, err := st.adapterItem(ctx, next, rev+1)
		if err != nil {
			return Adapter{}, err
		}
		if slices.EqualFunc(next.Secrets, cur.Secrets, sameSecret) && !slices.ContainsFunc(cur.Secrets, func(s SigningSecret) bool { return s.sealed == nil }) {
			// Unchanged and sealed: kept as stored. Secrets written in clear before sealing are
			// sealed now (adapterItem's encodeSecrets).
			item["secrets"] = curItem["secrets"]
		}
		_, err = st.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: &st.table, Item: item,
			ConditionExpression:       aws.String("rev = :rev AND workspace_id = :ws"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":rev": n(rev), ":ws": s(ws)},
		})
		var cf *types.ConditionalCheckFailedException
		if errors.As(err, &cf) {
			continue
		}
		if err != nil {
			return Adapter{}, fmt.Errorf("update adapter %s: %w", name, err)
		}
		return next, nil
	}
	return Adapter{}, apierr.New(apierr.Conflict, "adapter is being changed concurrently; try again")
}

// RotateAdapterSecret makes newSecret current; the others keep opening the adapter until
// now+overlap.
func (st *Store) RotateAdapterSecret(ctx context.Context, ws, name, newSecret string, overlap time.Duration) (Adapter, error) {
	if newSecret == "" || overlap < 0 {
		return Adapter{}, errors.New("rotate adapter secret: a secret and a non-negative overlap are required")
	}
	return st.UpdateAdapter(ctx, ws, name, func(a *Adapter, now time.Time) error {
		secs, err := rotateSecrets(a.Secrets, newSecret, now, overlap)
		a.Secrets = secs
		return err
	})
}

func sameSecret(a, b SigningSecret) bool {
	return a.Value == b.Value && (a.ExpiresAt == nil) == (b.ExpiresAt == nil) && (a.ExpiresAt == nil || a.ExpiresAt.Equal(*b.ExpiresAt))
}

// DeleteAdapter deletes an adapter of the workspace, or returns NotFound.
func (st *Store) DeleteAdapter(ctx context.Context, ws, name string) error {
	_, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &st.table, Key: adapterKey(name),
		ConditionExpression:       aws.String("workspace_id = :ws"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":ws": s(ws)},
	})
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		return adapterNotFound()
	}
	if err != nil {
		return fmt.Errorf("delete adapter %s: %w", name, err)
	}
	return nil
}
