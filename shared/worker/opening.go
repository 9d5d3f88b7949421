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

// lead is called by a turn that is about to end the run's turn: when the opening events are still
// held, they are the turn's to append with its closing events (appendClosing), and lead returns
// the id of the first of them, which the run's change records (store.Finish.EventsLead) so that
// every later settle of this turn finds the closing events in that group. Otherwise "".
func (m *inbound) lead() string {
	if m.opening == nil || !m.opening.take() {
		return ""
	}
	return m.opening.evs[0].id(m.WorkspaceID)
}

// opening is a new run's opening events held back for Config.Hold: a turn that ends sooner takes
// them; otherwise the timer appends them alone.
type opening struct {
	evs   []event
	timer *time.Timer
	done  chan struct{} // closed when the timer's append has ended

	mu    sync.Mutex
	state openingState
	err   error // the timer's append's
	// ok says the events are in the log (an append of them, alone or with closing events, ended well).
	ok bool
}

type openingState int

const (
	held  openingState = iota
	alone              // the timer appends them, or has
	taken              // a turn took them for its closing group
)

// hold holds evs (a new run's opening events) back for Config.Hold, then appends them alone unless
// a turn took them first.
func (h *Handler) hold(ctx context.Context, m *queue.Inbound, evs []event) *opening {
	o := &opening{evs: evs, done: make(chan struct{})}
	o.timer = time.AfterFunc(h.cfg.Hold, func() {
		o.mu.Lock()
		mine := o.state == held
		if mine {
			o.state = alone
		}
		o.mu.Unlock()
		if !mine {
			return
		}
		err := h.append(ctx, m, evs...)
		o.mu.Lock()
		o.err, o.ok = err, err == nil
		o.mu.Unlock()
		close(o.done)
	})
	return o
}

// take reports whether the events were still held, and are now the caller's; if the timer is
// appending them it waits for that append to end.
func (o *opening) take() bool {
	o.mu.Lock()
	state := o.state
	if state == held {
		o.state = taken
	}
	o.mu.Unlock()
	switch state {
	case held:
		o.timer.Stop()
		return true
	case alone:
		<-o.done
		o.mu.Lock()
		defer o.mu.Unlock()
		if !o.ok {
			o.state = taken // the timer's append failed: the turn's group carries them
			return true
		}
	}
	return false
}

// pending reports whether a turn took the events and they are not in the log yet.
func (o *opening) pending() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.state == taken && !o.ok
}

// appended records that the events are in the log.
func (o *opening) appended() {
	o.mu.Lock()
	o.ok = true
	o.mu.Unlock()
}

// flush ends the hold when the message's handling ends: it appends the events alone unless they
// are in the log (still held, or taken by a turn that did not append them), and returns the error
// of the append that failed, so that the message is retried.
func (o *opening) flush(ctx context.Context, h *Handler, m *queue.Inbound) error {
	o.mu.Lock()
	state := o.state
	if state == held {
		o.state = taken
	}
	o.mu.Unlock()
	if state == held {
		o.timer.Stop()
	}
	if state == alone {
		<-o.done
	}
	o.mu.Lock()
	ok, err := o.ok, o.err
	o.mu.Unlock()
	if ok {
		return nil
	}
	if state == alone {
		return err
	}
	if err := h.append(ctx, m, o.evs...); err != nil {
		return err
	}
	o.appended()
	return nil
}

// flushOpening appends the held opening events alone, if any are held or taken and not appended.
func (m *inbound) flushOpening(ctx context.Context, h *Handler) error {
	if m.opening == nil {
		return nil
	}
	return m.opening.flush(ctx, h, m.Inbound)
}
