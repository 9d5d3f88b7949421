package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Event is an immutable record in a workspace's ordered log. Cursor is its position: 1, 2, 3, …
// with no gaps, and an event with a higher cursor is never visible before one with a lower cursor.
type Event struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	WorkspaceID string          `json:"workspace_id"`
	Cursor      int64           `json:"cursor"`
	CreatedAt   time.Time       `json:"created_at"`
	Data        json.RawMessage `json:"data"`
}

// KindEvent marks event-log items, so a DynamoDB stream filter can select them.
const KindEvent = "event"

// How long the marker that makes an event id unique is kept: longer than any SQS redelivery.
const eventIDRetention = 30 * 24 * time.Hour

// maxAppendTries bounds the optimistic retries of AppendEvent under contention.
const maxAppendTries = 100

func seqKey(ws string) map[string]types.AttributeValue { return key("WS#"+ws+"#EVSEQ", "SEQ") }
func eventPK(ws string) string                         { return "WS#" + ws + "#EV" }
func eventSK(cursor int64) string                      { return fmt.Sprintf("%019d", cursor) }
func markerKey(ws, id string) map[string]types.AttributeValue {
	return key("WS#"+ws+"#EVID#"+id, "EVID")
}

// AppendEvent appends e to its workspace's log and returns it with its cursor and time. The
// append is idempotent by e.ID: appending an id again returns the event already in the log.
//
// The counter, the event and the id marker are written in one transaction that requires the
// counter to be unchanged since it was read, so cursors are dense and commit in order; under
// contention the append retries with jitter.
func (st *Store) AppendEvent(ctx context.Context, e Event) (Event, error) {
	if e.ID == "" || e.Type == "" || e.WorkspaceID == "" {
		return Event{}, errors.New("append event: id, type and workspace are required")
	}
	if len(e.Data) == 0 {
		e.Data = json.RawMessage("{}")
	}
	for try := 0; try < maxAppendTries; try++ {
		cur, err := st.lastCursor(ctx, e.WorkspaceID)
		if err != nil {
			return Event{}, err
		}
		now := st.now().UTC()
		e.Cursor, e.CreatedAt = cur+1, now
		item := key(eventPK(e.WorkspaceID), eventSK(e.Cursor))
		item["kind"] = s(KindEvent) // the stream filter of the fan-out selects these items
		item["event_id"] = s(e.ID)
		item["type"] = s(e.Type)
		item["created_at"] = ts(now)
		item["data"] = s(string(e.Data))
		marker := markerKey(e.WorkspaceID, e.ID)
		marker["cursor"] = n(e.Cursor)
		marker["ttl"] = n(now.Add(eventIDRetention).Unix())

		cond := "#seq = :cur"
		if cur == 0 {
			cond = "attribute_not_exists(#seq) OR #seq = :cur"
		}
		_, err = st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{TableName: &st.table, Item: marker, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
			{Update: &types.Update{
				TableName:                 &st.table,
				Key:                       seqKey(e.WorkspaceID),
				UpdateExpression:          aws.String("SET #seq = :next"),
				ExpressionAttributeNames:  map[string]string{"#seq": "seq"},
				ConditionExpression:       aws.String(cond),
				ExpressionAttributeValues: map[string]types.AttributeValue{":cur": n(cur), ":next": n(e.Cursor)},
			}},
			{Put: &types.Put{TableName: &st.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		}})
		if err == nil {
			return e, nil
		}
		if cancelledBy(err, 0) {
			return st.eventByID(ctx, e.WorkspaceID, e.ID)
		}
		var tc *types.TransactionCanceledException
		var tip *types.TransactionInProgressException
		if !errors.As(err, &tc) && !errors.As(err, &tip) {
			return Event{}, fmt.Errorf("append event %s: %w", e.ID, err)
		}
		// Another writer moved the counter first: read it again after a short jittered pause.
		pause := time.Duration(1+rand.IntN(5+min(try, 20)*2)) * time.Millisecond
		select {
		case <-ctx.Done():
			return Event{}, fmt.Errorf("append event %s: %w", e.ID, ctx.Err())
		case <-time.After(pause):
		}
	}
	return Event{}, fmt.Errorf("append event %s: still contended after %d tries", e.ID, maxAppendTries)
}

func (st *Store) lastCursor(ctx context.Context, ws string) (int64, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: seqKey(ws), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, fmt.Errorf("read event counter of %s: %w", ws, err)
	}
	return num(out.Item, "seq"), nil
}

func (st *Store) eventByID(ctx context.Context, ws, id string) (Event, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: markerKey(ws, id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Event{}, fmt.Errorf("read event marker %s: %w", id, err)
	}
	cursor := num(out.Item, "cursor")
	ev, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: key(eventPK(ws), eventSK(cursor)), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Event{}, fmt.Errorf("read event %s: %w", id, err)
	}
	if len(ev.Item) == 0 {
		return Event{}, fmt.Errorf("read event %s: marker points at missing cursor %d", id, cursor)
	}
	return decodeEvent(ws, ev.Item)
}

// ListEvents returns up to limit events of the workspace with a cursor after the given one, in order.
func (st *Store) ListEvents(ctx context.Context, ws string, after int64, limit int) ([]Event, error) {
	out, err := st.db.Query(ctx, &dynamodb.QueryInput{
		TableName:              &st.table,
		KeyConditionExpression: aws.String("pk = :pk AND sk > :after"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": s(eventPK(ws)), ":after": s(eventSK(after)),
		},
		Limit:          aws.Int32(int32(limit)),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("list events of %s: %w", ws, err)
	}
	evs := make([]Event, 0, len(out.Items))
	for _, it := range out.Items {
		e, err := decodeEvent(ws, it)
		if err != nil {
			return nil, err
		}
		evs = append(evs, e)
	}
	return evs, nil
}

func decodeEvent(ws string, item map[string]types.AttributeValue) (Event, error) {
	c, err := strconv.ParseInt(str(item, "sk"), 10, 64)
	if err != nil {
		return Event{}, fmt.Errorf("decode event: bad cursor %q", str(item, "sk"))
	}
	return Event{
		ID:          str(item, "event_id"),
		Type:        str(item, "type"),
		WorkspaceID: ws,
		Cursor:      c,
		CreatedAt:   tm(item, "created_at"),
		Data:        json.RawMessage(str(item, "data")),
	}, nil
}
