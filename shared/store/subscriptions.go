package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/seal"
)

// Subscription statuses.
const (
	SubscriptionActive   = "active"
	SubscriptionDisabled = "disabled"
)

// MaxSigningSecrets bounds a subscription's secrets: the current one plus those still inside a
// rotation's overlap.
const MaxSigningSecrets = 10

// DisabledByAPI is the DisabledReason of a subscription disabled through UpdateSubscription.
const DisabledByAPI = "disabled through the management API"

// maxSubscriptionWriteTries bounds the optimistic retries of read-modify-write updates.
const maxSubscriptionWriteTries = 5

// Subscription is an outbound webhook endpoint of a workspace. Its secrets are stored sealed (see
// Store.WithSealer) and opened only by a store WithOpener; they never appear in JSON or logs.
type Subscription struct {
	ID                  string          `json:"id"`
	WorkspaceID         string          `json:"workspace_id"`
	URL                 string          `json:"url"`
	Events              []string        `json:"events"`
	Description         string          `json:"description"`
	Status              string          `json:"status"` // active | disabled
	DisabledReason      string          `json:"disabled_reason,omitempty"`
	Secrets             []SigningSecret `json:"-"` // current first; never serialised
	ConsecutiveFailures int             `json:"consecutive_failures"`
	RateLimit           *RateLimit      `json:"rate_limit,omitempty"`    // nil: no rate limit (sublimits.go)
	MaxInFlight         int             `json:"max_in_flight,omitempty"` // 0: no bound
	Circuit             Circuit         `json:"-"`                       // its circuit breaker (circuit.go)
	Headers             CustomHeaders   `json:"-"`                       // custom headers; their values sealed at rest
	Filter              string          `json:"filter,omitempty"`        // payload filter (eventfilter), compact JSON; "" for none
	FIFO                bool            `json:"fifo"`                    // its deliveries go one at a time in log order (set at creation)
	CreatedAt           time.Time       `json:"created_at"`
	UpdatedAt           time.Time       `json:"updated_at"`
}

// SigningSecret is one of a subscription's secrets. ExpiresAt is nil for the current secret and set
// for a previous one that is still accepted during a rotation's overlap.
type SigningSecret struct {
	Value     string // "" while sealed: read by a store without an opener
	ExpiresAt *time.Time
	sealed    []byte // as stored; nil for a value not stored yet, or stored in clear before sealing
}

// String hides the value, so that printing a Subscription with %v or %+v shows no secret.
func (s SigningSecret) String() string {
	if s.ExpiresAt == nil {
		return "{[redacted] current}"
	}
	return "{[redacted] expires " + s.ExpiresAt.UTC().Format(time.RFC3339) + "}"
}

// GoString hides the value from %#v.
func (s SigningSecret) GoString() string { return "store.SigningSecret" + s.String() }

// LogValue hides the value from log/slog.
func (s SigningSecret) LogValue() slog.Value {
	if s.ExpiresAt == nil {
		return slog.GroupValue(slog.String("value", "[redacted]"))
	}
	return slog.GroupValue(slog.String("value", "[redacted]"), slog.Time("expires_at", *s.ExpiresAt))
}

// MarshalJSON hides the value from encoding/json (and so from slog's JSON handler).
func (s SigningSecret) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Value     string     `json:"value"`
		ExpiresAt *time.Time `json:"expires_at,omitempty"`
	}{"[redacted]", s.ExpiresAt})
}

func (s SigningSecret) expired(now time.Time) bool {
	return s.ExpiresAt != nil && !now.Before(*s.ExpiresAt)
}

// ActiveSecrets returns the values of the secrets that sign at now: newest first (the current
// secret, then previous ones by latest expiry), expired ones and unopened sealed ones dropped.
func (s Subscription) ActiveSecrets(now time.Time) []string { return activeSecrets(s.Secrets, now) }

// ActiveSecretCount is how many secrets sign at now, whether opened or not.
func (s Subscription) ActiveSecretCount(now time.Time) int { return activeSecretCount(s.Secrets, now) }

func activeSecretCount(secrets []SigningSecret, now time.Time) int {
	n := 0
	for _, sec := range secrets {
		if !sec.expired(now) {
			n++
		}
	}
	return n
}

func activeSecrets(secrets []SigningSecret, now time.Time) []string {
	active := make([]SigningSecret, 0, len(secrets))
	for _, sec := range secrets {
		if !sec.expired(now) && sec.Value != "" {
			active = append(active, sec)
		}
	}
	slices.SortStableFunc(active, func(a, b SigningSecret) int {
		switch {
		case a.ExpiresAt == nil && b.ExpiresAt == nil:
			return 0
		case a.ExpiresAt == nil:
			return -1
		case b.ExpiresAt == nil:
			return 1
		}
		return b.ExpiresAt.Compare(*a.ExpiresAt)
	})
	out := make([]string, len(active))
	for i, sec := range active {
		out[i] = sec.Value
	}
	return out
}

// rotateSecrets makes newSecret current; the others stay valid until now+overlap at the latest,
// and those expired by now are pruned.
func rotateSecrets(cur []SigningSecret, newSecret string, now time.Time, overlap time.Duration) ([]SigningSecret, error) {
	until := now.Add(overlap)
	secrets := []SigningSecret{{Value: newSecret}}
	for _, sec := range cur {
		if sec.Value == newSecret {
			return nil, apierr.New(apierr.Invalid, "secret is already in use here")
		}
		if sec.ExpiresAt == nil || sec.ExpiresAt.After(until) {
			sec.ExpiresAt = &until
		}
		if !sec.expired(now) {
			secrets = append(secrets, sec)
		}
	}
	if len(secrets) > MaxSigningSecrets {
		return nil, apierr.New(apierr.Conflict, "too many secrets in rotation (at most %d): wait for an overlap to end or rotate with a shorter overlap", MaxSigningSecrets)
	}
	return secrets, nil
}

// SubscriptionPatch changes a subscription: each non-nil field replaces the stored one.
type SubscriptionPatch struct {
	URL         *string
	Events      *[]string
	Description *string
	Status      *string            // active | disabled
	Headers     *map[string]string // replaces every custom header; an empty map removes them
	Filter      *string            // replaces the payload filter; "" removes it
}

// Items: pk WS#<ws>#SUBS, sk SUB#<id>, so a workspace's subscriptions are one consistent Query.
// rev counts configuration changes (url, events, description, status, secrets, headers, filter); read-modify-write
// updates are conditioned on it. Delivery outcomes do not change it.
func subsPK(ws string) string { return "WS#" + ws + "#SUBS" }
func subKey(ws, id string) map[string]types.AttributeValue {
	return key(subsPK(ws), "SUB#"+id)
}

func subNotFound() error { return apierr.New(apierr.NotFound, "subscription not found") }

// CreateSubscription stores a new subscription: an id is made when sub.ID is empty, the status
// defaults to active, the failure count starts at zero and the times are now.
func (st *Store) CreateSubscription(ctx context.Context, sub Subscription) (Subscription, error) {
	now := st.now().UTC()
	if sub.ID == "" {
		sub.ID = ids.New("sub", now)
	}
	if sub.Status == "" {
		sub.Status = SubscriptionActive
	}
	switch {
	case sub.WorkspaceID == "" || sub.URL == "":
		return Subscription{}, fmt.Errorf("create subscription %s: workspace and url are required", sub.ID)
	case len(sub.Secrets) == 0 || len(sub.Secrets) > MaxSigningSecrets:
		return Subscription{}, fmt.Errorf("create subscription %s: %d signing secrets, want 1 to %d", sub.ID, len(sub.Secrets), MaxSigningSecrets)
	case sub.Status != SubscriptionActive && sub.Status != SubscriptionDisabled:
		return Subscription{}, apierr.New(apierr.Invalid, "status must be active or disabled")
	}
	if sub.Status == SubscriptionActive {
		sub.DisabledReason = ""
	}
	sub.Events = slices.Clone(sub.Events)
	sub.Secrets = slices.Clone(sub.Secrets)
	sub.ConsecutiveFailures = 0
	sub.CreatedAt, sub.UpdatedAt = now, now

	item := subKey(sub.WorkspaceID, sub.ID)
	item["sub_id"] = s(sub.ID)
	item["workspace_id"] = s(sub.WorkspaceID)
	item["url"] = s(sub.URL)
	item["events"] = strList(sub.Events)
	item["description"] = s(sub.Description)
	item["status"] = s(sub.Status)
	if sub.DisabledReason != "" {
		item["disabled_reason"] = s(sub.DisabledReason)
	}
	secrets, err := st.encodeSecrets(ctx, subSealCtx(sub.WorkspaceID, sub.ID), sub.Secrets)
	if err != nil {
		return Subscription{}, err
	}
	item["secrets"] = secrets
	hnames, hvalues, err := st.encodeHeaders(ctx, sub.WorkspaceID, sub.ID, sub.Headers)
	if err != nil {
		return Subscription{}, err
	}
	if hnames != nil {
		item["header_names"], item["headers"] = hnames, hvalues
	}
	if sub.Filter != "" {
		item["payload_filter"] = s(sub.Filter)
	}
	if sub.FIFO {
		item["fifo"] = boolAttr(true)
	}
	item["consecutive_failures"] = n(0)
	putLimits(item, sub.Limits())
	sub.Circuit = Circuit{State: CircuitClosed}
	item["created_at"], item["updated_at"] = ts(now), ts(now)
	item["rev"] = n(1)
	_, err = st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: &st.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
	}})
	if err != nil {
		if cancelledBy(err, 0) {
			return Subscription{}, apierr.New(apierr.Conflict, "subscription already exists")
		}
		return Subscription{}, fmt.Errorf("create subscription %s: %w", sub.ID, err)
	}
	return sub, nil
}

// GetSubscription returns a subscription of the workspace, or NotFound.
func (st *Store) GetSubscription(ctx context.Context, ws, id string) (Subscription, error) {
	sub, _, err := st.getSubscription(ctx, ws, id)
	return sub, err
}

func (st *Store) getSubscription(ctx context.Context, ws, id string) (Subscription, int64, error) {
	if id == "" {
		return Subscription{}, 0, subNotFound()
	}
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: subKey(ws, id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Subscription{}, 0, fmt.Errorf("get subscription %s: %w", id, err)
	}
	if len(out.Item) == 0 {
		return Subscription{}, 0, subNotFound()
	}
	sub := decodeSubscription(out.Item)
	if err := st.openSecrets(ctx, subSealCtx(ws, id), sub.Secrets); err != nil {
		return Subscription{}, 0, err
	}
	if err := st.openHeaders(ctx, ws, id, &sub.Headers); err != nil {
		return Subscription{}, 0, err
	}
	return sub, num(out.Item, "rev"), nil
}

// ListSubscriptions returns up to limit (1 to 1000) of the workspace's subscriptions in id order
// (creation order, to the millisecond), after the one the cursor names, and the cursor of the next page ("" on the last page).
// The cursor is opaque; one that this method did not make is an Invalid error.
func (st *Store) ListSubscriptions(ctx context.Context, ws string, limit int, cursor string) ([]Subscription, string, error) {
	limit = min(max(limit, 1), 1000)
	in := &dynamodb.QueryInput{
		TableName:                 &st.table,
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :sub)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(subsPK(ws)), ":sub": s("SUB#")},
		ConsistentRead:            aws.Bool(true),
	}
	if cursor != "" {
		after, err := parseSubCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		in.ExclusiveStartKey = subKey(ws, after)
	}
	// Read one more than asked, so the last page is known without an empty page after it.
	subs := make([]Subscription, 0, limit)
	for {
		in.Limit = aws.Int32(int32(limit + 1 - len(subs)))
		out, err := st.db.Query(ctx, in)
		if err != nil {
			return nil, "", fmt.Errorf("list subscriptions of %s: %w", ws, err)
		}
		for _, it := range out.Items {
			if len(subs) == limit {
				return subs, subCursor(subs[limit-1].ID), nil
			}
			subs = append(subs, decodeSubscription(it))
		}
		if len(out.LastEvaluatedKey) == 0 {
			return subs, "", nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// The list cursor is the id of the page's last subscription, versioned and base64url-encoded. It
// is always applied under the caller's own workspace, so a cursor cannot reach another workspace,
// and its id must look like one, so it is always a start key DynamoDB accepts.
const subCursorVersion = "s1:"

func subCursor(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(subCursorVersion + lastID))
}

func parseSubCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	id, ok := strings.CutPrefix(string(b), subCursorVersion)
	if err != nil || !ok || !validSubID(id) {
		return "", apierr.New(apierr.Invalid, "cursor is not valid")
	}
	return id, nil
}

// validSubID reports whether id could be a subscription's: 1 to 256 of A-Z, a-z, 0-9, _ and -.
func validSubID(id string) bool {
	if id == "" || len(id) > 256 {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ListActiveSubscriptions returns every active subscription of the workspace, for the fan-out.
func (st *Store) ListActiveSubscriptions(ctx context.Context, ws string) ([]Subscription, error) {
	in := &dynamodb.QueryInput{
		TableName:                aws.String(st.table),
		KeyConditionExpression:   aws.String("pk = :pk AND begins_with(sk, :sub)"),
		FilterExpression:         aws.String("#st = :active"),
		ExpressionAttributeNames: map[string]string{"#st": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": s(subsPK(ws)), ":sub": s("SUB#"), ":active": s(SubscriptionActive),
		},
		ConsistentRead: aws.Bool(true),
	}
	var subs []Subscription
	for {
		out, err := st.db.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list active subscriptions of %s: %w", ws, err)
		}
		for _, it := range out.Items {
			subs = append(subs, decodeSubscription(it))
		}
		if len(out.LastEvaluatedKey) == 0 {
			return subs, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// UpdateSubscription applies patch. Disabling records DisabledByAPI as the reason; re-enabling a
// disabled subscription clears the reason and resets ConsecutiveFailures. An empty patch changes
// nothing and returns the subscription.
func (st *Store) UpdateSubscription(ctx context.Context, ws, id string, patch SubscriptionPatch) (Subscription, error) {
	if patch.Status != nil && *patch.Status != SubscriptionActive && *patch.Status != SubscriptionDisabled {
		return Subscription{}, apierr.New(apierr.Invalid, "status must be active or disabled")
	}
	if patch.URL != nil && *patch.URL == "" {
		return Subscription{}, apierr.New(apierr.Invalid, "url is required")
	}
	return st.rewriteSubscription(ctx, ws, id, "update", func(cur Subscription, now time.Time) (Subscription, bool, error) {
		next, changed := cur, false
		if patch.URL != nil && *patch.URL != cur.URL {
			next.URL, changed = *patch.URL, true
		}
		if patch.Events != nil && !slices.Equal(*patch.Events, cur.Events) {
			next.Events, changed = slices.Clone(*patch.Events), true
		}
		if patch.Description != nil && *patch.Description != cur.Description {
			next.Description, changed = *patch.Description, true
		}
		if patch.Headers != nil {
			next.Headers, changed = NewCustomHeaders(*patch.Headers), true
		}
		if patch.Filter != nil && *patch.Filter != cur.Filter {
			next.Filter, changed = *patch.Filter, true
		}
		if patch.Status != nil && *patch.Status != cur.Status {
			next.Status, changed = *patch.Status, true
			if next.Status == SubscriptionActive {
				next.DisabledReason, next.ConsecutiveFailures = "", 0
			} else {
				next.DisabledReason = DisabledByAPI
			}
		}
		return next, changed, nil
	})
}

// RotateSecret makes newSecret the current secret. The previous current secret, and any older
// one still in its overlap, stays valid until now+overlap at the latest; secrets expired by then
// are pruned. A secret the subscription already has is Invalid.
func (st *Store) RotateSecret(ctx context.Context, ws, id, newSecret string, overlap time.Duration) (Subscription, error) {
	if newSecret == "" || overlap < 0 {
		return Subscription{}, errors.New("rotate secret: a secret and a non-negative overlap are required")
	}
	return st.rewriteSubscription(ctx, ws, id, "rotate secret of", func(cur Subscription, now time.Time) (Subscription, bool, error) {
		secrets, err := rotateSecrets(cur.Secrets, newSecret, now, overlap)
		if err != nil {
			return Subscription{}, false, err
		}
		next := cur
		next.Secrets = secrets
		return next, true, nil
	})
}

// rewriteSubscription reads the subscription, lets change compute its next state, and writes the
// configuration back conditioned on the revision it read, retrying when another writer came first.
func (st *Store) rewriteSubscription(ctx context.Context, ws, id, op string, change func(cur Subscription, now time.Time) (Subscription, bool, error)) (Subscription, error) {
	for range maxSubscriptionWriteTries {
		cur, rev, err := st.getSubscription(ctx, ws, id)
		if err != nil {
			return Subscription{}, err
		}
		now := st.now().UTC()
		next, changed, err := change(cur, now)
		if err != nil || !changed {
			return next, err
		}
		next.UpdatedAt = now
		secrets, err := st.encodeSecrets(ctx, subSealCtx(ws, id), next.Secrets)
		if err != nil {
			return Subscription{}, err
		}
		upd := "SET #url = :url, events = :events, description = :desc, #st = :st, secrets = :secrets, updated_at = :now, rev = :next"
		vals := map[string]types.AttributeValue{
			":url": s(next.URL), ":events": strList(next.Events), ":desc": s(next.Description), ":st": s(next.Status),
			":secrets": secrets, ":now": ts(now), ":rev": n(rev), ":next": n(rev + 1),
		}
		if cur.Status == SubscriptionDisabled && next.Status == SubscriptionActive {
			upd += ", consecutive_failures = :zero"
			vals[":zero"] = n(0)
		}
		if next.DisabledReason != "" {
			upd += ", disabled_reason = :reason"
			vals[":reason"] = s(next.DisabledReason)
		} else {
			upd += " REMOVE disabled_reason"
		}
		if upd, err = st.withHeaders(ctx, ws, id, next.Headers, upd, vals); err != nil {
			return Subscription{}, err
		}
		upd = withFilter(next.Filter, upd, vals)
		out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 &st.table,
			Key:                       subKey(ws, id),
			UpdateExpression:          aws.String(upd),
			ConditionExpression:       aws.String("rev = :rev"),
			ExpressionAttributeNames:  map[string]string{"#url": "url", "#st": "status"},
			ExpressionAttributeValues: vals,
			ReturnValues:              types.ReturnValueAllNew,
		})
		var cf *types.ConditionalCheckFailedException
		if errors.As(err, &cf) {
			continue // changed (or deleted) since it was read: read it again
		}
		if err != nil {
			return Subscription{}, fmt.Errorf("%s subscription %s: %w", op, id, err)
		}
		return decodeSubscription(out.Attributes), nil
	}
	return Subscription{}, apierr.New(apierr.Conflict, "subscription is being changed concurrently; try again")
}

// DeleteSubscription deletes a subscription of the workspace, or returns NotFound.
func (st *Store) DeleteSubscription(ctx context.Context, ws, id string) error {
	if id == "" {
		return subNotFound()
	}
	_, err := st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Delete: &types.Delete{TableName: &st.table, Key: subKey(ws, id), ConditionExpression: aws.String("attribute_exists(pk)")}},
	}})
	if err != nil {
		if cancelledBy(err, 0) {
			return subNotFound()
		}
		return fmt.Errorf("delete subscription %s: %w", id, err)
	}
	return nil
}

// DisableSubscription disables an active subscription with a reason. It reports false, and
// changes nothing, when the subscription is already disabled.
func (st *Store) DisableSubscription(ctx context.Context, ws, id, reason string) (bool, error) {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           &st.table,
		Key:                                 subKey(ws, id),
		UpdateExpression:                    aws.String("SET #st = :disabled, disabled_reason = :reason, updated_at = :now ADD rev :one"),
		ConditionExpression:                 aws.String("#st = :active"),
		ExpressionAttributeNames:            map[string]string{"#st": "status"},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":disabled": s(SubscriptionDisabled), ":active": s(SubscriptionActive), ":reason": s(reason), ":now": ts(st.now()), ":one": n(1)},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		var cf *types.ConditionalCheckFailedException
		if errors.As(err, &cf) {
			if len(cf.Item) == 0 {
				return false, subNotFound()
			}
			return false, nil
		}
		return false, fmt.Errorf("disable subscription %s: %w", id, err)
	}
	return true, nil
}

// RecordDeliveryOutcome counts consecutive failed deliveries: a success resets the count to 0, a
// failure adds one atomically. It returns the new count.
func (st *Store) RecordDeliveryOutcome(ctx context.Context, ws, id string, success bool) (int, error) {
	upd, vals := "ADD consecutive_failures :one", map[string]types.AttributeValue{":one": n(1)}
	if success {
		upd, vals = "SET consecutive_failures = :zero", map[string]types.AttributeValue{":zero": n(0)}
	}
	out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &st.table,
		Key:                       subKey(ws, id),
		UpdateExpression:          aws.String(upd),
		ConditionExpression:       aws.String("attribute_exists(pk)"), // never recreate a deleted subscription
		ExpressionAttributeValues: vals,
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		var cf *types.ConditionalCheckFailedException
		if errors.As(err, &cf) {
			return 0, subNotFound()
		}
		return 0, fmt.Errorf("record delivery outcome of subscription %s: %w", id, err)
	}
	return int(num(out.Attributes, "consecutive_failures")), nil
}

func strList(vs []string) types.AttributeValue {
	l := make([]types.AttributeValue, len(vs))
	for i, v := range vs {
		l[i] = s(v)
	}
	return &types.AttributeValueMemberL{Value: l}
}

func subSealCtx(ws, id string) seal.Context {
	return seal.Context{Workspace: ws, Kind: seal.KindSubscriptionSecret, Item: id}
}

// encodeSecrets is the secrets attribute: each secret as {sealed, expires_at?}; with no sealer,
// {value, expires_at?} as before sealing.
func (st *Store) encodeSecrets(ctx context.Context, c seal.Context, secs []SigningSecret) (types.AttributeValue, error) {
	l := make([]types.AttributeValue, len(secs))
	for i, sec := range secs {
		m := map[string]types.AttributeValue{}
		switch {
		case sec.sealed != nil:
			m["sealed"] = &types.AttributeValueMemberB{Value: sec.sealed}
		case st.sealer != nil:
			b, err := st.sealer.Seal(ctx, []byte(sec.Value), c)
			if err != nil {
				return nil, fmt.Errorf("seal a secret of %s %s: %w", c.Kind, c.Item, err)
			}
			m["sealed"] = &types.AttributeValueMemberB{Value: b}
		default:
			m["value"] = s(sec.Value)
		}
		if sec.ExpiresAt != nil {
			m["expires_at"] = ts(*sec.ExpiresAt)
		}
		l[i] = &types.AttributeValueMemberM{Value: m}
	}
	return &types.AttributeValueMemberL{Value: l}, nil
}

// openSecrets opens the sealed secrets in place, when the store has an opener.
func (st *Store) openSecrets(ctx context.Context, c seal.Context, secs []SigningSecret) error {
	if st.opener == nil {
		return nil
	}
	for i := range secs {
		if secs[i].sealed == nil || secs[i].Value != "" {
			continue
		}
		b, err := st.opener.Open(ctx, secs[i].sealed, c)
		if err != nil {
			return fmt.Errorf("open a secret of %s %s: %w", c.Kind, c.Item, err)
		}
		secs[i].Value = string(b)
	}
	return nil
}

func decodeSubscription(item map[string]types.AttributeValue) Subscription {
	sub := Subscription{
		ID: str(item, "sub_id"), WorkspaceID: str(item, "workspace_id"), URL: str(item, "url"),
		Description: str(item, "description"), Status: str(item, "status"), DisabledReason: str(item, "disabled_reason"),
		ConsecutiveFailures: int(num(item, "consecutive_failures")),
		CreatedAt:           tm(item, "created_at"), UpdatedAt: tm(item, "updated_at"),
		Events: []string{},
	}
	if l, ok := item["events"].(*types.AttributeValueMemberL); ok {
		for _, v := range l.Value {
			if sv, ok := v.(*types.AttributeValueMemberS); ok {
				sub.Events = append(sub.Events, sv.Value)
			}
		}
	}
	sub.Secrets = decodeSecrets(item)
	decodeLimits(item, &sub)
	sub.Headers = decodeHeaders(item)
	sub.Filter = str(item, "payload_filter")
	sub.FIFO = boolean(item, "fifo")
	return sub
}

func decodeSecrets(item map[string]types.AttributeValue) []SigningSecret {
	var out []SigningSecret
	if l, ok := item["secrets"].(*types.AttributeValueMemberL); ok {
		for _, v := range l.Value {
			m, ok := v.(*types.AttributeValueMemberM)
			if !ok {
				continue
			}
			sec := SigningSecret{Value: str(m.Value, "value")}
			if b, ok := m.Value["sealed"].(*types.AttributeValueMemberB); ok {
				sec.sealed = b.Value
			}
			if t := tm(m.Value, "expires_at"); !t.IsZero() {
				sec.ExpiresAt = &t
			}
			out = append(out, sec)
		}
	}
	return out
}
