// Package store keeps Hookgate's state in one DynamoDB table: threads, messages, runs and each
// workspace's ordered event log. Every write is conditional, so retried work does not duplicate.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/shared/apierr"
)

// DB is the part of the DynamoDB client the store uses.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Run statuses.
const (
	RunQueued    = "queued"
	RunRunning   = "running"
	RunCompleted = "completed"
	RunFailed    = "failed"
)

// Store reads and writes the table.
type Store struct {
	db    DB
	table string
	now   func() time.Time
}

// New returns a Store on table.
func New(db DB, table string, now func() time.Time) *Store {
	return &Store{db: db, table: table, now: now}
}

// Thread is one conversation.
type Thread struct {
	ID          string
	WorkspaceID string
	Channel     string
	ExternalID  string
}

// Message is one text on a thread, with its raw data kept for audit.
type Message struct {
	ID        string
	Direction string // "in" or "out"
	Source    string
	Text      string
	User      string
	Data      json.RawMessage
	CreatedAt time.Time
}

// Run is one agent turn on a thread.
type Run struct {
	ID          string     `json:"id"`
	WorkspaceID string     `json:"workspace_id"`
	ThreadID    string     `json:"thread_id"`
	MessageID   string     `json:"message_id"`
	Status      string     `json:"status"`
	Result      *Result    `json:"result,omitempty"`
	Error       string     `json:"error,omitempty"`
	Attempts    int        `json:"attempts"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
}

// Result is what a finished run produced.
type Result struct {
	Text string `json:"text"`
}

// Terminal reports whether the run has finished.
func (r Run) Terminal() bool { return r.Status == RunCompleted || r.Status == RunFailed }

func threadPK(ws, id string) string { return "WS#" + ws + "#THR#" + id }
func runPK(ws, id string) string    { return "WS#" + ws + "#RUN#" + id }

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": s(pk), "sk": s(sk)}
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}
func ts(t time.Time) types.AttributeValue {
	return s(t.UTC().Format(time.RFC3339Nano))
}

// CreateRun stores a new inbound message and its queued run on the thread, creating the thread if
// needed, in one transaction. It returns false, and writes nothing, when the run already exists.
func (st *Store) CreateRun(ctx context.Context, th Thread, m Message, r Run) (bool, error) {
	now := st.now().UTC()
	msg := key(threadPK(th.WorkspaceID, th.ID), "MSG#"+m.CreatedAt.UTC().Format("20060102T150405.000000000Z")+"#"+m.ID)
	msg["message_id"] = s(m.ID)
	msg["direction"] = s(m.Direction)
	msg["source"] = s(m.Source)
	msg["text"] = s(m.Text)
	msg["created_at"] = ts(m.CreatedAt)
	if m.User != "" {
		msg["user"] = s(m.User)
	}
	if len(m.Data) > 0 {
		msg["data"] = s(string(m.Data))
	}
	run := key(runPK(th.WorkspaceID, r.ID), "RUN")
	run["run_id"] = s(r.ID)
	run["workspace_id"] = s(th.WorkspaceID)
	run["thread_id"] = s(th.ID)
	run["message_id"] = s(m.ID)
	run["status"] = s(RunQueued)
	run["attempts"] = n(0)
	run["created_at"] = ts(now)
	run["updated_at"] = ts(now)

	_, err := st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: &st.table, Item: run, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		{Put: &types.Put{TableName: &st.table, Item: msg, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		{Update: &types.Update{
			TableName:                &st.table,
			Key:                      key(threadPK(th.WorkspaceID, th.ID), "META"),
			UpdateExpression:         aws.String("SET thread_id = :id, workspace_id = :ws, #ch = :ch, external_id = :ext, created_at = if_not_exists(created_at, :now), updated_at = :now ADD message_count :one"),
			ExpressionAttributeNames: map[string]string{"#ch": "channel"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":id": s(th.ID), ":ws": s(th.WorkspaceID), ":ch": s(th.Channel), ":ext": s(th.ExternalID), ":now": ts(now), ":one": n(1),
			},
		}},
	}})
	if err == nil {
		return true, nil
	}
	if cancelledBy(err, 0) {
		return false, nil
	}
	return false, fmt.Errorf("create run %s: %w", r.ID, err)
}

// cancelledBy reports whether err is a cancelled transaction whose item i failed its condition.
func cancelledBy(err error, i int) bool {
	var tc *types.TransactionCanceledException
	if !errors.As(err, &tc) || i >= len(tc.CancellationReasons) {
		return false
	}
	c := tc.CancellationReasons[i].Code
	return c != nil && *c == "ConditionalCheckFailed"
}

// GetRun returns a run of the workspace, or a NotFound error.
func (st *Store) GetRun(ctx context.Context, ws, id string) (Run, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: key(runPK(ws, id), "RUN"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Run{}, fmt.Errorf("get run %s: %w", id, err)
	}
	if len(out.Item) == 0 {
		return Run{}, apierr.New(apierr.NotFound, "run not found")
	}
	return decodeRun(out.Item)
}

// StartRun moves a queued (or, after a crash, running) run to running and counts the attempt.
// A run that has already finished is returned as it is, with started false.
func (st *Store) StartRun(ctx context.Context, ws, id string) (Run, bool, error) {
	now := st.now().UTC()
	out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &st.table,
		Key:                      key(runPK(ws, id), "RUN"),
		UpdateExpression:         aws.String("SET #st = :running, started_at = if_not_exists(started_at, :now), updated_at = :now ADD attempts :one"),
		ConditionExpression:      aws.String("#st IN (:queued, :running)"),
		ExpressionAttributeNames: map[string]string{"#st": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":running": s(RunRunning), ":queued": s(RunQueued), ":now": ts(now), ":one": n(1),
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		var cf *types.ConditionalCheckFailedException
		if errors.As(err, &cf) && len(cf.Item) > 0 {
			r, derr := decodeRun(cf.Item)
			return r, false, derr
		}
		return Run{}, false, fmt.Errorf("start run %s: %w", id, err)
	}
	r, err := decodeRun(out.Attributes)
	return r, true, err
}

// FinishRun moves a running run to completed (with result) or failed (with errMsg).
func (st *Store) FinishRun(ctx context.Context, ws, id, status string, result *Result, errMsg string) (Run, error) {
	if status != RunCompleted && status != RunFailed {
		return Run{}, fmt.Errorf("finish run %s: bad status %q", id, status)
	}
	now := st.now().UTC()
	vals := map[string]types.AttributeValue{":st": s(status), ":running": s(RunRunning), ":now": ts(now), ":err": s(errMsg), ":res": s("")}
	if result != nil {
		vals[":res"] = s(result.Text)
	}
	out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &st.table,
		Key:                       key(runPK(ws, id), "RUN"),
		UpdateExpression:          aws.String("SET #st = :st, completed_at = :now, updated_at = :now, result_text = :res, #err = :err"),
		ConditionExpression:       aws.String("#st = :running"),
		ExpressionAttributeNames:  map[string]string{"#st": "status", "#err": "error"},
		ExpressionAttributeValues: vals,
		ReturnValues:              types.ReturnValueAllNew,
	})
	if err != nil {
		return Run{}, fmt.Errorf("finish run %s: %w", id, err)
	}
	return decodeRun(out.Attributes)
}

func decodeRun(item map[string]types.AttributeValue) (Run, error) {
	r := Run{
		ID:          str(item, "run_id"),
		WorkspaceID: str(item, "workspace_id"),
		ThreadID:    str(item, "thread_id"),
		MessageID:   str(item, "message_id"),
		Status:      str(item, "status"),
		Error:       str(item, "error"),
	}
	if r.ID == "" {
		return Run{}, errors.New("decode run: item has no run_id")
	}
	r.Attempts = int(num(item, "attempts"))
	r.CreatedAt = tm(item, "created_at")
	r.UpdatedAt = tm(item, "updated_at")
	if t := tm(item, "started_at"); !t.IsZero() {
		r.StartedAt = &t
	}
	if t := tm(item, "completed_at"); !t.IsZero() {
		r.CompletedAt = &t
	}
	if r.Status == RunCompleted {
		r.Result = &Result{Text: str(item, "result_text")}
	}
	return r, nil
}

func str(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func num(item map[string]types.AttributeValue, name string) int64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		i, _ := strconv.ParseInt(v.Value, 10, 64)
		return i
	}
	return 0
}

func tm(item map[string]types.AttributeValue, name string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, str(item, name))
	return t
}
