package store

import (
	"context"
	"encoding/json"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
)

// movingClock is a clock the test moves.
type movingClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *movingClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *movingClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// The first attempt's claim of a delivery no item holds creates it, claimed: the item is the one
// CreateDelivery and ClaimAttempt would leave (the same attributes, the same values but its own
// keys), and it is listed. Every later claim of that delivery (a copy of the message, the same
// message back after the lease, a message once the delivery ended) is ClaimAttempt's: the put
// never writes over the item, whatever the copy carries.
func TestClaimNewDeliveryCreatesTheDeliveryClaimed(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	clock := &movingClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	st := New(db, table, clock.now)
	ctx := context.Background()
	raw := func(id string) map[string]types.AttributeValue {
		t.Helper()
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: deliveryKey("ws", id), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Item
	}
	d := Delivery{ID: "dlv_new", WorkspaceID: "ws", SubscriptionID: "sub_1", EventID: "evt_1", EventType: "run.completed", Payload: json.RawMessage(`{"id":"evt_1"}`)}
	got, claimed, err := st.ClaimNewDelivery(ctx, d, time.Minute)
	if err != nil || !claimed || got.Status != DeliveryPending || got.Attempts != 0 || got.Series != 0 || !got.LeaseUntil.Equal(clock.now().Add(time.Minute)) || string(got.Payload) != `{"id":"evt_1"}` {
		t.Fatalf("claim: %+v %v %v", got, claimed, err)
	}
	// The same delivery made the old way: created by the fan-out, then claimed.
	old := d
	old.ID = "dlv_old"
	if _, _, err := st.CreateDelivery(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.ClaimAttempt(ctx, "ws", old.ID, 0, time.Minute); !ok || err != nil {
		t.Fatal(ok, err)
	}
	made, want := raw(d.ID), raw(old.ID)
	for _, name := range []string{"pk", "delivery_id", "gsi1sk"} { // the keys name the id
		delete(made, name)
		delete(want, name)
	}
	if !reflect.DeepEqual(made, want) {
		t.Fatalf("the claim made %v, the fan-out and the claim %v", made, want)
	}
	if list, _, err := st.ListDeliveries(ctx, "ws", "sub_1", DeliveryFilter{Limit: 10}); err != nil || len(list) != 2 {
		t.Fatalf("listed %+v %v", list, err)
	}
	before := raw(d.ID)
	// A copy while the lease holds claims nothing and changes nothing, whatever it carries.
	forged := d
	forged.Payload = json.RawMessage(`{"id":"evt_1","data":"other"}`)
	if held, ok, err := st.ClaimNewDelivery(ctx, forged, time.Minute); ok || err != nil || string(held.Payload) != `{"id":"evt_1"}` || !held.LeaseUntil.Equal(got.LeaseUntil) {
		t.Fatalf("a copy under the lease: %+v %v %v", held, ok, err)
	}
	if after := raw(d.ID); !reflect.DeepEqual(after, before) {
		t.Fatalf("a copy changed the item: %v → %v", before, after)
	}
	// Past the lease (the claimant died), the message back claims the item as it is.
	clock.add(2 * time.Minute)
	again, ok, err := st.ClaimNewDelivery(ctx, forged, time.Minute)
	if !ok || err != nil || string(again.Payload) != `{"id":"evt_1"}` || !again.CreatedAt.Equal(got.CreatedAt) {
		t.Fatalf("the message back after the lease: %+v %v %v", again, ok, err)
	}
	if err := st.RecordAttempt(ctx, "ws", d.ID, Attempt{At: clock.now(), StatusCode: 200}, DeliverySucceeded, nil); err != nil {
		t.Fatal(err)
	}
	clock.add(2 * time.Minute)
	if ended, ok, err := st.ClaimNewDelivery(ctx, d, time.Minute); ok || err != nil || ended.Status != DeliverySucceeded || ended.TotalAttempts != 1 {
		t.Fatalf("a copy after the success: %+v %v %v", ended, ok, err)
	}
	// An item an older fan-out wrote, never attempted: the carrying message claims it as it is.
	older := d
	older.ID = "dlv_older"
	if _, _, err := st.CreateDelivery(ctx, older); err != nil {
		t.Fatal(err)
	}
	created := raw(older.ID)
	clock.add(time.Second)
	older.Payload = json.RawMessage(`{"id":"evt_1","data":"carried"}`)
	if c, ok, err := st.ClaimNewDelivery(ctx, older, time.Minute); !ok || err != nil || string(c.Payload) != `{"id":"evt_1"}` {
		t.Fatalf("an older fan-out's item: %+v %v %v", c, ok, err)
	}
	claimedItem := raw(older.ID)
	delete(claimedItem, "lease_until")
	if !reflect.DeepEqual(claimedItem, created) {
		t.Fatalf("the claim of an older fan-out's item changed it: %v → %v", created, claimedItem)
	}
}
