package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A thread's events are indexed under the thread itself, so a reader that follows one
// conversation (the web widget's stream) queries that thread's items instead of scanning the
// workspace's whole log:
//
//	pk WS#<ws>#THR#<thread>  sk EV#<cursor, 19 digits>  a copy of the event
//
// The copy is written right after the event, with the event's own cursor, events of an append in
// cursor order; one thread's appends come one after another (its inbound messages are handled in
// order), so a thread's index is the workspace log restricted to the thread, in the same order.
// Only threads whose index is read get copies: the appender marks the others' events Unread (the
// worker: every channel but the widget's). Only the gateway's own conversation events are indexed (types
// message.* and run.* whose data names a thread_id): a SaaS payload (webhook.*, telegram.*) that
// happens to carry a thread_id field cannot reach a thread this way. The items have no "kind", so
// the fan-out's stream filter (kind = event) never sees them.

const threadEventPrefix = "EV#"

func threadEventSK(cursor int64) string { return threadEventPrefix + eventSK(cursor) }

// ThreadOf returns the thread an event is indexed under, or "" when it is not a conversation
// event (see the comment above).
func ThreadOf(e Event) string {
	if !strings.HasPrefix(e.Type, "message.") && !strings.HasPrefix(e.Type, "run.") {
		return ""
	}
	var d struct {
		ThreadID json.RawMessage `json:"thread_id"`
	}
	if json.Unmarshal(e.Data, &d) != nil || len(d.ThreadID) == 0 || d.ThreadID[0] != '"' {
		return ""
	}
	var id string
	if json.Unmarshal(d.ThreadID, &id) != nil {
		return ""
	}
	return id
}

// threadIndexPut returns the put that indexes e (cursor and time set) under its thread, or nil.
func threadIndexPut(table *string, e Event) *dynamodb.PutItemInput {
	th := ThreadOf(e)
	if th == "" || e.Unread {
		return nil
	}
	item := key(threadPK(e.WorkspaceID, th), threadEventSK(e.Cursor))
	item["event_id"] = s(e.ID)
	item["type"] = s(e.Type)
	item["created_at"] = ts(e.CreatedAt)
	item["data"] = s(string(e.Data))
	return &dynamodb.PutItemInput{TableName: table, Item: item}
}

// ListThreadEvents returns up to limit events of the thread with a cursor after the given one, in
// order (a consistent read). The cursors are the workspace log's: sparse within a thread.
func (st *Store) ListThreadEvents(ctx context.Context, ws, thread string, after int64, limit int) ([]Event, error) {
	out, err := st.db.Query(ctx, &dynamodb.QueryInput{
		TableName:              &st.table,
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :from AND :to"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": s(threadPK(ws, thread)), ":from": s(threadEventSK(after + 1)), ":to": s(threadEventPrefix + "9999999999999999999"),
		},
		Limit:          aws.Int32(int32(max(limit, 1))),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("list events of thread %s: %w", thread, err)
	}
	evs := make([]Event, 0, len(out.Items))
	for _, it := range out.Items {
		c, err := strconv.ParseInt(strings.TrimPrefix(str(it, "sk"), threadEventPrefix), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("decode thread event: bad cursor %q", str(it, "sk"))
		}
		evs = append(evs, Event{
			ID: str(it, "event_id"), Type: str(it, "type"), WorkspaceID: ws, Cursor: c,
			CreatedAt: tm(it, "created_at"), Data: json.RawMessage(str(it, "data")),
		})
	}
	return evs, nil
}
