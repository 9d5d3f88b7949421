package store

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// A retry recorded on the schedule is one transaction with its entry; the sweep reads exactly the
// due entries, oldest first, and deletes what it queued; the next attempt's record clears the mark.
func TestRetrySchedule(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, id := range []string{"dlv_a", "dlv_b"} {
		if _, _, err := st.CreateDelivery(ctx, Delivery{ID: id, WorkspaceID: "ws", SubscriptionID: "sub_1", EventID: "evt_" + id, EventType: "x", Payload: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := st.ClaimAttempt(ctx, "ws", id, 0, time.Minute); !ok || err != nil {
			t.Fatalf("claim %s: %v %v", id, ok, err)
		}
	}
	if err := st.RecordAttemptScheduled(ctx, "ws", "dlv_a", Attempt{At: now, Number: 0, StatusCode: 500}, now.Add(-time.Second), ""); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordAttemptScheduled(ctx, "ws", "dlv_b", Attempt{At: now, Number: 0, StatusCode: 500}, now.Add(time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	// A late duplicate of the recorded attempt records nothing, and schedules nothing.
	if err := st.RecordAttemptScheduled(ctx, "ws", "dlv_a", Attempt{At: now, Number: 0, StatusCode: 500}, now.Add(-2*time.Second), ""); err == nil {
		t.Fatal("a duplicate attempt was recorded")
	}
	if err := st.ScheduleDelivery(ctx, ScheduledDelivery{WorkspaceID: "ws", DeliveryID: "dlv_c", Attempt: 3, Due: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	d, _ := st.GetDelivery(ctx, "ws", "dlv_a")
	if !d.RetryScheduled || d.Attempts != 1 || d.Status != DeliveryPending || d.NextAttemptAt == nil {
		t.Fatalf("delivery after a scheduled retry: %+v", d)
	}
	due, more, err := st.DueDeliveries(ctx, now, 100)
	if err != nil || more || len(due) != 2 {
		t.Fatalf("due %+v more %v err %v", due, more, err)
	}
	got := map[string]ScheduledDelivery{}
	for _, e := range due {
		got[e.DeliveryID] = e
	}
	if a := got["dlv_a"]; a.Attempt != 1 || !a.Due.Equal(now.Add(-time.Second)) || got["dlv_c"].Attempt != 3 {
		t.Fatalf("due entries %+v", due)
	}
	for _, e := range due {
		if err := st.Unschedule(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if due, _, _ := st.DueDeliveries(ctx, now, 100); len(due) != 0 {
		t.Fatalf("still due after unscheduling: %+v", due)
	}
	if due, _, _ := st.DueDeliveries(ctx, now.Add(2*time.Hour), 100); len(due) != 1 || due[0].DeliveryID != "dlv_b" {
		t.Fatalf("due later: %+v", due)
	}
	// The next attempt's record clears the mark.
	if _, ok, err := st.ClaimAttempt(ctx, "ws", "dlv_a", 1, time.Minute); !ok || err != nil {
		t.Fatalf("claim attempt 1: %v %v", ok, err)
	}
	next := now.Add(time.Second)
	if err := st.RecordAttempt(ctx, "ws", "dlv_a", Attempt{At: now, Number: 1, StatusCode: 500}, DeliveryPending, &next); err != nil {
		t.Fatal(err)
	}
	if d, _ := st.GetDelivery(ctx, "ws", "dlv_a"); d.RetryScheduled {
		t.Fatalf("still marked scheduled: %+v", d)
	}
}
