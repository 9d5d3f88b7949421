package worker

import (
	"context"
	"sync"
	"time"

	"github.com/hookgate/hookgate/shared/queue"
)

// inbound is an inbound message being handled, with the opening events of the run it created
// while they are held back (nil: none held).
type inbound struct {
	*queue.Inbound
	opening *opening
}

// opening is a new run's opening events, held back for Config.Hold: a turn that ends sooner takes
// them for its closing group; otherwise the timer appends them alone.
type opening struct {
	evs   []event
	timer *time.Timer

	mu       sync.Mutex // held by the timer's append, so that take waits for it
	taken    bool       // a turn has them: the timer appends nothing
	appended bool       // they are in the log
}

// hold holds evs (a new run's opening events) back for Config.Hold, then appends them alone unless
// a turn took them first.
func (h *Handler) hold(ctx context.Context, m *queue.Inbound, evs []event) *opening {
	o := &opening{evs: evs}
	o.timer = time.AfterFunc(h.cfg.Hold, func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		if !o.taken {
			o.appended = h.append(ctx, m, evs...) == nil // failed: whoever takes them appends them
		}
	})
	return o
}

// take ends the hold and reports whether the events are not in the log yet: the caller's to append.
func (o *opening) take() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.timer.Stop()
	o.taken = true
	return !o.appended
}

// pending reports whether a turn took the events and they are not in the log yet.
func (o *opening) pending() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.taken && !o.appended
}

// done records that the events are in the log.
func (o *opening) done() {
	o.mu.Lock()
	o.appended = true
	o.mu.Unlock()
}

// lead takes the held opening events for the turn that is about to change the run: when they are
// not in the log yet, it returns the id of the first, which the run's change records
// (store.Finish.EventsLead) and after which every settle appends the turn's closing events.
func (m *inbound) lead() string {
	if m.opening == nil || !m.opening.take() {
		return ""
	}
	return m.opening.evs[0].id(m.WorkspaceID)
}

// flushOpening appends the opening events alone unless they are in the log; the message's handling
// ends with it, so that a retry of the message finds them before its own.
func (m *inbound) flushOpening(ctx context.Context, h *Handler) error {
	if m.opening == nil || !m.opening.take() {
		return nil
	}
	if err := h.append(ctx, m.Inbound, m.opening.evs...); err != nil {
		return err
	}
	m.opening.done()
	return nil
}
