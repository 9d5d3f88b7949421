package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/seal"
)

// Agent is one named agent of a workspace: the management API creates it, the worker calls it
// for the runs of that workspace only. Secret is its only secret (the webhook agent's whsec_
// signing secret, or the openai agent's API key); it is sealed as seal.KindAgentSecret when
// written, opened only by a store with an opener (the worker's), and never appears in JSON or logs.
type Agent struct {
	WorkspaceID    string `json:"workspace_id"`
	Name           string `json:"name"`
	Type           string `json:"type"` // echo | webhook | openai
	URL            string `json:"url,omitempty"`
	BaseURL        string `json:"base_url,omitempty"`
	Model          string `json:"model,omitempty"`
	System         string `json:"system,omitempty"`
	MaxHistory     int    `json:"max_history,omitempty"`
	TimeoutSeconds int    `json:"timeout_seconds,omitempty"`
	Secret         string `json:"-"`
	// HasSecret says whether the item holds a secret, read without decoding it.
	HasSecret bool `json:"-"`
	// Operator marks an agent seeded from the stack's Agents parameter: the operator's own, which
	// may call private addresses (a model server beside the stack).
	Operator  bool      `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// String describes the agent without its secret.
func (a Agent) String() string {
	return fmt.Sprintf("store.Agent{%s/%s %s secret:%t}", a.WorkspaceID, a.Name, a.Type, a.Secret != "")
}

// GoString is String, for %#v.
func (a Agent) GoString() string { return a.String() }

// LogValue is String, so slog never writes the secret either.
func (a Agent) LogValue() slog.Value { return slog.StringValue(a.String()) }

// Items: pk WS#<ws>#AGT, sk AGT#<name>; one consistent Query lists a workspace's agents.
func agentsPK(ws string) string { return "WS#" + ws + "#AGT" }
func agentKey(ws, name string) map[string]types.AttributeValue {
	return key(agentsPK(ws), "AGT#"+name)
}

func agentNotFound() error { return apierr.New(apierr.NotFound, "agent not found") }

func agentSealCtx(ws, name string) seal.Context {
	return seal.Context{Workspace: ws, Kind: seal.KindAgentSecret, Item: name}
}

// agentItem is the agent's item. Its secret is the one place an agent's secret is written
// (attribute "secrets", in the form of every secret of the table: sealed when the store has a
// sealer).
func (st *Store) agentItem(ctx context.Context, a Agent, rev int64) (map[string]types.AttributeValue, error) {
	item := agentKey(a.WorkspaceID, a.Name)
	item["workspace_id"], item["name"], item["type"] = s(a.WorkspaceID), s(a.Name), s(a.Type)
	for k, v := range map[string]string{"url": a.URL, "base_url": a.BaseURL, "model": a.Model, "system": a.System} {
		if v != "" {
			item[k] = s(v)
		}
	}
	item["max_history"], item["timeout_seconds"] = n(int64(a.MaxHistory)), n(int64(a.TimeoutSeconds))
	if a.Secret != "" {
		secs, err := st.encodeSecrets(ctx, agentSealCtx(a.WorkspaceID, a.Name), []SigningSecret{{Value: a.Secret}})
		if err != nil {
			return nil, err
		}
		item["secrets"] = secs
	}
	if a.Operator {
		item["operator"] = boolAttr(true)
	}
	item["created_at"], item["updated_at"], item["rev"] = ts(a.CreatedAt), ts(a.UpdatedAt), n(rev)
	return item, nil
}

// decodeAgent reads an agent's item. Its secret is read in clear only from an item written before
// sealing; a sealed one stays "" until openAgent opens it (HasSecret tells it is there).
func decodeAgent(item map[string]types.AttributeValue) Agent {
	return Agent{
		WorkspaceID: str(item, "workspace_id"), Name: str(item, "name"), Type: str(item, "type"),
		URL: str(item, "url"), BaseURL: str(item, "base_url"), Model: str(item, "model"), System: str(item, "system"),
		MaxHistory: int(num(item, "max_history")), TimeoutSeconds: int(num(item, "timeout_seconds")),
		Secret: agentSecret(decodeSecrets(item)), HasSecret: item["secrets"] != nil, Operator: boolean(item, "operator"),
		CreatedAt: tm(item, "created_at"), UpdatedAt: tm(item, "updated_at"),
	}
}

func agentSecret(secs []SigningSecret) string {
	if len(secs) > 0 {
		return secs[0].Value
	}
	return ""
}

// openAgent opens the agent's sealed secret from its item, when the store has an opener.
func (st *Store) openAgent(ctx context.Context, a *Agent, item map[string]types.AttributeValue) error {
	if st.opener == nil {
		return nil
	}
	secs := decodeSecrets(item)
	if err := st.openSecrets(ctx, agentSealCtx(a.WorkspaceID, a.Name), secs); err != nil {
		return err
	}
	a.Secret = agentSecret(secs)
	return nil
}

// CreateAgent stores a new agent; a name the workspace already uses is a Conflict.
func (st *Store) CreateAgent(ctx context.Context, a Agent) (Agent, error) {
	now := st.now().UTC()
	a.CreatedAt, a.UpdatedAt, a.HasSecret = now, now, a.Secret != ""
	item, err := st.agentItem(ctx, a, 1)
	if err != nil {
		return Agent{}, err
	}
	_, err = st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")})
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		return Agent{}, apierr.New(apierr.Conflict, "an agent named %q exists", a.Name)
	}
	if err != nil {
		return Agent{}, fmt.Errorf("create agent %s: %w", a.Name, err)
	}
	return a, nil
}

// PutAgent stores a, replacing an agent of the same name (seeding from the stack's parameters).
func (st *Store) PutAgent(ctx context.Context, a Agent) error {
	now := st.now().UTC()
	a.CreatedAt, a.UpdatedAt = now, now
	item, err := st.agentItem(ctx, a, 1)
	if err != nil {
		return err
	}
	if _, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.table, Item: item}); err != nil {
		return fmt.Errorf("put agent %s: %w", a.Name, err)
	}
	return nil
}

// GetAgent returns an agent of the workspace, or NotFound; its secret is opened when the store
// has an opener (the worker's), and stays unread otherwise (HasSecret says whether it has one).
func (st *Store) GetAgent(ctx context.Context, ws, name string) (Agent, error) {
	a, item, err := st.getAgentItem(ctx, ws, name)
	if err != nil {
		return Agent{}, err
	}
	if err := st.openAgent(ctx, &a, item); err != nil {
		return Agent{}, err
	}
	return a, nil
}

func (st *Store) getAgentItem(ctx context.Context, ws, name string) (Agent, map[string]types.AttributeValue, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: agentKey(ws, name), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Agent{}, nil, fmt.Errorf("get agent %s: %w", name, err)
	}
	if len(out.Item) == 0 {
		return Agent{}, nil, agentNotFound()
	}
	return decodeAgent(out.Item), out.Item, nil
}

// ListAgents returns the workspace's agents by name.
func (st *Store) ListAgents(ctx context.Context, ws string) ([]Agent, error) {
	in := &dynamodb.QueryInput{
		TableName:                 &st.table,
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :p)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(agentsPK(ws)), ":p": s("AGT#")},
		ConsistentRead:            aws.Bool(true),
	}
	out := []Agent{}
	for p := dynamodb.NewQueryPaginator(st.db, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list agents: %w", err)
		}
		for _, item := range page.Items {
			out = append(out, decodeAgent(item))
		}
	}
	return out, nil
}

// UpdateAgent lets change compute the agent's next state (its secret included, for a rotation)
// and writes it back conditioned on the revision it read, retrying when another writer came first.
func (st *Store) UpdateAgent(ctx context.Context, ws, name string, change func(*Agent) error) (Agent, error) {
	for range maxSubscriptionWriteTries {
		cur, curItem, err := st.getAgentItem(ctx, ws, name)
		if err != nil {
			return Agent{}, err
		}
		rev := num(curItem, "rev")
		next := cur
		if err := change(&next); err != nil {
			return Agent{}, err
		}
		next.WorkspaceID, next.Name, next.CreatedAt, next.UpdatedAt = ws, name, cur.CreatedAt, st.now().UTC()
		item, err := st.agentItem(ctx, next, rev+1)
		if err != nil {
			return Agent{}, err
		}
		if next.Secret == "" && cur.Secret == "" && curItem["secrets"] != nil {
			// Sealed and unchanged (a store without an opener reads a sealed secret as "", and
			// change sets Secret only to rotate it): kept as stored. A secret read in clear,
			// written before sealing, is sealed now.
			item["secrets"] = curItem["secrets"]
		}
		next.HasSecret = item["secrets"] != nil
		_, err = st.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: &st.table, Item: item,
			ConditionExpression:       aws.String("rev = :rev"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":rev": n(rev)},
		})
		var cf *types.ConditionalCheckFailedException
		if errors.As(err, &cf) {
			continue
		}
		if err != nil {
			return Agent{}, fmt.Errorf("update agent %s: %w", name, err)
		}
		return next, nil
	}
	return Agent{}, apierr.New(apierr.Conflict, "agent is being changed concurrently; try again")
}

// DeleteAgent deletes an agent of the workspace, or returns NotFound.
func (st *Store) DeleteAgent(ctx context.Context, ws, name string) error {
	_, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &st.table, Key: agentKey(ws, name), ConditionExpression: aws.String("attribute_exists(pk)")})
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		return agentNotFound()
	}
	if err != nil {
		return fmt.Errorf("delete agent %s: %w", name, err)
	}
	return nil
}

// Seeds: the stack's Agents and Adapters parameters are written into the store once per value.
// Item pk WS#<ws>#SEED, sk SEED#<kind>, with the SHA-256 of what was seeded.
func seedKey(ws, kind string) map[string]types.AttributeValue {
	return key("WS#"+ws+"#SEED", "SEED#"+kind)
}

// SeedDigest returns the digest of the last seed of kind in the workspace ("" for none).
func (st *Store) SeedDigest(ctx context.Context, ws, kind string) (string, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: seedKey(ws, kind), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("get seed %s: %w", kind, err)
	}
	return str(out.Item, "digest"), nil
}

// SetSeedDigest records that the seed of kind with digest has been written.
func (st *Store) SetSeedDigest(ctx context.Context, ws, kind, digest string) error {
	item := seedKey(ws, kind)
	item["digest"], item["updated_at"] = s(digest), ts(st.now().UTC())
	if _, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.table, Item: item}); err != nil {
		return fmt.Errorf("put seed %s: %w", kind, err)
	}
	return nil
}

// SeedSum is the digest SeedOnce records of a seed's parameters: HMAC-SHA256 under a key of the
// stack (the parameters hold secrets; a plain hash would let a reader of the table test guesses).
func SeedSum(key, params string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(params))
	return hex.EncodeToString(m.Sum(nil))
}

// SeedVersion ends the params a seed's digest covers: a change of how seeds are written (v1: their
// secrets sealed) makes every stack write its seeds once more.
const SeedVersion = "\x00seed-v1-sealed"

// SeedSums are the digests of params under each of keys (the stack's approval signing keys, the
// current one first), then under all of them joined by commas (how earlier versions keyed it).
func SeedSums(keys []string, params string) []string {
	out := make([]string, 0, len(keys)+1)
	for _, k := range keys {
		out = append(out, SeedSum(k, params))
	}
	return append(out, SeedSum(strings.Join(keys, ","), params))
}

// SeedOnce runs put (which writes a seed's items) unless the workspace's seed of kind already has
// one of digests, and then records digests[0]: the stack's parameters are written into the store
// once per value, so what the API changes afterwards stays until the parameter changes. A seed
// recorded under another of digests (an earlier key) is recorded again under the first, without
// put: rotating the keys alone changes nothing seeded.
func (st *Store) SeedOnce(ctx context.Context, ws, kind string, digests []string, put func(context.Context) error) error {
	cur, err := st.SeedDigest(ctx, ws, kind)
	if err != nil || len(digests) == 0 || cur == digests[0] {
		return err
	}
	if cur == "" || !slices.Contains(digests[1:], cur) {
		if err := put(ctx); err != nil {
			return err
		}
	}
	return st.SetSeedDigest(ctx, ws, kind, digests[0])
}

// Seeder writes a seed at first use: Ensure runs seed until it has succeeded once in the process
// (a failure is returned, and the next call tries again). Safe for concurrent use.
type Seeder struct {
	mu   sync.Mutex
	done bool
	seed func(context.Context) error
}

// NewSeeder returns a Seeder of seed.
func NewSeeder(seed func(context.Context) error) *Seeder { return &Seeder{seed: seed} }

// Ensure runs the seed unless it has succeeded before.
func (s *Seeder) Ensure(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	if err := s.seed(ctx); err != nil {
		return err
	}
	s.done = true
	return nil
}
