package store

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// gsi1 holds only keys: a list reads each delivery from the table, and shows what GetDelivery
// shows but the payload, whatever state the delivery is in.
func TestListedDeliveryIsTheItemWithoutItsPayload(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	mk := func(id string, d Delivery) {
		t.Helper()
		d.ID, d.WorkspaceID, d.EventID, d.EventType, d.Payload = id, "ws", "evt_"+id, "run.completed", json.RawMessage(`{"big":"payload"}`)
		if _, _, err := st.CreateDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	mk("dlv_fifo", Delivery{SubscriptionID: "sub_1", FIFO: true})
	mk("dlv_leased", Delivery{SubscriptionID: "sub_1"})
	mk("dlv_retry", Delivery{SubscriptionID: "sub_1"})
	mk("dlv_failed", Delivery{SubscriptionID: "sub_1"})
	if _, ok, err := st.ClaimAttempt(ctx, "ws", "dlv_leased", 0, time.Minute); !ok || err != nil {
		t.Fatal(ok, err)
	}
	next := time.Now().Add(time.Hour)
	for _, id := range []string{"dlv_retry", "dlv_failed"} {
		if _, ok, err := st.ClaimAttempt(ctx, "ws", id, 0, time.Minute); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if err := st.RecordAttemptScheduled(ctx, "ws", "dlv_retry", Attempt{At: time.Now(), StatusCode: 500, Error: "x"}, next, ""); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordAttempt(ctx, "ws", "dlv_failed", Attempt{At: time.Now(), StatusCode: 410}, DeliveryFailed, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RetryDeliveryOnce(ctx, "ws", "dlv_failed"); err != nil {
		t.Fatal(err)
	}
	listed, _, err := st.ListDeliveries(ctx, "ws", "sub_1", DeliveryFilter{Limit: 10})
	if err != nil || len(listed) != 4 {
		t.Fatalf("listed %d: %v", len(listed), err)
	}
	for _, l := range listed {
		want, err := st.GetDelivery(ctx, "ws", l.ID)
		if err != nil {
			t.Fatal(err)
		}
		want.Payload = nil
		if len(l.Payload) != 0 {
			t.Errorf("%s: listed with its payload", l.ID)
		}
		l.Payload = nil
		if !reflect.DeepEqual(l, want) {
			t.Errorf("listed\n %+v\nwant\n %+v", l, want)
		}
	}
}

// A status filter with small pages: every page's deliveries match, the pages together are every
// matching delivery once, newest first, and no other workspace's nor subscription's.
func TestListDeliveriesFilteredInSmallPages(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	var failed []string
	for i := range 9 {
		for _, ws := range []string{"ws", "other"} {
			d := Delivery{ID: fmt.Sprintf("dlv_%d", i), WorkspaceID: ws, SubscriptionID: "sub_1", EventID: "e", EventType: "t", Payload: json.RawMessage(`{}`)}
			if _, _, err := st.CreateDelivery(ctx, d); err != nil {
				t.Fatal(err)
			}
			if ws == "ws" && i%3 == 0 {
				continue
			}
			if _, ok, err := st.ClaimAttempt(ctx, ws, d.ID, 0, time.Minute); !ok || err != nil {
				t.Fatal(ok, err)
			}
			if err := st.RecordAttempt(ctx, ws, d.ID, Attempt{At: time.Now(), StatusCode: 500}, DeliveryFailed, nil); err != nil {
				t.Fatal(err)
			}
			if ws == "ws" {
				failed = append([]string{d.ID}, failed...)
			}
		}
	}
	other := Delivery{ID: "dlv_x", WorkspaceID: "ws", SubscriptionID: "sub_2", EventID: "e", EventType: "t"}
	if _, _, err := st.CreateDelivery(ctx, other); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 2, 4} {
		var got []string
		pages := 0
		for cursor := ""; ; pages++ {
			page, next, err := st.ListDeliveries(ctx, "ws", "sub_1", DeliveryFilter{Status: DeliveryFailed, Limit: limit, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > limit {
				t.Fatalf("limit %d: a page of %d", limit, len(page))
			}
			for _, d := range page {
				if d.Status != DeliveryFailed || d.WorkspaceID != "ws" || d.SubscriptionID != "sub_1" {
					t.Fatalf("limit %d: listed %+v", limit, d)
				}
				got = append(got, d.ID)
			}
			if cursor = next; next == "" {
				break
			}
		}
		if !reflect.DeepEqual(got, failed) {
			t.Fatalf("limit %d: listed %v in %d pages, want %v", limit, got, pages, failed)
		}
	}
}

// partialDB answers every BatchGetItem with at most one item, the other keys left unprocessed (as
// DynamoDB does past 16 MB, or when throttled).
type partialDB struct {
	DB
	calls atomic.Int32
}

func (d *partialDB) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	d.calls.Add(1)
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}, UnprocessedKeys: map[string]types.KeysAndAttributes{}}
	for table, ka := range in.RequestItems {
		first := ka
		first.Keys = ka.Keys[:1]
		got, err := d.DB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: first}}, opts...)
		if err != nil {
			return nil, err
		}
		out.Responses[table] = got.Responses[table]
		if len(ka.Keys) > 1 {
			rest := ka
			rest.Keys = ka.Keys[1:]
			out.UnprocessedKeys[table] = rest
		}
	}
	return out, nil
}

// Keys a BatchGetItem leaves unprocessed are read again: the list is whole and in order.
func TestListDeliveriesReadsUnprocessedKeysAgain(t *testing.T) {
	t.Parallel()
	plain := newStore(t)
	ctx := context.Background()
	var want []string
	for i := range 5 {
		d := Delivery{ID: fmt.Sprintf("dlv_%d", i), WorkspaceID: "ws", SubscriptionID: "sub_1", EventID: "e", EventType: "t", Payload: json.RawMessage(`{}`)}
		if _, _, err := plain.CreateDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		want = append([]string{d.ID}, want...)
	}
	db := &partialDB{DB: plain.db}
	st := New(db, plain.table, time.Now)
	listed, next, err := st.ListDeliveries(ctx, "ws", "sub_1", DeliveryFilter{Limit: 10})
	var got []string
	for _, d := range listed {
		got = append(got, d.ID)
	}
	if err != nil || next != "" || !reflect.DeepEqual(got, want) || db.calls.Load() != 5 {
		t.Fatalf("listed %v (next %q, %d batch reads), want %v: %v", got, next, db.calls.Load(), want, err)
	}
}
