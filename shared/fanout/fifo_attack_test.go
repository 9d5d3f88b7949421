package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/manage"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// overlapQueue is the fake queue whose ordered sends each wait (up to a bound) for an ordered
// send of another subscription to be under way at the same time.
type overlapQueue struct {
	*fakeQueue
	mu      sync.Mutex
	inSend  map[string]int // subscription → its ordered sends under way
	overlap chan struct{}  // closed when two subscriptions' sends were under way at once
	once    sync.Once
}

func (q *overlapQueue) SendOrdered(ctx context.Context, m queue.Delivery, sub string) error {
	q.mu.Lock()
	q.inSend[sub]++
	if len(q.inSend) >= 2 {
		q.once.Do(func() { close(q.overlap) })
	}
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		if q.inSend[sub]--; q.inSend[sub] == 0 {
			delete(q.inSend, sub)
		}
		q.mu.Unlock()
	}()
	select {
	case <-q.overlap:
	case <-time.After(5 * time.Second): // a bound, not a measure: sent one by one, it never comes
		return errors.New("no other subscription's ordered send went meanwhile")
	}
	return q.fakeQueue.SendOrdered(ctx, m, sub)
}

// The fan-out serves every workspace from one stream. Sent one by one across all subscriptions,
// the ordered sends of a workspace with many FIFO subscriptions (a batch of 100 events to 50 of them
// is 5,000 requests in a row, minutes) outrun the fan-out's timeout and hold up every other
// workspace's events behind them. Only each subscription's own sends must keep their order:
// different subscriptions' go side by side.
func TestFIFOSendsOfDifferentSubscriptionsGoSideBySide(t *testing.T) {
	st := &fakeStore{created: map[string]store.Delivery{}, subs: []store.Subscription{
		{ID: "sub_a", Events: []string{"*"}, FIFO: true},
		{ID: "sub_b", Events: []string{"*"}, FIFO: true},
	}}
	var recs []events.DynamoDBEventRecord
	for i := range 3 {
		recs = append(recs, eventRecord(strconv.Itoa(100+i), fmt.Sprintf("evt_%02d", i), "run.created", "{}"))
	}
	q := &overlapQueue{fakeQueue: &fakeQueue{}, inSend: map[string]int{}, overlap: make(chan struct{})}
	h := New(st, q, manage.MatchEvent, slog.New(slog.DiscardHandler))
	resp, _ := h.Handle(context.Background(), events.DynamoDBEvent{Records: recs})
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v: the two FIFO subscriptions' sends went one after the other", resp.BatchItemFailures)
	}
	if len(q.ordered["sub_a"]) != 3 || len(q.ordered["sub_b"]) != 3 {
		t.Fatalf("ordered sends %v", q.ordered)
	}
}
