package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Dedupe markers: pk WS#<ws>#DEDUPE#<scope>#<key>, sk DEDUPE. A marker counts until expires_at;
// TTL removes it some time later, so the condition checks expires_at itself.
func dedupeKey(ws, scope, k string) map[string]types.AttributeValue {
	return key("WS#"+ws+"#DEDUPE#"+scope+"#"+k, "DEDUPE")
}

// DedupeClaim is what ClaimDedupe found.
type DedupeClaim struct {
	Won     bool      // this call is the first within the window
	FirstAt time.Time // when the key was first claimed
	Queued  bool      // the claimant reported its message queued (MarkDedupeQueued)
}

// ClaimDedupe records that key was seen in scope (a source) for window. Concurrent claims of one
// key: exactly one wins; the others learn when it was first seen and whether its message is known
// to be queued, so that they can queue it themselves when the claimant may have died.
func (st *Store) ClaimDedupe(ctx context.Context, ws, scope, k string, window time.Duration) (DedupeClaim, error) {
	now := st.now().UTC()
	item := dedupeKey(ws, scope, k)
	item["first_at"] = ts(now)
	item["expires_at"] = n(now.Add(window).UnixMilli())
	item["ttl"] = n(now.Add(window).Unix() + 1)
	_, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &st.table, Item: item,
		ConditionExpression:                 aws.String("attribute_not_exists(pk) OR expires_at < :now"),
		ExpressionAttributeValues:           map[string]types.AttributeValue{":now": n(now.UnixMilli())},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		q, _ := cf.Item["queued"].(*types.AttributeValueMemberBOOL)
		return DedupeClaim{FirstAt: tm(cf.Item, "first_at"), Queued: q != nil && q.Value}, nil
	}
	if err != nil {
		return DedupeClaim{}, fmt.Errorf("claim dedupe key: %w", err)
	}
	return DedupeClaim{Won: true, FirstAt: now}, nil
}

// MarkDedupeQueued records that the message of a claimed key is on the queue.
func (st *Store) MarkDedupeQueued(ctx context.Context, ws, scope, k string) error {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: dedupeKey(ws, scope, k),
		UpdateExpression:          aws.String("SET queued = :t"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberBOOL{Value: true}},
	})
	var cf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &cf) { // released meanwhile: nothing to mark
		return fmt.Errorf("mark dedupe key queued: %w", err)
	}
	return nil
}

// ReleaseDedupe forgets a claimed key, so that the sender's retry is processed (the claimant
// could not queue the message).
func (st *Store) ReleaseDedupe(ctx context.Context, ws, scope, k string) error {
	if _, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &st.table, Key: dedupeKey(ws, scope, k)}); err != nil {
		return fmt.Errorf("release dedupe key: %w", err)
	}
	return nil
}

// RoleRoute maps a role pattern (an exact role, "webhook.stripe.*" or "*") to an agent.
type RoleRoute struct {
	Pattern string `json:"pattern"`
	Agent   string `json:"agent"`
}

func roleRoutesKey(ws string) map[string]types.AttributeValue {
	return key("WS#"+ws+"#CFG", "ROLE_ROUTES")
}

// PutRoleRoutes replaces the workspace's role routes.
func (st *Store) PutRoleRoutes(ctx context.Context, ws string, routes []RoleRoute) error {
	b, err := json.Marshal(routes)
	if err != nil {
		return fmt.Errorf("encode role routes: %w", err)
	}
	item := roleRoutesKey(ws)
	item["routes"], item["updated_at"] = s(string(b)), ts(st.now().UTC())
	if _, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.table, Item: item}); err != nil {
		return fmt.Errorf("put role routes: %w", err)
	}
	return nil
}

// RoleRoutes returns the workspace's role routes (none when never set).
func (st *Store) RoleRoutes(ctx context.Context, ws string) ([]RoleRoute, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: roleRoutesKey(ws), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("get role routes: %w", err)
	}
	routes := []RoleRoute{}
	if raw := str(out.Item, "routes"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &routes); err != nil {
			return nil, fmt.Errorf("decode role routes: %w", err)
		}
	}
	return routes, nil
}

// BindingStatus is the latest status a connector reported for one of a channel's bindings.
type BindingStatus struct {
	WorkspaceID string    `json:"workspace_id"`
	Channel     string    `json:"channel"`
	BindingID   string    `json:"binding_id"`
	Status      string    `json:"status"`
	Detail      string    `json:"detail,omitempty"`
	ReportedAt  time.Time `json:"reported_at"`
}

func bindingsPK(ws string) string { return "WS#" + ws + "#BIND" }

// PutBindingStatus stores b unless a report at least as new is stored; it reports whether it did.
func (st *Store) PutBindingStatus(ctx context.Context, b BindingStatus) (bool, error) {
	item := key(bindingsPK(b.WorkspaceID), b.Channel+"#"+b.BindingID)
	item["workspace_id"], item["channel"], item["binding_id"] = s(b.WorkspaceID), s(b.Channel), s(b.BindingID)
	item["status"], item["detail"], item["reported_at"] = s(b.Status), s(b.Detail), ts(b.ReportedAt)
	item["reported_ns"] = n(b.ReportedAt.UnixNano()) // ordered: RFC 3339 text is not fixed-width
	_, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &st.table, Item: item,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR reported_ns < :at"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": n(b.ReportedAt.UnixNano())},
	})
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("put binding status: %w", err)
	}
	return true, nil
}

// ListBindings returns the latest status of each of the workspace's bindings, by channel and id.
func (st *Store) ListBindings(ctx context.Context, ws string) ([]BindingStatus, error) {
	in := &dynamodb.QueryInput{
		TableName:                 &st.table,
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(bindingsPK(ws))},
		ConsistentRead:            aws.Bool(true),
	}
	out := []BindingStatus{}
	for p := dynamodb.NewQueryPaginator(st.db, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list bindings: %w", err)
		}
		for _, item := range page.Items {
			out = append(out, BindingStatus{
				WorkspaceID: str(item, "workspace_id"), Channel: str(item, "channel"), BindingID: str(item, "binding_id"),
				Status: str(item, "status"), Detail: str(item, "detail"), ReportedAt: tm(item, "reported_at"),
			})
		}
	}
	return out, nil
}
