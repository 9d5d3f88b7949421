package sweep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

type fakeStore struct {
	entries     []store.ScheduledDelivery
	reads       int
	failDeletes bool
}

func (f *fakeStore) DueDeliveries(_ context.Context, now time.Time, limit int) ([]store.ScheduledDelivery, bool, error) {
	f.reads++
	var due []store.ScheduledDelivery
	for _, e := range f.entries {
		if !e.Due.After(now) && len(due) < limit {
			due = append(due, e)
		}
	}
	return due, len(due) == limit, nil
}

func (f *fakeStore) Unschedule(_ context.Context, e store.ScheduledDelivery) error {
	if f.failDeletes {
		return errors.New("throttled")
	}
	for i, x := range f.entries {
		if x == e {
			f.entries = append(f.entries[:i], f.entries[i+1:]...)
			return nil
		}
	}
	return nil
}

type fakeQueue struct {
	batches [][]queue.Delivery
	fail    bool
}

func (q *fakeQueue) SendDeliveries(_ context.Context, ms []queue.Delivery) error {
	if q.fail {
		return errors.New("sqs down")
	}
	q.batches = append(q.batches, ms)
	return nil
}

// Every due entry is queued (ten per batch) as the first message of a new chain, and leaves the
// schedule; what is not due stays. When queuing fails, the entries stay for the next sweep.
func TestSweepQueuesWhatIsDue(t *testing.T) {
	now := time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC)
	st := &fakeStore{}
	for i := range 250 {
		st.entries = append(st.entries, store.ScheduledDelivery{WorkspaceID: "ws", DeliveryID: fmt.Sprintf("dlv_%d", i), Attempt: 3, Due: now.Add(-time.Minute)})
	}
	st.entries = append(st.entries, store.ScheduledDelivery{WorkspaceID: "ws", DeliveryID: "later", Attempt: 4, Due: now.Add(time.Hour)})
	q := &fakeQueue{fail: true}
	h := New(st, q, slog.New(slog.DiscardHandler), func() time.Time { return now })
	if err := h.Handle(context.Background(), events.EventBridgeEvent{}); err == nil || len(st.entries) != 251 {
		t.Fatalf("a failed send: %v, %d entries left", err, len(st.entries))
	}
	q.fail = false
	if err := h.Handle(context.Background(), events.EventBridgeEvent{}); err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, b := range q.batches {
		if len(b) > 10 {
			t.Fatalf("a batch of %d", len(b))
		}
		for _, m := range b {
			if m.Attempt != 3 || m.Requeues != 0 || !m.NotBefore.Equal(now.Add(-time.Minute)) {
				t.Fatalf("message %+v", m)
			}
		}
		sent += len(b)
	}
	if sent != 250 || len(st.entries) != 1 || st.entries[0].DeliveryID != "later" {
		t.Fatalf("sent %d, left %+v", sent, st.entries)
	}
}

// Entries that were queued but could not leave the schedule are not queued again by the same
// sweep (the next one, a minute later, does): one round's page of them, sent once.
func TestSweepStopsWhenEntriesCannotLeaveTheSchedule(t *testing.T) {
	now := time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC)
	st := &fakeStore{failDeletes: true}
	for i := range pageSize {
		st.entries = append(st.entries, store.ScheduledDelivery{WorkspaceID: "ws", DeliveryID: fmt.Sprintf("dlv_%d", i), Attempt: 3, Due: now.Add(-time.Minute)})
	}
	q := &fakeQueue{}
	h := New(st, q, slog.New(slog.DiscardHandler), func() time.Time { return now })
	ctx, cancel := context.WithTimeout(context.Background(), reserve+2*time.Second)
	defer cancel()
	if err := h.Handle(ctx, events.EventBridgeEvent{}); err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, b := range q.batches {
		sent += len(b)
	}
	if sent != pageSize || st.reads != 1 {
		t.Fatalf("sent %d messages for %d entries in %d reads", sent, pageSize, st.reads)
	}
}

// The schedule's event, as EventBridge sends it (events/delivery-sweep.json), goes through the
// Lambda runtime's decoder to the handler, which queues what is due.
func TestSweepTakesTheScheduledEvent(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", "delivery-sweep.json"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC)
	st := &fakeStore{entries: []store.ScheduledDelivery{{WorkspaceID: "ws", DeliveryID: "dlv_1", Attempt: 6, Due: now}}}
	q := &fakeQueue{}
	h := New(st, q, slog.New(slog.DiscardHandler), func() time.Time { return now })
	if _, err := lambda.NewHandler(h.Handle).Invoke(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	if len(q.batches) != 1 || len(q.batches[0]) != 1 || q.batches[0][0].DeliveryID != "dlv_1" || len(st.entries) != 0 {
		t.Fatalf("batches %+v, left %+v", q.batches, st.entries)
	}
}
