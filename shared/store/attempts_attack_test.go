package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/hookgate/hookgate/shared/apierr"
)

// A manual retry of a delivery pending at attempt 0 of its series with no lease (created or reset
// but not yet attempted: the retry route accepts it) reads it, and before its update the queued
// message claims that attempt and ends the delivery as failed (a one-shot series, a 410, a deleted
// subscription: an attempt 0 that is final). The series is still the one the retry read, so its
// update goes through and removes the final attempt the retry never kept: the attempt must be in
// the log either way (kept, or the retry refused). (Fails: the retry's condition pins the series,
// not the state it read; the attempt is lost, total_attempts counts it.)
func TestAttackRetryOfAnUnattemptedDeliveryRacedByItsFinalAttempt(t *testing.T) {
	t.Parallel()
	plain := newStore(t)
	ctx := context.Background()
	createDelivery(t, plain)
	a0 := Attempt{At: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), StatusCode: 500, LatencyMS: 1}
	attempt(t, plain, a0, DeliveryFailed, nil)
	if _, err := plain.RetryDeliveryOnce(ctx, "ws", "dlv_1"); err != nil {
		t.Fatal(err)
	}
	// Series 1 is pending at attempt 0, unleased: its message is in the queue.
	r0 := Attempt{At: a0.At.Add(time.Hour), Series: 1, StatusCode: 410, LatencyMS: 2, ResponseSnippet: "gone"}
	db := &hookDB{DB: plain.db, hook: func() { attempt(t, plain, r0, DeliveryFailed, nil) }}
	raced := New(db, plain.table, time.Now)
	d, err := raced.RetryDeliveryOnce(ctx, "ws", "dlv_1")
	if err != nil && apierr.CodeOf(err) != apierr.Conflict {
		t.Fatal(err)
	}
	t.Logf("the raced retry: series %d %s, err %v", d.Series, d.Status, err)
	after, _ := plain.GetDelivery(ctx, "ws", "dlv_1")
	_, atts, _ := plain.DeliveryAttempts(ctx, "ws", "dlv_1")
	if len(atts) != after.TotalAttempts {
		t.Errorf("total_attempts %d, but the log lists %d: %+v", after.TotalAttempts, len(atts), atts)
	}
	wantAttempts(t, plain, a0, r0)
}

// The 1 KiB cut of a response snippet never splits a 4-byte rune, and odd bytes (a run of
// continuation bytes past the cut, invalid UTF-8) are cut at a byte, never grown.
func TestAttackSnippetCutAtFourByteRunesAndOddBytes(t *testing.T) {
	t.Parallel()
	emoji := "\U0001F600" // 4 bytes
	for name, c := range map[string]struct {
		in   string
		want int
	}{
		"rune over the cut by 1":   {strings.Repeat("a", maxResponseSnippet-3) + emoji + "b", maxResponseSnippet - 3},
		"rune over the cut by 3":   {strings.Repeat("a", maxResponseSnippet-1) + emoji, maxResponseSnippet - 1},
		"rune ending at the cut":   {strings.Repeat("a", maxResponseSnippet-4) + emoji + "b", maxResponseSnippet},
		"emoji only":               {strings.Repeat(emoji, 300), maxResponseSnippet},
		"exactly 1 KiB":            {strings.Repeat("a", maxResponseSnippet), maxResponseSnippet},
		"continuation bytes only":  {strings.Repeat("\x80", 2*maxResponseSnippet), 0},
		"invalid bytes then ascii": {strings.Repeat("\xff", maxResponseSnippet) + "tail", maxResponseSnippet},
	} {
		got := boundSnippet(c.in)
		if len(got) != c.want || !strings.HasPrefix(c.in, got) {
			t.Errorf("%s: kept %d bytes, want %d", name, len(got), c.want)
		}
		if utf8.ValidString(c.in) && !utf8.ValidString(got) {
			t.Errorf("%s: a valid response cut into invalid UTF-8", name)
		}
	}
}

// The largest delivery the event log can make (an event's data at its 390,000-byte bound, in its
// envelope) still ends with its final attempt and a full 1 KiB snippet on its item: the record
// stays under DynamoDB's 400 KB and the log lists it.
func TestAttackFinalAttemptOnTheLargestDelivery(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	data, _ := json.Marshal(strings.Repeat("x", maxEventData-2))
	payload, _ := json.Marshal(map[string]any{
		"id": "evt_" + strings.Repeat("0", 26), "type": "webhook.stripe.customer.subscription.updated", "created_at": time.Now().Format(time.RFC3339Nano),
		"workspace_id": "ws_" + strings.Repeat("0", 26), "data": json.RawMessage(data),
	})
	d := Delivery{
		ID: "dlv_" + strings.Repeat("0", 26), WorkspaceID: "ws", SubscriptionID: "sub_" + strings.Repeat("0", 26), FIFO: true,
		EventID: "evt_" + strings.Repeat("0", 26), EventType: "webhook.stripe.customer.subscription.updated", Payload: payload,
	}
	if _, _, err := st.CreateDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.ClaimAttempt(ctx, "ws", d.ID, 0, time.Minute); !ok || err != nil {
		t.Fatal(ok, err)
	}
	a := Attempt{At: time.Now().UTC(), StatusCode: 503, LatencyMS: 29999, ResponseSnippet: strings.Repeat("\U0001F600", 1000), Error: "timeout"}
	if err := st.RecordAttempt(ctx, "ws", d.ID, a, DeliveryFailed, nil); err != nil {
		t.Fatalf("record the final attempt of a %d-byte payload: %v", len(payload), err)
	}
	_, atts, err := st.DeliveryAttempts(ctx, "ws", d.ID)
	if err != nil || len(atts) != 1 || len(atts[0].ResponseSnippet) != maxResponseSnippet || atts[0].Error != "timeout" {
		t.Fatalf("attempts: %d %v", len(atts), err)
	}
	if _, err := st.RetryDeliveryOnce(ctx, "ws", d.ID); err != nil {
		t.Fatal(err)
	}
	if _, atts, err := st.DeliveryAttempts(ctx, "ws", d.ID); err != nil || len(atts) != 1 {
		t.Fatalf("after a retry: %d %v", len(atts), err)
	}
}

// stuckDB leaves every key of every BatchGetItem unprocessed (a table throttled for good).
type stuckDB struct {
	DB
	calls atomic.Int32
}

func (d *stuckDB) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	d.calls.Add(1)
	return &dynamodb.BatchGetItemOutput{UnprocessedKeys: in.RequestItems}, nil
}

// Keys that stay unprocessed are asked again with a growing pause, until the caller's deadline:
// the list then fails with it, it does not spin nor hang.
func TestAttackListDeliveriesWithKeysUnprocessedForGood(t *testing.T) {
	t.Parallel()
	plain := newStore(t)
	createDelivery(t, plain)
	db := &stuckDB{DB: plain.db}
	st := New(db, plain.table, time.Now)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := st.ListDeliveries(ctx, "ws", "sub_1", DeliveryFilter{Limit: 10})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second || db.calls.Load() > 8 {
		t.Fatalf("after %v and %d batch reads: %v", time.Since(start), db.calls.Load(), err)
	}
}
