package delivery

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// A delivery over its subscription's rate limit is deferred to its slot: the claim is given back,
// no attempt is spent, and the message that comes back holds the slot and is sent at its time.
func TestRateLimitDefersWithoutAnAttempt(t *testing.T) {
	r := newRig(t, "0s,1s", 0, func(int) outbound.Result { return outbound.Result{StatusCode: 204} })
	r.st.sub.RateLimit = &store.RateLimit{PerSecond: 0.1, Burst: 1}
	r.st.lim.tat = map[string]time.Time{"RATE": r.now.Add(30 * time.Second)} // two sends ahead
	start := r.now
	r.deliver(t, queue.Delivery{})
	if r.posts != 0 || r.st.d.Attempts != 0 || r.st.lim.released != 1 || len(r.q.sent) != 1 {
		t.Fatalf("posts %d attempts %d released %d sent %d", r.posts, r.st.d.Attempts, r.st.lim.released, len(r.q.sent))
	}
	m := r.q.sent[0]
	if !m.m.Paced || !m.m.NotBefore.Equal(start.Add(30*time.Second)) || m.delay != 30*time.Second-spinWait {
		t.Fatalf("deferred as %+v after %v", m.m, m.delay)
	}
	r.q.sent = nil
	r.now = r.now.Add(m.delay)
	r.deliver(t, m.m)
	if r.posts != 1 || r.st.d.Status != store.DeliverySucceeded || !r.now.Equal(start.Add(30*time.Second)) {
		t.Fatalf("posts %d status %s at %v", r.posts, r.st.d.Status, r.now.Sub(start))
	}
	if r.st.lim.tat["RATE"] != start.Add(40*time.Second) {
		t.Fatal("the paced message took another slot")
	}
}

// max_in_flight: with every slot held the attempt waits (no attempt spent); with one free it goes
// and frees its slot afterwards.
func TestMaxInFlightHoldsAndReleases(t *testing.T) {
	r := newRig(t, "0s", 0, func(int) outbound.Result { return outbound.Result{StatusCode: 204} })
	r.st.sub.MaxInFlight = 1
	r.st.lim.slots = map[string]bool{"someone": true}
	r.deliver(t, queue.Delivery{})
	if r.posts != 0 || r.st.d.Attempts != 0 || len(r.q.sent) != 1 || r.q.sent[0].m.NotBefore.Sub(r.now) < time.Second {
		t.Fatalf("posts %d attempts %d sent %+v", r.posts, r.st.d.Attempts, r.q.sent)
	}
	delete(r.st.lim.slots, "someone")
	r.run(t)
	if r.posts != 1 || r.st.d.Status != store.DeliverySucceeded || len(r.st.lim.slots) != 0 {
		t.Fatalf("posts %d status %s slots %v", r.posts, r.st.d.Status, r.st.lim.slots)
	}
}

// A subscription without limits costs nothing: no pacing, no slot, no claim given back, and a
// success outside a failure window counts nothing for the circuit.
func TestNoLimitsNoCost(t *testing.T) {
	r := newRig(t, "0s", 0, func(int) outbound.Result { return outbound.Result{StatusCode: 204} })
	r.h.cfg.Circuit = DefaultCircuit
	r.run(t)
	if l := r.st.lim; r.posts != 1 || l.tat != nil || l.slots != nil || l.released != 0 || l.counted != 0 || l.watch != 0 {
		t.Fatalf("posts %d limiter %+v", r.posts, l)
	}
}

// The circuit opens when the window's failures pass the threshold; its deliveries then wait
// without spending attempts, one probe goes after the cool-down, and its success closes it.
func TestCircuitOpensProbesAndCloses(t *testing.T) {
	down := true
	r := newRig(t, "0s,1s,1s,1s,1s", 0, func(int) outbound.Result {
		if down {
			return outbound.Result{StatusCode: 500}
		}
		return outbound.Result{StatusCode: 204}
	})
	r.h.cfg.Circuit = CircuitConfig{FailurePercent: 70, MinAttempts: 2, Window: time.Minute, Cooldown: 30 * time.Second}
	start := r.now
	r.deliver(t, queue.Delivery{}) // attempt 1 fails
	for range 2 {                  // attempt 2 fails and opens the circuit; attempt 3 waits
		m := r.q.sent[0]
		r.q.sent = r.q.sent[1:]
		r.now = r.now.Add(m.delay)
		r.deliver(t, m.m)
	}
	c := r.st.sub.Circuit
	if r.posts != 2 || c.State != store.CircuitOpen || r.st.d.Attempts != 2 || len(r.st.events) != 1 || r.st.events[0].Type != EventCircuitOpened {
		t.Fatalf("posts %d circuit %+v attempts %d events %+v", r.posts, c, r.st.d.Attempts, r.st.events)
	}
	if w := r.q.sent[0].m.NotBefore; w.Before(c.Until) || w.After(c.Until.Add(6*time.Second)) {
		t.Fatalf("waits until %v, the probe is at %v", w.Sub(start), c.Until.Sub(start))
	}
	down = false
	r.run(t)
	if r.posts != 3 || r.st.d.Status != store.DeliverySucceeded || r.st.sub.Circuit.State != store.CircuitClosed {
		t.Fatalf("posts %d status %s circuit %+v", r.posts, r.st.d.Status, r.st.sub.Circuit)
	}
	if len(r.st.events) != 2 || r.st.events[1].Type != EventCircuitClosed || r.st.events[0].ID == r.st.events[1].ID {
		t.Fatalf("events %+v", r.st.events)
	}
	if got := r.now.Sub(start); got < 30*time.Second {
		t.Fatalf("the probe went %v after the failures, before the cool-down", got)
	}
	if r.st.failures != 0 {
		t.Fatalf("the wait counted %d failed deliveries", r.st.failures)
	}
}

// A failed probe opens the circuit again for another cool-down; waiting spends no attempts, so
// the probes alone use up the schedule.
func TestCircuitFailedProbeReopens(t *testing.T) {
	r := newRig(t, "0s,1s,1s,1s", 0, func(int) outbound.Result { return outbound.Result{StatusCode: 503} })
	r.h.cfg.Circuit = CircuitConfig{FailurePercent: 70, MinAttempts: 2, Window: time.Minute, Cooldown: 30 * time.Second}
	r.h.cfg.BackoffFloor = time.Second
	start := r.now
	r.run(t)
	if r.posts != 4 || r.st.d.Status != store.DeliveryFailed {
		t.Fatalf("posts %d status %s", r.posts, r.st.d.Status)
	}
	if got := r.now.Sub(start); got < 60*time.Second {
		t.Fatalf("4 attempts in %v: the probes did not wait for their cool-downs", got)
	}
	opened := 0
	for _, e := range r.st.events {
		if e.Type == EventCircuitOpened {
			opened++
		}
	}
	if opened != 1 || r.st.sub.Circuit.State != store.CircuitOpen {
		t.Fatalf("opened %d times, circuit %+v", opened, r.st.sub.Circuit)
	}
}

// A manual retry is exactly one attempt: a failure ends it, however long the schedule.
func TestManualRetryIsOneAttempt(t *testing.T) {
	r := newRig(t, "default", 0, func(int) outbound.Result { return outbound.Result{StatusCode: 500} })
	r.st.d.OneShot, r.st.d.Series = true, 1
	r.run(t)
	if r.posts != 1 || r.st.d.Status != store.DeliveryFailed {
		t.Fatalf("posts %d status %s", r.posts, r.st.d.Status)
	}
}

func TestParseCircuit(t *testing.T) {
	if c, err := ParseCircuit("70,10,60,60"); err != nil || c != DefaultCircuit {
		t.Fatalf("%+v %v", c, err)
	}
	if c, err := ParseCircuit("off"); err != nil || c.FailurePercent != 0 {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []string{"", "70,10,60", "0,10,60,60", "101,10,60,60", "70,0,60,60", "70,10,0,60", "a,b,c,d"} {
		if _, err := ParseCircuit(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The circuit's bookkeeping failing after the request was made does not undo the attempt: it is
// recorded and its retry scheduled, not handed back to SQS, whose redelivery would send it again.
func TestCircuitBookkeepingFailureKeepsTheAttempt(t *testing.T) {
	r := newRig(t, "0s,1s", 0, func(int) outbound.Result { return outbound.Result{StatusCode: 500} })
	r.h.cfg.Circuit = DefaultCircuit
	r.st.lim.countErr = errors.New("throttled")
	r.deliver(t, queue.Delivery{})
	if r.posts != 1 || r.st.d.Attempts != 1 || r.st.lim.counted != 1 || len(r.q.sent) != 1 || r.q.sent[0].m.Attempt != 1 {
		t.Fatalf("posts %d attempts %d counted %d sent %+v", r.posts, r.st.d.Attempts, r.st.lim.counted, r.q.sent)
	}
}

// An attempt that waited for a max_in_flight slot takes a new rate slot when it comes back: the
// one it reserved before waiting has passed, and sending on it later would go beside the sends
// the lane gave that later time to (a rate over the limit).
func TestInFlightWaitTakesANewRateSlot(t *testing.T) {
	r := newRig(t, "0s", 0, func(int) outbound.Result { return outbound.Result{StatusCode: 204} })
	r.st.sub.RateLimit = &store.RateLimit{PerSecond: 1, Burst: 1}
	r.st.sub.MaxInFlight = 1
	r.st.lim.slots = map[string]bool{"someone": true}
	r.deliver(t, queue.Delivery{}) // takes the rate slot at now, finds every in-flight slot held
	if r.posts != 0 || len(r.q.sent) != 1 {
		t.Fatalf("posts %d sent %+v", r.posts, r.q.sent)
	}
	delete(r.st.lim.slots, "someone")
	m := r.q.sent[0]
	r.q.sent = nil
	r.now = m.m.NotBefore
	r.deliver(t, m.m)
	if r.posts != 1 {
		t.Fatalf("posts %d", r.posts)
	}
	// The lane's next free slot is a whole interval after this send, not before it.
	if next := r.st.lim.tat["RATE"]; next.Before(r.now.Add(time.Second)) {
		t.Fatalf("sent at %v with the lane free again from %v: two sends within one interval", r.now, next)
	}
}

// max_in_flight is checked when the attempt is sent: a slot freed while the attempt waited for its
// rate slot is taken then, not refused for having been held before.
func TestInFlightSlotFreedDuringThePacedWaitIsTaken(t *testing.T) {
	r := newRig(t, "0s", 0, func(int) outbound.Result { return outbound.Result{StatusCode: 204} })
	r.st.sub.RateLimit = &store.RateLimit{PerSecond: 10, Burst: 1}
	r.st.sub.MaxInFlight = 1
	r.st.lim.tat = map[string]time.Time{"RATE": r.now.Add(500 * time.Millisecond)}
	r.st.lim.slots = map[string]bool{"someone": true}
	r.h.cfg.Sleep = func(_ context.Context, d time.Duration) error {
		r.now = r.now.Add(d)
		r.st.mu.Lock()
		delete(r.st.lim.slots, "someone") // the other request ends meanwhile
		r.st.mu.Unlock()
		return nil
	}
	start := r.now
	r.deliver(t, queue.Delivery{})
	if r.posts != 1 || len(r.q.sent) != 0 || r.now.Sub(start) != 500*time.Millisecond || len(r.st.lim.slots) != 0 {
		t.Fatalf("posts %d after %v, requeued %+v, slots %v", r.posts, r.now.Sub(start), r.q.sent, r.st.lim.slots)
	}
}

// Retry spacing is bounded: with the endpoint's retry lanes over maxSpacingDelay behind (a backlog
// of more retries than a minute of spacing holds), a failed attempt's retry keeps its scheduled
// time and, when its message comes, goes at once: no queue at 5 a second growing with the backlog.
func TestRetrySpacingPastItsBoundKeepsTheRetrysTime(t *testing.T) {
	r := newRig(t, "0s,10s,10s", 0, func(n int) outbound.Result {
		if n == 1 {
			return outbound.Result{StatusCode: 500}
		}
		return outbound.Result{StatusCode: 204}
	})
	r.h.cfg.RetrySpacing = 200 * time.Millisecond
	far := r.now.Add(maxSpacingDelay + 10*time.Minute)
	r.st.lim.tat = map[string]time.Time{"RETRY#01": far, "RETRY#SEND": far}
	r.deliver(t, queue.Delivery{})
	if len(r.q.sent) != 1 || r.q.sent[0].m.Attempt != 1 || !r.q.sent[0].m.NotBefore.Equal(r.now.Add(10*time.Second)) {
		t.Fatalf("retry queued as %+v, want attempt 1 due in 10 s", r.q.sent)
	}
	next := r.q.sent[0]
	r.q.sent = nil
	r.now = r.now.Add(next.delay)
	due := next.m.NotBefore
	r.deliver(t, next.m)
	if r.posts != 2 || r.st.d.Status != store.DeliverySucceeded || len(r.q.sent) != 0 || r.now.After(due) {
		t.Fatalf("posts %d status %s requeued %+v, sent %v after its due time", r.posts, r.st.d.Status, r.q.sent, r.now.Sub(due))
	}
	if !r.st.lim.tat["RETRY#01"].Equal(far) || !r.st.lim.tat["RETRY#SEND"].Equal(far) {
		t.Fatal("a retry past the bound took a slot")
	}
}

// Within the bound the retry is spaced: its send slot, 30 s behind, is taken and held while the
// message waits for it (Paced), and it is sent at that slot without taking another.
func TestRetrySpacingWithinItsBoundHoldsTheSlot(t *testing.T) {
	r := newRig(t, "0s,1s", 0, func(n int) outbound.Result { return outbound.Result{StatusCode: 204} })
	r.h.cfg.RetrySpacing = 200 * time.Millisecond
	r.st.d.Attempts = 1
	slot := r.now.Add(30 * time.Second)
	r.st.lim.tat = map[string]time.Time{"RETRY#SEND": slot}
	r.deliver(t, queue.Delivery{Attempt: 1, NotBefore: r.now})
	if r.posts != 0 || r.st.d.Attempts != 1 || len(r.q.sent) != 1 || !r.q.sent[0].m.Paced || !r.q.sent[0].m.NotBefore.Equal(slot) {
		t.Fatalf("posts %d attempts %d deferred as %+v", r.posts, r.st.d.Attempts, r.q.sent)
	}
	m := r.q.sent[0]
	r.q.sent = nil
	r.now = r.now.Add(m.delay)
	r.deliver(t, m.m)
	if r.posts != 1 || r.st.d.Status != store.DeliverySucceeded || !r.now.Equal(slot) {
		t.Fatalf("posts %d status %s at %v", r.posts, r.st.d.Status, r.now.Sub(slot))
	}
	if got := r.st.lim.tat["RETRY#SEND"]; !got.Equal(slot.Add(200 * time.Millisecond)) {
		t.Fatalf("the lane is at %v: the paced message took another slot", got.Sub(slot))
	}
}
