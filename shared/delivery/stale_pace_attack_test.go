package delivery

import (
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// A delivery that took its rate slot and then found every max_in_flight slot held must not keep
// that slot as a pass: after a long wait for max_in_flight it would be sent with no slot of the
// rate lane near its send time, beside the deliveries that took those slots (a burst over the limit).
func TestSlotWaitDoesNotKeepAStaleRateSlot(t *testing.T) {
	var sentAt time.Time
	var r *rig
	r = newRigRequeues(t, "0s", 0, 100, func(int) outbound.Result {
		sentAt = r.now
		return outbound.Result{StatusCode: 204}
	})
	r.st.sub.RateLimit = &store.RateLimit{PerSecond: 0.1, Burst: 1} // one send per 10 s
	r.st.sub.MaxInFlight = 1
	r.st.lim.slots = map[string]bool{"someone": true}
	start := r.now
	// next hands on the next message as SQS (or the sweep of the retry schedule) would.
	next := func() {
		if len(r.q.sent) == 0 && len(r.st.scheduled) > 0 {
			e := r.st.scheduled[0]
			r.st.scheduled = r.st.scheduled[1:]
			r.now = e.Due
			r.q.sent = append(r.q.sent, sent{m: queue.Delivery{Attempt: e.Attempt, NotBefore: e.Due}})
		}
		if len(r.q.sent) != 1 {
			t.Fatalf("at %v posts %d, sent %+v", r.now.Sub(start), r.posts, r.q.sent)
		}
		m := r.q.sent[0]
		r.q.sent = nil
		r.now = r.now.Add(m.delay)
		r.deliver(t, m.m)
	}
	r.deliver(t, queue.Delivery{})
	for r.now.Before(start.Add(time.Minute)) { // the slot stays held for a minute
		if r.posts != 0 {
			t.Fatalf("sent while every slot is held")
		}
		next()
	}
	delete(r.st.lim.slots, "someone")
	for r.posts == 0 {
		next()
	}
	if r.posts != 1 {
		t.Fatalf("posts %d", r.posts)
	}
	// The lane's last slot (its theoretical arrival time less one interval) is within a busy
	// wait of the send, not a minute before it.
	last := r.st.lim.tat["RATE"].Add(-10 * time.Second)
	if gap := sentAt.Sub(last); gap > 2*busyWait {
		t.Fatalf("sent %v after start on a rate slot taken %v before the send", sentAt.Sub(start), gap)
	}
}
