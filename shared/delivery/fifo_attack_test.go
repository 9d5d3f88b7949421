package delivery

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// groupStore is the fake store with one delivery per id, all to the fake's subscription: enough
// for a FIFO group of several deliveries.
type groupStore struct {
	*fakeStore
	gmu sync.Mutex
	ds  map[string]*store.Delivery
}

func newGroupStore(base *fakeStore, ids ...string) *groupStore {
	g := &groupStore{fakeStore: base, ds: map[string]*store.Delivery{}}
	for _, id := range ids {
		d := base.d
		d.ID = id
		g.ds[id] = &d
	}
	return g
}

func (g *groupStore) ClaimAttempt(_ context.Context, _, id string, attempt int, _ time.Duration) (store.Delivery, bool, error) {
	g.gmu.Lock()
	defer g.gmu.Unlock()
	d := g.ds[id]
	if d.Status != store.DeliveryPending || d.Attempts != attempt {
		return *d, false, nil
	}
	return *d, true, nil
}

func (g *groupStore) RecordAttempt(_ context.Context, _, id string, a store.Attempt, status string, next *time.Time) error {
	g.gmu.Lock()
	defer g.gmu.Unlock()
	d := g.ds[id]
	d.Status, d.Attempts, d.NextAttemptAt = status, a.Number+1, next
	return nil
}

// A FIFO group's messages are taken one after another in one invocation. A slow endpoint (each
// request near the HTTP timeout) makes a batch of ten outrun the function's timeout: Lambda then
// kills the invocation mid-request, nothing of the batch is deleted, and the request in progress is
// sent again when its message returns. A message that no longer fits the invocation's time (less
// than one attempt's lease left) must be handed back untouched, with the rest of its group, visible
// again at once, as the worker does with a thread.
func TestOrderedGroupHandsBackWhatDoesNotFitTheDeadline(t *testing.T) {
	r := newRig(t, "0s", 0, nil)
	gs := newGroupStore(r.st, "dlv_1", "dlv_2", "dlv_3")
	slow := func(_ context.Context, req outbound.Request) outbound.Result {
		r.posts++
		r.now = r.now.Add(40 * time.Second) // the endpoint answers late, each time
		return outbound.Result{StatusCode: http.StatusOK}
	}
	h := New(r.h.cfg, gs, r.q, slow, slog.New(slog.DiscardHandler), func() time.Time { return r.now })
	vis := &fakeVisibility{}
	h.WithOrdered(vis)
	// 90 s left: one attempt (lease 60 s) fits, a second would end past the deadline.
	ctx, cancel := context.WithDeadline(context.Background(), r.now.Add(90*time.Second))
	defer cancel()
	resp, _ := h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{
		orderedRecord("m1", "sub_1", "dlv_1"), orderedRecord("m2", "sub_1", "dlv_2"), orderedRecord("m3", "sub_1", "dlv_3"),
	}})
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if r.posts != 1 || !slices.Equal(failed, []string{"m2", "m3"}) {
		t.Fatalf("%d requests made with 90 s left and 60 s per attempt; handed back %v, want m2 and m3 untouched", r.posts, failed)
	}
	if gs.ds["dlv_2"].Attempts != 0 || gs.ds["dlv_3"].Attempts != 0 || gs.ds["dlv_1"].Status != store.DeliverySucceeded {
		t.Fatalf("deliveries %+v %+v %+v", *gs.ds["dlv_1"], *gs.ds["dlv_2"], *gs.ds["dlv_3"])
	}
	if !slices.Equal(vis.handles, []string{"rh-m2", "rh-m3"}) || len(vis.holds) != 1 || vis.holds[0] != 0 {
		t.Fatalf("handed back %v with holds %v, want visible again at once", vis.handles, vis.holds)
	}
}

// SQS refuses a visibility timeout that takes a message past 12 hours from its receipt, and does
// not clamp it. A wait of 12 hours or more (a schedule step up to 24 h, a long Retry-After, an open
// circuit's cool-down of up to a day) was asked for as 12 hours after the attempt had already used
// some of them: refused, the group came back after the queue's 6 minutes, asked again, was refused
// again: a receive every 6 minutes for the whole wait, for the message and those behind it, which
// reach the 1,000 receives of the DLQ in a few such waits.
func TestOrderedHoldFitsSQSTwelveHoursFromReceipt(t *testing.T) {
	r := newRig(t, "0s,24h", 0, nil)
	received := r.now
	slow := func(_ context.Context, req outbound.Request) outbound.Result {
		r.posts++
		r.now = r.now.Add(20 * time.Second)
		return outbound.Result{StatusCode: http.StatusBadGateway}
	}
	h := New(r.h.cfg, r.st, r.q, slow, slog.New(slog.DiscardHandler), func() time.Time { return r.now })
	vis := &fakeVisibility{}
	h.WithOrdered(vis)
	resp, _ := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{orderedRecord("m", "sub_1", "dlv_1")}})
	if r.posts != 1 || len(resp.BatchItemFailures) != 1 || len(vis.holds) != 1 {
		t.Fatalf("posts %d, failures %v, holds %v", r.posts, resp.BatchItemFailures, vis.holds)
	}
	asked := min(vis.holds[0], queue.MaxVisibility) // the Postponer's own cap
	if end := r.now.Add(asked); end.Sub(received) > queue.MaxVisibility {
		t.Fatalf("asked SQS for %s, %s after the receipt: past its 12 h, refused", asked, r.now.Sub(received))
	}
}
