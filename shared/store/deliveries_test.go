package store

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/apierr"
)

func TestDeliveryAttemptsClaimRecordRetry(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	d := Delivery{ID: "dlv_1", WorkspaceID: "ws", SubscriptionID: "sub_1", EventID: "evt_1", EventType: "run.completed", Payload: json.RawMessage(`{"id":"evt_1"}`)}
	if _, created, err := st.CreateDelivery(ctx, d); err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if again, created, err := st.CreateDelivery(ctx, d); err != nil || created || again.Status != DeliveryPending {
		t.Fatalf("second create: %+v %v %v", again, created, err)
	}
	// Attempt 0: claimed once; a duplicate message cannot claim it while the lease holds.
	got, ok, err := st.ClaimAttempt(ctx, "ws", "dlv_1", 0, time.Minute)
	if err != nil || !ok || string(got.Payload) != `{"id":"evt_1"}` {
		t.Fatalf("claim: %+v %v %v", got, ok, err)
	}
	// The refusal says when the holder's lease runs out (a FIFO duplicate waits that long).
	if held, ok, _ := st.ClaimAttempt(ctx, "ws", "dlv_1", 0, time.Minute); ok || held.LeaseUntil.Sub(got.LeaseUntil).Abs() > time.Millisecond || time.Until(held.LeaseUntil) < 30*time.Second {
		t.Fatalf("a leased attempt was claimed twice, or its refusal names no lease: %v %v", ok, held.LeaseUntil)
	}
	next := time.Now().Add(time.Minute)
	err = st.RecordAttempt(ctx, "ws", "dlv_1", Attempt{At: time.Now(), Number: 0, StatusCode: 500, LatencyMS: 12, ResponseSnippet: "oops"}, DeliveryPending, &next)
	after, _ := st.GetDelivery(ctx, "ws", "dlv_1")
	if err != nil || after.Attempts != 1 || after.Status != DeliveryPending || after.NextAttemptAt == nil || after.LastStatusCode != 500 {
		t.Fatalf("record: %+v %v", after, err)
	}
	// The same attempt cannot be recorded twice, and a stale attempt-0 message cannot claim.
	if err := st.RecordAttempt(ctx, "ws", "dlv_1", Attempt{At: time.Now(), Number: 0}, DeliveryPending, &next); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("double record: %v", err)
	}
	if _, ok, _ := st.ClaimAttempt(ctx, "ws", "dlv_1", 0, time.Minute); ok {
		t.Fatal("a stale message claimed an attempt")
	}
	// Attempt 1 fails for good.
	if _, ok, err := st.ClaimAttempt(ctx, "ws", "dlv_1", 1, time.Minute); !ok || err != nil {
		t.Fatalf("claim 1: %v %v", ok, err)
	}
	err = st.RecordAttempt(ctx, "ws", "dlv_1", Attempt{At: time.Now(), Number: 1, Error: "timeout"}, DeliveryFailed, nil)
	failed, _ := st.GetDelivery(ctx, "ws", "dlv_1")
	if err != nil || failed.Status != DeliveryFailed || failed.NextAttemptAt != nil || failed.TotalAttempts != 2 {
		t.Fatalf("fail: %+v %v", failed, err)
	}
	// A manual retry starts a new series at attempt 0.
	retried, err := st.RetryDelivery(ctx, "ws", "dlv_1")
	if err != nil || retried.Status != DeliveryPending || retried.Attempts != 0 || retried.Series != 1 {
		t.Fatalf("retry: %+v %v", retried, err)
	}
	// Reset but never attempted (its message may never have been queued): it can be retried again.
	again, err := st.RetryDelivery(ctx, "ws", "dlv_1")
	if err != nil || again.Status != DeliveryPending || again.Attempts != 0 || again.Series != 2 {
		t.Fatalf("retry of a reset delivery never attempted: %+v %v", again, err)
	}
	if _, err := st.RetryDelivery(ctx, "other", "dlv_1"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("retry from another workspace: %v", err)
	}
	if _, ok, _ := st.ClaimAttempt(ctx, "ws", "dlv_1", 0, time.Minute); !ok {
		t.Fatal("the new series could not claim attempt 0")
	}
	// Once an attempt holds its lease, or has been recorded, the delivery is being attempted.
	if _, err := st.RetryDelivery(ctx, "ws", "dlv_1"); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("retry of a delivery under a lease: %v", err)
	}
	if err := st.RecordAttempt(ctx, "ws", "dlv_1", Attempt{At: time.Now(), Series: 2, Number: 0, StatusCode: 204}, DeliverySucceeded, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RetryDelivery(ctx, "ws", "dlv_1"); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("retry of a succeeded delivery: %v", err)
	}
	_, atts, err := st.DeliveryAttempts(ctx, "ws", "dlv_1")
	if err != nil || len(atts) != 3 || atts[0].StatusCode != 500 || atts[0].ResponseSnippet != "oops" || atts[1].Error != "timeout" || atts[2].Series != 2 {
		t.Fatalf("attempts: %+v %v", atts, err)
	}
}

func TestListDeliveriesFiltersAndPages(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	for i := range 7 {
		d := Delivery{ID: fmt.Sprintf("dlv_%d", i), WorkspaceID: "ws", SubscriptionID: "sub_1", EventID: "e", EventType: "t", Payload: json.RawMessage(`{}`)}
		if _, _, err := st.CreateDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			st.ClaimAttempt(ctx, "ws", d.ID, 0, time.Minute)
			if err := st.RecordAttempt(ctx, "ws", d.ID, Attempt{At: time.Now()}, DeliveryFailed, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	other := Delivery{ID: "dlv_x", WorkspaceID: "ws", SubscriptionID: "sub_2", EventID: "e", EventType: "t"}
	if _, _, err := st.CreateDelivery(ctx, other); err != nil {
		t.Fatal(err)
	}
	var all []Delivery
	cursor := ""
	for {
		page, next, err := st.ListDeliveries(ctx, "ws", "sub_1", DeliveryFilter{Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(all) != 7 || all[0].ID != "dlv_6" {
		t.Fatalf("listed %d, first %s", len(all), all[0].ID)
	}
	failed, _, err := st.ListDeliveries(ctx, "ws", "sub_1", DeliveryFilter{Status: DeliveryFailed, Limit: 100})
	if err != nil || len(failed) != 4 {
		t.Fatalf("failed: %d %v", len(failed), err)
	}
	if none, _, _ := st.ListDeliveries(ctx, "ws", "sub_1", DeliveryFilter{Until: time.Now().Add(-time.Hour), Limit: 10}); len(none) != 0 {
		t.Fatalf("time range ignored: %d", len(none))
	}
	if _, _, err := st.ListDeliveries(ctx, "ws", "sub_1", DeliveryFilter{Limit: 1, Cursor: "!!"}); apierr.CodeOf(err) != apierr.Invalid {
		t.Fatalf("bad cursor: %v", err)
	}
}

// A pending delivery after its first attempt is on its retry schedule: not retried by hand.
func TestRetryDeliveryRefusesAScheduledRetry(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	createDelivery(t, st)
	st.ClaimAttempt(ctx, "ws", "dlv_1", 0, time.Minute)
	next := time.Now().Add(time.Minute)
	if err := st.RecordAttempt(ctx, "ws", "dlv_1", Attempt{At: time.Now(), StatusCode: 500}, DeliveryPending, &next); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RetryDelivery(ctx, "ws", "dlv_1"); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("retry of a delivery waiting for its next attempt: %v", err)
	}
}

// A record the SDK sends again after DynamoDB applied it (the first answer lost) is the same call's
// write, not a duplicate's: it succeeds and counts once. Another call for the same attempt is
// still refused.
func TestRecordAttemptResentIsNotADuplicate(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	createDelivery(t, st)
	if _, ok, err := st.ClaimAttempt(ctx, "ws", "dlv_1", 0, time.Minute); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	a := Attempt{At: time.Now(), StatusCode: 500}
	for i := range 2 {
		if err := st.recordAttempt(ctx, "ws", "dlv_1", a, DeliveryFailed, nil, nil, "call-1"); err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
	}
	if err := st.recordAttempt(ctx, "ws", "dlv_1", a, DeliveryFailed, nil, nil, "call-2"); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("another call for the recorded attempt: %v", err)
	}
	got, err := st.GetDelivery(ctx, "ws", "dlv_1")
	if err != nil || got.TotalAttempts != 1 || got.Attempts != 1 || got.Status != DeliveryFailed {
		t.Fatalf("after a resend: %+v %v", got, err)
	}
}

// A call that died between its two writes (the attempt's item written, the delivery not moved on)
// does not block the attempt: claimed again after its lease, the next call records it and its
// item replaces the dead call's. The record is two plain writes, not a transaction.
func TestRecordAttemptAfterACallDiedBetweenItsWrites(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	createDelivery(t, st)
	dead := key("WS#ws#DLV#dlv_1", "ATT#0000#0000")
	dead["rec"], dead["status_code"], dead["number"], dead["series"] = s("dead-call"), n(500), n(0), n(0)
	if _, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.table, Item: dead}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.ClaimAttempt(ctx, "ws", "dlv_1", 0, time.Minute); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if err := st.recordAttempt(ctx, "ws", "dlv_1", Attempt{At: time.Now(), StatusCode: 204}, DeliverySucceeded, nil, nil, "call-2"); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetDelivery(ctx, "ws", "dlv_1")
	if err != nil || got.Status != DeliverySucceeded || got.TotalAttempts != 1 {
		t.Fatalf("delivery: %+v %v", got, err)
	}
	_, atts, err := st.DeliveryAttempts(ctx, "ws", "dlv_1")
	if err != nil || len(atts) != 1 || atts[0].StatusCode != 204 {
		t.Fatalf("attempts: %+v %v", atts, err)
	}
}

// A manual retry keeps the delivery for another DeliveryRetention from the retry, so that the
// table's TTL does not remove it while its new series runs.
func TestRetryDeliveryRefreshesTheTTL(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	created := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	clk := newClock(created)
	st := New(db, table, clk.now)
	ctx := context.Background()
	ttl := func() int64 {
		t.Helper()
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: deliveryKey("ws", "dlv_1"), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		return num(out.Item, "ttl")
	}
	createDelivery(t, st)
	if got, want := ttl(), created.Add(DeliveryRetention).Unix(); got != want {
		t.Fatalf("ttl at creation %d, want %d", got, want)
	}
	if _, ok, err := st.ClaimAttempt(ctx, "ws", "dlv_1", 0, time.Minute); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if err := st.RecordAttempt(ctx, "ws", "dlv_1", Attempt{At: clk.now()}, DeliveryFailed, nil); err != nil {
		t.Fatal(err)
	}
	retried := created.Add(29 * 24 * time.Hour) // a day before it would expire
	clk.set(retried)
	if _, err := st.RetryDelivery(ctx, "ws", "dlv_1"); err != nil {
		t.Fatal(err)
	}
	if got, want := ttl(), retried.Add(DeliveryRetention).Unix(); got != want {
		t.Fatalf("ttl after the retry %d, want %d (30 days from the retry)", got, want)
	}
}

// createDelivery stores the pending delivery dlv_1 of ws's sub_1.
func createDelivery(t *testing.T, st *Store) {
	t.Helper()
	d := Delivery{ID: "dlv_1", WorkspaceID: "ws", SubscriptionID: "sub_1", EventID: "e", EventType: "t", Payload: json.RawMessage(`{}`)}
	if _, _, err := st.CreateDelivery(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}
