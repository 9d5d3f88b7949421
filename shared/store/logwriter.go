package store

import (
	"context"
	"sync"
)

// LogWriter group-commits appends to workspace logs: it lets one append per workspace be in flight
// from this process and sends the appends that arrive meanwhile together in the next one, so they
// share one reservation of cursors (one write to the workspace's counter, the item every append
// of the workspace updates) instead of one each. Each caller's events keep an id marker of their
// own: a caller's repeat finds its events whatever group they were sent in.
type LogWriter struct {
	st *Store

	mu   sync.Mutex
	logs map[string]*logQueue // by workspace; present while an append is in flight
}

type logQueue struct{ waiting []*appendReq }

type appendReq struct {
	lead string // AppendEventsAfter's
	evs  []Event
	done chan appendRes // buffered: the committer never blocks on it
}

type appendRes struct {
	evs []Event
	err error
}

// NewLogWriter returns a LogWriter over st.
func NewLogWriter(st *Store) *LogWriter {
	return &LogWriter{st: st, logs: map[string]*logQueue{}}
}

// maxGroupEvents bounds a group (and one append).
const maxGroupEvents = 25

// maxGroupBytes bounds a group's event data (twice for events indexed under a thread).
const maxGroupBytes = 3 << 20

// weight is what an append's events add to a transaction: their data, written twice when indexed.
func weight(evs []Event) int {
	n := 0
	for _, e := range evs {
		n += len(e.Data) + 512 // the items' keys and other attributes
		if ThreadOf(e) != "" {
			n += len(e.Data) + 512
		}
	}
	return n
}

// AppendEvents appends events of one workspace like Store.AppendEvents, possibly in one
// reservation with other callers' events. A caller whose context ends while it waits gets the
// context's error; its events may still be appended (appends are idempotent by event id).
func (w *LogWriter) AppendEvents(ctx context.Context, evs []Event) ([]Event, error) {
	return w.AppendEventsAfter(ctx, "", evs)
}

// AppendEventsAfter is Store.AppendEventsAfter, group-committed like AppendEvents.
func (w *LogWriter) AppendEventsAfter(ctx context.Context, lead string, evs []Event) ([]Event, error) {
	if err := checkEvents(evs); err != nil {
		return nil, err // alone, so that it fails no other caller's group
	}
	ws := evs[0].WorkspaceID
	req := &appendReq{lead: lead, evs: evs, done: make(chan appendRes, 1)}
	w.mu.Lock()
	q, busy := w.logs[ws]
	if !busy {
		q = &logQueue{}
		w.logs[ws] = q
	}
	q.waiting = append(q.waiting, req)
	w.mu.Unlock()
	if !busy {
		w.commit(ctx, ws, q) // this caller commits until nobody waits
	}
	select {
	case res := <-req.done:
		return res.evs, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// commit appends the waiting requests of ws's log, as many as fit a transaction at a time, until
// none wait.
func (w *LogWriter) commit(ctx context.Context, ws string, q *logQueue) {
	for {
		w.mu.Lock()
		group := w.take(q)
		if len(group) == 0 {
			delete(w.logs, ws)
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		groups, leads := make([][]Event, len(group)), make([]string, len(group))
		for i, r := range group {
			groups[i], leads[i] = r.evs, r.lead
		}
		out, err := w.st.appendGroups(ctx, groups, leads)
		if err != nil && len(group) > 1 {
			// One caller's events may be what the table refused: append each caller's alone, so
			// that only its own append fails.
			for _, r := range group {
				evs, err := w.st.AppendEventsAfter(ctx, r.lead, r.evs)
				r.done <- appendRes{evs: evs, err: err}
			}
			continue
		}
		for i, r := range group {
			if err != nil {
				r.done <- appendRes{err: err}
				continue
			}
			r.done <- appendRes{evs: out[i]}
		}
	}
}

// take removes from q the leading requests that fit one group (by events and by bytes; a request
// too big for one is taken alone, and is refused alone). A request repeating an event id of the
// group waits for the next one.
func (w *LogWriter) take(q *logQueue) []*appendReq {
	var group []*appendReq
	seen := map[string]bool{}
	n, bytes, i := 0, 0, 0
	for ; i < len(q.waiting); i++ {
		r := q.waiting[i]
		dup := false
		for _, e := range r.evs {
			dup = dup || seen[e.ID]
		}
		wt := weight(r.evs)
		if dup || n+len(r.evs) > maxGroupEvents || len(group) > 0 && bytes+wt > maxGroupBytes {
			break
		}
		for _, e := range r.evs {
			seen[e.ID] = true
		}
		n, bytes = n+len(r.evs), bytes+wt
		group = append(group, r)
	}
	q.waiting = q.waiting[i:]
	return group
}
