package worker

import (
	"context"
	"sync"
	"time"

	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// inbound is an inbound message being handled, with the run it created and that run's opening
// events while they are held back (nil: none held).
type inbound struct {
	*queue.Inbound
	opening *opening
}

// opening is a new run held back for Config.Hold, unwritten, with its opening events: a turn that
// ends sooner writes the run once in its final state and takes the events for its closing group;
// otherwise the timer writes the run as CreateRunWith would have, then appends the events alone.
type opening struct {
	evs   []event
	timer *time.Timer

	mu       sync.Mutex  // held by the timer's writes, so that take waits for them
	run      *store.Held // the run, until it is in the table (nil)
	taken    bool        // a turn has them: the timer writes nothing
	appended bool        // the events are in the log
}

// hold holds run (created by this delivery, unwritten) and evs (its opening events) back for
// Config.Hold, then writes the run and appends the events alone unless a turn took them first.
func (h *Handler) hold(ctx context.Context, m *queue.Inbound, run store.Held, evs []event) *opening {
	o := &opening{evs: evs, run: &run}
	o.timer = time.AfterFunc(h.cfg.Hold, func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.taken {
			return
		}
		// The run before its events, so that their readers find it. Failed: whoever takes the
		// hold writes both, and the run is 404 until then.
		if err := o.write(ctx, h); err != nil {
			h.logger.WarnContext(ctx, "held run not written when its hold ended; its turn's end writes it", "run_id", m.RunID, "err", err)
			return
		}
		o.appended = h.append(ctx, m, evs...) == nil
	})
	return o
}

// write writes the held run, running with its first attempt counted, unless it is in the table.
// The caller holds o.mu, or has taken the hold.
func (o *opening) write(ctx context.Context, h *Handler) error {
	if o.run == nil {
		return nil
	}
	if _, _, err := h.store.PutHeld(ctx, *o.run); err != nil {
		return err
	}
	o.run = nil
	return nil
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

// unwritten returns the held run once the hold is taken, unless it is in the table (nil).
func (m *inbound) unwritten() *store.Held {
	if m.opening == nil {
		return nil
	}
	m.opening.mu.Lock()
	defer m.opening.mu.Unlock()
	return m.opening.run
}

// written records that the held run is in the table.
func (m *inbound) written() {
	m.opening.mu.Lock()
	m.opening.run = nil
	m.opening.mu.Unlock()
}

// flushOpening writes the held run unless it is in the table (running, its first attempt counted:
// a retried agent's attempt counts), then appends the opening events alone unless they are in the
// log; the message's handling ends with it, so that a retry of the message finds them before its
// own.
func (m *inbound) flushOpening(ctx context.Context, h *Handler) error {
	if m.opening == nil {
		return nil
	}
	pending := m.opening.take()
	if err := m.opening.write(ctx, h); err != nil {
		return err
	}
	if !pending {
		return nil
	}
	if err := h.append(ctx, m.Inbound, m.opening.evs...); err != nil {
		return err
	}
	m.opening.done()
	return nil
}
