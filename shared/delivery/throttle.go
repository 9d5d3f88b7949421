package delivery

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// Limiter is the part of the store that enforces a subscription's limits and circuit breaker
// across every delivery process.
type Limiter interface {
	ReservePace(ctx context.Context, p store.Pace, ref time.Time, horizon time.Duration) (time.Time, bool, error)
	TakeInFlight(ctx context.Context, ws, sub string, size int, holder string, lease time.Duration) (store.SlotRef, error)
	ReleaseInFlight(ctx context.Context, ref store.SlotRef, holder string) error
	ReleaseClaim(ctx context.Context, ws, id string, attempt int) error
	CountOutcome(ctx context.Context, ws, id string, failed bool, now time.Time, window time.Duration) (float64, float64, error)
	WatchCircuit(ctx context.Context, ws, id string, until time.Time) error
	OpenCircuit(ctx context.Context, ws, id string, now, probeAt time.Time) (store.Circuit, bool, error)
	ProbeCircuit(ctx context.Context, ws, id string, now time.Time, lease time.Duration) (bool, error)
	CloseCircuit(ctx context.Context, ws, id string) (store.Circuit, bool, error)
	ReopenCircuit(ctx context.Context, ws, id string, probeAt time.Time) error
}

// CircuitConfig is the circuit breaker of every subscription: it opens when, in the rolling
// Window, at least MinAttempts attempts were made and FailurePercent of them failed; it lets one
// probe through after Cooldown. FailurePercent 0 turns it off.
type CircuitConfig struct {
	FailurePercent int
	MinAttempts    int
	Window         time.Duration
	Cooldown       time.Duration
}

// DefaultCircuit is the circuit breaker's default: ≥ 70% of ≥ 10 attempts in a minute, a minute's
// cool-down.
var DefaultCircuit = CircuitConfig{FailurePercent: 70, MinAttempts: 10, Window: time.Minute, Cooldown: time.Minute}

// Events of the circuit breaker.
const (
	EventCircuitOpened = "endpoint.circuit_opened"
	EventCircuitClosed = "endpoint.circuit_closed"
)

// Waits of deferred attempts (none is an attempt: the claim is given back).
const (
	// spinWait is the longest wait an attempt makes in its process rather than in the queue; a
	// message re-queued for a wait arrives up to spinWait early and waits the rest here, so that
	// SQS's whole-second delays and its polling do not blur a paced send.
	spinWait = 1500 * time.Millisecond
	// busyWait is how long an attempt waits for a slot of max_in_flight, or for a probe's result.
	busyWait = 2 * time.Second
	// maxSpacingDelay bounds how far retry spacing pushes a retry past its due time. An endpoint
	// with more retries due together than maxSpacingDelay / RetrySpacing (300 at the default
	// 200 ms) gets the first ones spaced and the rest at their own jittered times, spread over
	// ±20% of their wait: a queue at 5 a second would grow with the backlog (12,000 retries after
	// a bad half hour would take 40 minutes), and a healthy endpoint's backlog would wait on it.
	maxSpacingDelay = time.Minute
)

// gate is what the limits and the circuit decided for one attempt.
type gate struct {
	wait  time.Duration // > 0: defer the attempt this long
	paced bool          // the deferred attempt holds its slot (rate, or retry spacing) at now+wait
	probe bool          // the attempt is its open circuit's probe
	slot  store.SlotRef // the max_in_flight slot it holds
}

// admit decides whether the claimed attempt of d to sub goes now. It waits in the process up to
// spinWait; longer waits are a deferral.
func (h *Handler) admit(ctx context.Context, m queue.Delivery, d store.Delivery, sub store.Subscription) (gate, error) {
	var g gate
	now := h.now()
	if c := sub.Circuit; h.cfg.Circuit.FailurePercent > 0 && c.State != store.CircuitClosed && c.State != "" {
		if c.State == store.CircuitOpen && c.Until.After(now) {
			// Spread the backlog's return over a fifth of the cool-down past the probe time.
			return gate{wait: c.Until.Sub(now) + time.Duration(h.rand()*float64(h.cfg.Circuit.Cooldown)*outbound.Jitter)}, nil
		}
		ok, err := h.limits.ProbeCircuit(ctx, sub.WorkspaceID, sub.ID, now, h.cfg.Lease)
		if err != nil {
			return g, err
		}
		if !ok {
			return gate{wait: outbound.Jittered(busyWait, h.rand())}, nil
		}
		g.probe = true
	}
	if m.Attempt > 0 && h.cfg.RetrySpacing > 0 && !g.probe && sub.RateLimit == nil && !m.Paced {
		// A retry goes spaced from the endpoint's other retries, however late its message came
		// (an endpoint with a rate limit has all its sends paced by it instead). Its slot is taken
		// from its send time (the message may have come a little early) and held while it waits
		// (Paced); a lane more than maxSpacingDelay behind is past spacing: the retry goes now.
		ref := later(now, m.NotBefore)
		at, ok, err := h.limits.ReservePace(ctx, store.RetrySendPace(sub.WorkspaceID, sub.ID, h.cfg.RetrySpacing), ref, maxSpacingDelay)
		if err != nil {
			return g, err
		}
		switch wait := at.Sub(now); {
		case !ok:
		case wait > spinWait:
			return gate{wait: wait, paced: true}, nil
		case wait > 0:
			if err := h.cfg.Sleep(ctx, wait); err != nil {
				return g, err
			}
			now = h.now()
		}
	}
	pace := sub.RateLimit != nil && !m.Paced && !g.probe
	// The rate lane and the concurrency slot are asked for at once: one round trip, not two.
	var (
		at      time.Time
		ok      bool
		paceErr error
		done    = make(chan struct{})
	)
	if pace {
		horizon := spinWait // waited here
		if h.viaQueue(ctx, m, h.step()) {
			horizon = max(horizon, h.step()) // one more hop of this chain can make the wait
		}
		rl := sub.RateLimit
		go func() {
			defer close(done)
			at, ok, paceErr = h.limits.ReservePace(ctx, store.RatePace(sub.WorkspaceID, sub.ID, rl.PerSecond, rl.Burst), now, horizon)
		}()
	} else {
		close(done)
	}
	var slotErr error
	if sub.MaxInFlight > 0 {
		g.slot, slotErr = h.limits.TakeInFlight(ctx, sub.WorkspaceID, sub.ID, sub.MaxInFlight, holder(d), h.cfg.Lease)
	}
	<-done
	free := func(g gate) gate {
		h.releaseSlot(ctx, g.slot, d)
		g.slot = store.SlotRef{}
		return g
	}
	if err := errors.Join(paceErr, slotErr); err != nil {
		return free(g), err
	}
	if pace {
		switch wait := at.Sub(now); {
		case !ok:
			return free(gate{wait: max(wait, busyWait), slot: g.slot}), nil
		case wait > spinWait:
			return free(gate{wait: wait, paced: true, slot: g.slot}), nil
		case wait > 0:
			if err := h.cfg.Sleep(ctx, wait); err != nil {
				return free(g), err
			}
			if sub.MaxInFlight > 0 && g.slot.IsZero() {
				// Every slot was held before the wait: ask again now, at the send time, as a slot
				// freed meanwhile is this attempt's to take.
				if g.slot, slotErr = h.limits.TakeInFlight(ctx, sub.WorkspaceID, sub.ID, sub.MaxInFlight, holder(d), h.cfg.Lease); slotErr != nil {
					return g, slotErr
				}
			}
		}
	}
	if sub.MaxInFlight > 0 && g.slot.IsZero() {
		// Not paced: the rate slot reserved for now is spent. Sent later on it, the attempt would go
		// beside the sends the lane gave that later time to, over the rate; it takes a new one then.
		return gate{wait: outbound.Jittered(busyWait, h.rand())}, nil
	}
	return g, nil
}

// releaseSlot frees a max_in_flight slot; one left held is freed by its lease.
func (h *Handler) releaseSlot(ctx context.Context, ref store.SlotRef, d store.Delivery) {
	if ref.IsZero() {
		return
	}
	if err := h.limits.ReleaseInFlight(context.WithoutCancel(ctx), ref, holder(d)); err != nil {
		h.log.WarnContext(ctx, "max_in_flight slot not released; its lease frees it", "delivery_id", d.ID, "err", err)
	}
}

// holder names one attempt of a delivery as the holder of a max_in_flight slot.
func holder(d store.Delivery) string { return fmt.Sprintf("%s#%d#%d", d.ID, d.Series, d.Attempts) }

// deferAttempt gives back the claim of m's attempt and queues it again for after g.wait: not an attempt,
// so the schedule and the failure counts do not move.
func (h *Handler) deferAttempt(ctx context.Context, m queue.Delivery, d store.Delivery, g gate) error {
	if err := h.limits.ReleaseClaim(ctx, d.WorkspaceID, d.ID, m.Attempt); err != nil {
		return err
	}
	h.log.DebugContext(ctx, "attempt deferred by the subscription's limits or circuit", "delivery_id", d.ID, "wait", g.wait.String())
	m.NotBefore, m.Paced = h.now().Add(g.wait), g.paced
	return h.requeue(ctx, m, g.wait)
}

// countOutcome feeds the attempt's outcome to the subscription's circuit breaker: it opens the
// circuit when the window's failures reach the threshold, and a probe's outcome closes or reopens it.
// A healthy endpoint costs nothing: successes count only in the window after a failure.
func (h *Handler) countOutcome(ctx context.Context, sub store.Subscription, g gate, res outbound.Result) error {
	cc := h.cfg.Circuit
	if cc.FailurePercent <= 0 {
		return nil
	}
	now, failed := h.now(), !res.Success()
	watching := sub.Circuit.WatchUntil.After(now)
	if !failed && !watching && !g.probe {
		return nil
	}
	if failed && !watching {
		if err := h.limits.WatchCircuit(ctx, sub.WorkspaceID, sub.ID, now.Add(cc.Window)); err != nil {
			return err
		}
	}
	attempts, failures, err := h.limits.CountOutcome(ctx, sub.WorkspaceID, sub.ID, failed, now, cc.Window)
	if err != nil {
		return err
	}
	switch {
	case g.probe && !failed:
		c, closed, err := h.limits.CloseCircuit(ctx, sub.WorkspaceID, sub.ID)
		if err != nil || !closed {
			return err
		}
		h.log.InfoContext(ctx, "probe succeeded: circuit closed", "subscription_id", sub.ID)
		return h.circuitEvent(ctx, sub, EventCircuitClosed, c, map[string]any{"opened_at": c.Since.Format(time.RFC3339Nano)})
	case g.probe:
		return h.limits.ReopenCircuit(ctx, sub.WorkspaceID, sub.ID, now.Add(cc.Cooldown))
	case failed && attempts >= float64(cc.MinAttempts) && failures*100 >= float64(cc.FailurePercent)*attempts:
		c, opened, err := h.limits.OpenCircuit(ctx, sub.WorkspaceID, sub.ID, now, now.Add(cc.Cooldown))
		if err != nil || c.State != store.CircuitOpen {
			return err
		}
		if opened {
			h.log.WarnContext(ctx, "endpoint failing: circuit opened", "subscription_id", sub.ID, "attempts", attempts, "failures", failures)
		}
		// Appended again by a later failure if this call's append was lost: its id is the opening's.
		return h.circuitEvent(ctx, sub, EventCircuitOpened, c, map[string]any{
			"next_probe_at": c.Until.Format(time.RFC3339Nano), "window_seconds": int(cc.Window / time.Second),
			"failure_percent": cc.FailurePercent, "min_attempts": cc.MinAttempts,
		})
	}
	return nil
}

// circuitEvent records a change of sub's circuit, with an id derived from the opening it is about.
func (h *Handler) circuitEvent(ctx context.Context, sub store.Subscription, typ string, c store.Circuit, data map[string]any) error {
	data["subscription_id"], data["origin"] = sub.ID, Origin(sub.URL)
	return h.appendEvent(ctx, sub.WorkspaceID, ids.Derive("evt", sub.WorkspaceID, sub.ID, fmt.Sprint(c.Seq), typ), typ, data)
}

// retryAt spaces the retries of one subscription's schedule step by RetrySpacing across every
// process: the retry due at due goes at the step's first free slot from due on, or at due when
// that slot is more than maxSpacingDelay away.
func (h *Handler) retryAt(ctx context.Context, d store.Delivery, due time.Time) (time.Time, error) {
	if h.cfg.RetrySpacing <= 0 || d.SubscriptionID == "" || d.Target != "" {
		return due, nil
	}
	at, ok, err := h.limits.ReservePace(ctx, store.RetryPace(d.WorkspaceID, d.SubscriptionID, d.Attempts+1, h.cfg.RetrySpacing), due, maxSpacingDelay)
	if err != nil {
		h.log.WarnContext(ctx, "retry spacing unavailable; the retry keeps its jittered time", "delivery_id", d.ID, "err", err)
		return due, nil
	}
	if !ok {
		return due, nil
	}
	return at, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ParseCircuit reads the circuit breaker's setting: "off", or "percent,min_attempts,window_seconds,
// cooldown_seconds" ("70,10,60,60" is DefaultCircuit).
func ParseCircuit(s string) (CircuitConfig, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return CircuitConfig{}, nil
	}
	parts := strings.Split(s, ",")
	bad := fmt.Errorf("circuit breaker %q: want off or percent,min_attempts,window_seconds,cooldown_seconds (e.g. 70,10,60,60)", s)
	if len(parts) != 4 {
		return CircuitConfig{}, bad
	}
	var v [4]int
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return CircuitConfig{}, bad
		}
		v[i] = n
	}
	if v[0] < 1 || v[0] > 100 || v[1] < 1 || v[1] > 10000 || v[2] < 1 || v[2] > 3600 || v[3] < 1 || v[3] > 86400 {
		return CircuitConfig{}, bad
	}
	return CircuitConfig{FailurePercent: v[0], MinAttempts: v[1], Window: time.Duration(v[2]) * time.Second, Cooldown: time.Duration(v[3]) * time.Second}, nil
}
