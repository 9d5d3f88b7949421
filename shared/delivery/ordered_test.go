package delivery

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// fakeVisibility records the visibility changes of received messages.
type fakeVisibility struct {
	handles []string
	holds   []time.Duration
}

func (v *fakeVisibility) Postpone(_ context.Context, handles []string, d time.Duration) error {
	v.handles = append(v.handles, handles...)
	v.holds = append(v.holds, d)
	return nil
}

// orderedRecord is a message of the FIFO delivery queue: its body always names the first attempt.
func orderedRecord(id, group, delivery string) events.SQSMessage {
	b, _ := json.Marshal(queue.Delivery{Version: queue.DeliveryVersion, WorkspaceID: "ws", DeliveryID: delivery})
	return events.SQSMessage{MessageId: id, ReceiptHandle: "rh-" + id, Body: string(b), Attributes: map[string]string{"MessageGroupId": group}}
}

// A FIFO delivery's retries are waits of its own message: it is handed back with its visibility
// set to the schedule's wait, again and again, and nothing is queued or put on the retry schedule.
// The attempts follow the schedule exactly as the standard queue's do.
func TestOrderedRetriesAreWaitsOfTheSameMessage(t *testing.T) {
	r := newRig(t, "0s,5s,5m,30m", 0, func(n int) outbound.Result {
		if n < 4 {
			return outbound.Result{StatusCode: http.StatusInternalServerError}
		}
		return outbound.Result{StatusCode: http.StatusOK}
	})
	vis := &fakeVisibility{}
	r.h.WithOrdered(vis)
	var waits []time.Duration
	for range 10 {
		resp, _ := r.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{orderedRecord("m", "sub_1", "dlv_1")}})
		if len(resp.BatchItemFailures) == 0 {
			break
		}
		hold := vis.holds[len(vis.holds)-1]
		waits = append(waits, hold)
		r.now = r.now.Add(hold) // SQS hands it out again when its visibility ends
	}
	if want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute}; !slices.Equal(waits, want) {
		t.Fatalf("the message waited %v, want the schedule's %v", waits, want)
	}
	if r.posts != 4 || r.st.d.Status != store.DeliverySucceeded || r.st.d.Attempts != 4 {
		t.Fatalf("posts %d, delivery %+v", r.posts, r.st.d)
	}
	if len(r.q.sent) != 0 || len(r.st.scheduled) != 0 {
		t.Fatalf("an ordered delivery queued %d messages and scheduled %d retries: it must wait in its own message", len(r.q.sent), len(r.st.scheduled))
	}
}

// A message that arrives early (SQS returned it before the retry's time, or a duplicate) waits the
// rest without an attempt.
func TestOrderedMessageEarlyForItsRetryWaits(t *testing.T) {
	r := newRig(t, "0s,1h", 0, func(int) outbound.Result { return outbound.Result{StatusCode: http.StatusBadGateway} })
	vis := &fakeVisibility{}
	r.h.WithOrdered(vis)
	r.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{orderedRecord("m", "sub_1", "dlv_1")}})
	r.now = r.now.Add(20 * time.Minute)
	resp, _ := r.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{orderedRecord("m", "sub_1", "dlv_1")}})
	if len(resp.BatchItemFailures) != 1 || r.posts != 1 {
		t.Fatalf("early message: failures %v, posts %d", resp.BatchItemFailures, r.posts)
	}
	if got := vis.holds[len(vis.holds)-1]; got != 40*time.Minute {
		t.Fatalf("early message waits %s, want the 40m left", got)
	}
}

// A message of a group that must wait (here: one that cannot be read) holds back the messages after
// it in its group, in the same batch: all are handed back, visible again together, so the group's
// order holds. Another group goes on.
func TestOrderedGroupStopsAtItsFirstWait(t *testing.T) {
	r := newRig(t, "0s", 0, func(int) outbound.Result { return outbound.Result{StatusCode: http.StatusOK} })
	vis := &fakeVisibility{}
	r.h.WithOrdered(vis)
	bad := orderedRecord("a1", "sub_a", "dlv_x")
	bad.Body = "{not json"
	resp, _ := r.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		bad, orderedRecord("a2", "sub_a", "dlv_1"), orderedRecord("b1", "sub_1", "dlv_1"),
	}})
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	slices.Sort(failed)
	if !slices.Equal(failed, []string{"a1", "a2"}) {
		t.Fatalf("failures %v, want a1 and the a2 behind it", failed)
	}
	if !slices.Equal(vis.handles, []string{"rh-a1", "rh-a2"}) || vis.holds[0] != ErrorHold {
		t.Fatalf("postponed %v by %v", vis.handles, vis.holds)
	}
	if r.posts != 1 || r.st.d.Status != store.DeliverySucceeded {
		t.Fatalf("the other group's delivery: posts %d, %+v", r.posts, r.st.d)
	}
}

// The sample of a FIFO delivery queue message (events/delivery-fifo-sqs.json, as Lambda hands it
// over) is taken in order: its delivery's state decides, and a delivery that has ended ends the
// message (deleted, so its group goes on).
func TestOrderedSampleEvent(t *testing.T) {
	raw, err := os.ReadFile("../../events/delivery-fifo-sqs.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Records) != 1 || !ordered(ev.Records[0]) {
		t.Fatalf("the sample is not a FIFO queue's message: %+v", ev.Records)
	}
	r := newRig(t, "0s", 0, func(int) outbound.Result { return outbound.Result{StatusCode: http.StatusOK} })
	r.st.d.Status = store.DeliverySucceeded // ended: nothing more to do
	vis := &fakeVisibility{}
	r.h.WithOrdered(vis)
	resp, _ := r.h.Handle(context.Background(), ev)
	if len(resp.BatchItemFailures) != 0 || len(vis.holds) != 0 || r.posts != 0 {
		t.Fatalf("failures %v, holds %v, posts %d", resp.BatchItemFailures, vis.holds, r.posts)
	}
}

// A batch holds up to ten messages of one group, each an HTTP request in turn: a message is started
// only while the invocation has an attempt's lease left, and the rest of its group is handed back,
// visible again at once, so a slow endpoint never makes the invocation time out mid-request.
func TestOrderedGroupHandedBackBeforeTheTimeout(t *testing.T) {
	var r *rig
	r = newRig(t, "0s", 0, func(int) outbound.Result {
		r.now = r.now.Add(45 * time.Second) // a slow endpoint
		return outbound.Result{StatusCode: http.StatusOK}
	})
	r.now = time.Now() // the invocation's deadline is on the real clock
	vis := &fakeVisibility{}
	r.h.WithOrdered(vis)
	ctx, cancel := context.WithDeadline(context.Background(), r.now.Add(90*time.Second))
	defer cancel()
	resp, _ := r.h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{
		orderedRecord("m1", "sub_1", "dlv_1"), orderedRecord("m2", "sub_1", "dlv_2"), orderedRecord("m3", "sub_1", "dlv_3"),
	}})
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if r.posts != 1 || !slices.Equal(failed, []string{"m2", "m3"}) {
		t.Fatalf("posts %d, failures %v: want the first sent and the rest handed back", r.posts, failed)
	}
	if !slices.Equal(vis.handles, []string{"rh-m2", "rh-m3"}) || !slices.Equal(vis.holds, []time.Duration{0}) {
		t.Fatalf("postponed %v by %v, want m2 and m3 visible at once", vis.handles, vis.holds)
	}
}

// SQS refuses a visibility timeout that ends more than 12 hours after the receive, and part of that
// is spent by then: a longer wait is made in parts, the message returning early to wait the rest.
func TestOrderedWaitsStayUnderSQSMaximum(t *testing.T) {
	r := newRig(t, "0s,20h", 0, func(int) outbound.Result { return outbound.Result{StatusCode: http.StatusBadGateway} })
	vis := &fakeVisibility{}
	r.h.WithOrdered(vis)
	r.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{orderedRecord("m", "sub_1", "dlv_1")}})
	if len(vis.holds) != 1 || vis.holds[0] > queue.MaxVisibility-15*time.Minute || vis.holds[0] < 11*time.Hour {
		t.Fatalf("the 20h wait postponed the message by %v, want just under SQS's 12h", vis.holds)
	}
}

// An open circuit holds an ordered delivery in its message until the probe time, without an
// attempt: the claim is given back and nothing is queued. Back at its time, it is the probe.
func TestOrderedCircuitWaitIsNotAnAttempt(t *testing.T) {
	r := newRig(t, "0s,1s", 0, func(int) outbound.Result { return outbound.Result{StatusCode: http.StatusOK} })
	r.h.cfg.Circuit = DefaultCircuit
	r.st.sub.Circuit = store.Circuit{State: store.CircuitOpen, Until: r.now.Add(time.Minute)}
	vis := &fakeVisibility{}
	r.h.WithOrdered(vis)
	rec := orderedRecord("m", "sub_1", "dlv_1")
	resp, _ := r.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{rec}})
	if len(resp.BatchItemFailures) != 1 || r.posts != 0 || r.st.d.Attempts != 0 || r.st.lim.released != 1 {
		t.Fatalf("failures %v, posts %d, attempts %d, claims given back %d", resp.BatchItemFailures, r.posts, r.st.d.Attempts, r.st.lim.released)
	}
	// The cool-down's minute and a jitter of up to a fifth of it (half, here).
	if want := []time.Duration{66 * time.Second}; !slices.Equal(vis.holds, want) {
		t.Fatalf("held %v, want %v", vis.holds, want)
	}
	r.now = r.now.Add(vis.holds[0])
	resp, _ = r.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{rec}})
	if len(resp.BatchItemFailures) != 0 || r.posts != 1 || r.st.d.Status != store.DeliverySucceeded {
		t.Fatalf("after the cool-down: failures %v, posts %d, %+v", resp.BatchItemFailures, r.posts, r.st.d)
	}
	if len(r.q.sent) != 0 || len(r.st.scheduled) != 0 {
		t.Fatalf("queued %d, scheduled %d", len(r.q.sent), len(r.st.scheduled))
	}
}

// A receive of a message whose attempt another receive still holds (SQS handed it out again while
// that one ran, or the message is back after its own try failed past its claim) waits out what is
// left of that lease, not a whole lease, and makes no attempt; once the lease has run out, the next
// receive claims the attempt and sends it once.
func TestOrderedDuplicateWaitsOutTheLeaseLeft(t *testing.T) {
	r := newRig(t, "0s", 0, func(int) outbound.Result { return outbound.Result{StatusCode: http.StatusOK} })
	vis := &fakeVisibility{}
	r.h.WithOrdered(vis)
	r.st.leased, r.st.d.LeaseUntil = true, r.now.Add(20*time.Second) // the lease is a minute
	resp, _ := r.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{orderedRecord("m", "sub_1", "dlv_1")}})
	if len(resp.BatchItemFailures) != 1 || r.posts != 0 || len(vis.holds) != 1 {
		t.Fatalf("while held: failures %v, posts %d, holds %v", resp.BatchItemFailures, r.posts, vis.holds)
	}
	if vis.holds[0] != 20*time.Second {
		t.Fatalf("the message waits %s, want the 20s left of the lease", vis.holds[0])
	}
	// The holder died: its lease runs out, and the message is back.
	r.now = r.now.Add(20 * time.Second)
	r.st.leased = false
	resp, _ = r.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{orderedRecord("m", "sub_1", "dlv_1")}})
	if len(resp.BatchItemFailures) != 0 || r.posts != 1 || r.st.d.Status != store.DeliverySucceeded {
		t.Fatalf("after the lease: failures %v, posts %d, delivery %+v", resp.BatchItemFailures, r.posts, r.st.d)
	}
}

func TestLeaseLeft(t *testing.T) {
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		until time.Time
		want  time.Duration
	}{
		{time.Time{}, time.Minute},                    // no end recorded: a whole lease
		{now.Add(20 * time.Second), 20 * time.Second}, // what is left
		{now.Add(-time.Second), time.Second},          // just ran out: look again in a second
		{now.Add(time.Hour), time.Minute},             // a clock ahead: never more than a lease
	} {
		if got := leaseLeft(store.Delivery{LeaseUntil: c.until}, now, time.Minute); got != c.want {
			t.Errorf("lease until %v: %s, want %s", c.until, got, c.want)
		}
	}
}
