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
	// Trace is the traceparent of the webhook that caused the event (trace.Parse-valid, 55 bytes)
	// or "": stored on the item so that the fan-out and the deliveries continue the trace.
	Trace string `json:"-"`
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
func (st *Store) AppendEvent(ctx context.Context, e Event) (Event, error) {
	evs, err := st.AppendEvents(ctx, []Event{e})
	if err != nil {
		return Event{}, err
	}
	return evs[0], nil
}

// AppendEvents appends events of one workspace, in order, as one contiguous run of cursors when
// none was appended before; each is idempotent by its ID.
//
// The counter, the events and their id markers are written in one transaction that requires the
// counter to be unchanged since it was read, so cursors are dense and commit in order; under
// contention the append retries with jitter. Appending several events at once costs one round of
// contention instead of one per event.
func (st *Store) AppendEvents(ctx context.Context, evs []Event) ([]Event, error) {
	if err := checkEvents(evs); err != nil {
		return nil, err
	}
	ws := evs[0].WorkspaceID
	for try := 0; try < maxAppendTries; try++ {
		cur, err := st.lastCursor(ctx, ws)
		if err != nil {
			return nil, err
		}
		now := st.now().UTC()
		items := make([]types.TransactWriteItem, 0, 1+2*len(evs))
		cond := "#seq = :cur"
		if cur == 0 {
			cond = "attribute_not_exists(#seq) OR #seq = :cur"
		}
		items = append(items, types.TransactWriteItem{Update: &types.Update{
			TableName:                 &st.table,
			Key:                       seqKey(ws),
			UpdateExpression:          aws.String("SET #seq = :next"),
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeNames:  map[string]string{"#seq": "seq"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":cur": n(cur), ":next": n(cur + int64(len(evs)))},
		}})
		for i := range evs {
			e := &evs[i]
			e.Cursor, e.CreatedAt = cur+1+int64(i), now
			marker := markerKey(ws, e.ID)
			marker["cursor"] = n(e.Cursor)
			marker["ttl"] = n(now.Add(eventIDRetention).Unix())
			item := key(eventPK(ws), eventSK(e.Cursor))
			item["kind"] = s(KindEvent) // the stream filter of the fan-out selects these items
			item["event_id"] = s(e.ID)
			item["type"] = s(e.Type)
			item["created_at"] = ts(now)
			item["data"] = s(string(e.Data))
			st.expire(item, now)
			if len(e.Trace) == 55 {
				item["trace"] = s(e.Trace)
			}
			items = append(items,
				types.TransactWriteItem{Put: &types.Put{TableName: &st.table, Item: marker, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
				types.TransactWriteItem{Put: &types.Put{TableName: &st.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}})
		}
		// After every marker, so the markers keep their places (duplicateMarker counts on them).
		for _, put := range threadIndexPuts(&st.table, ws, evs, now) {
			st.expire(put.Put.Item, now)
			items = append(items, put)
		}
		_, err = st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return evs, nil
		}
		if dup := duplicateMarker(err, len(evs)); dup {
			// Some were appended before (a retry): append one by one, each finding its own.
			if len(evs) == 1 {
				e, err := st.eventByID(ctx, ws, evs[0].ID)
				return []Event{e}, err
			}
			out := make([]Event, len(evs))
			for i := range evs {
				got, err := st.AppendEvents(ctx, evs[i:i+1])
				if err != nil {
					return nil, err
				}
				out[i] = got[0]
			}
			return out, nil
		}
		var tc *types.TransactionCanceledException
		var tip *types.TransactionInProgressException
		if !errors.As(err, &tc) && !errors.As(err, &tip) {
			return nil, fmt.Errorf("append events %s…: %w", evs[0].ID, err)
		}
		// Another writer moved the counter first: read it again after a short jittered pause.
		pause := time.Duration(1+rand.IntN(5+min(try, 20)*2)) * time.Millisecond
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("append events %s…: %w", evs[0].ID, ctx.Err())
		case <-time.After(pause):
		}
	}
	return nil, fmt.Errorf("append events %s…: still contended after %d tries", evs[0].ID, maxAppendTries)
}

// checkEvents checks an append of evs, and gives events without data an empty object.
func checkEvents(evs []Event) error {
	if len(evs) == 0 || len(evs) > maxGroupEvents {
		return fmt.Errorf("append events: %d events (1 to %d at a time)", len(evs), maxGroupEvents)
	}
	ws := evs[0].WorkspaceID
	for i := range evs {
		if evs[i].ID == "" || evs[i].Type == "" || evs[i].WorkspaceID != ws || ws == "" {
			return errors.New("append events: id, type and one workspace are required")
		}
		if len(evs[i].Data) == 0 {
			evs[i].Data = json.RawMessage("{}")
		}
	}
	return nil
}

// duplicateMarker reports whether a cancelled append failed on an event id marker (items 1, 3, 5…).
func duplicateMarker(err error, n int) bool {
	for i := 0; i < n; i++ {
		if cancelledBy(err, 1+2*i) {
			return true
		}
	}
	return false
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
		Trace:       str(item, "trace"),
	}, nil
}
