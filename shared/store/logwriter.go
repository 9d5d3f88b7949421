package store

import (
	"context"
	"sync"
)

// LogWriter group-commits appends to workspace logs. Appends to one workspace's log are serialised
// by its counter, so concurrent appenders mostly lose the race and retry; a LogWriter lets one
// append per workspace be in flight from this process and sends the appends that arrive meanwhile
// together in the next transaction. One process (a Lambda instance working on a batch in
// parallel) then costs one contender instead of one per goroutine.
type LogWriter struct {
	st *Store

	mu   sync.Mutex
	logs map[string]*logQueue // by workspace; present while an append is in flight
}

type logQueue struct{ waiting []*appendReq }

type appendReq struct {
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

// maxGroupEvents keeps a group within one transaction: a counter update and two items an event.
const maxGroupEvents = 25

// AppendEvents appends events of one workspace like Store.AppendEvents, possibly in one
// transaction with other callers' events. A caller whose context ends while it waits gets the
// context's error; its events may still be appended (appends are idempotent by event id).
func (w *LogWriter) AppendEvents(ctx context.Context, evs []Event) ([]Event, error) {
	if err := checkEvents(evs); err != nil {
		return nil, err // alone, so that it fails no other caller's group
	}
	ws := evs[0].WorkspaceID
	req := &appendReq{evs: evs, done: make(chan appendRes, 1)}
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
		var all []Event
		for _, r := range group {
			all = append(all, r.evs...)
		}
		out, err := w.st.AppendEvents(ctx, all)
		for _, r := range group {
			if err != nil {
				r.done <- appendRes{err: err}
				continue
			}
			r.done <- appendRes{evs: out[:len(r.evs):len(r.evs)]}
			out = out[len(r.evs):]
		}
	}
}

// take removes from q the leading requests that fit one transaction. A request repeating an
// event id of the group waits for the next one: a transaction cannot write an item twice.
func (w *LogWriter) take(q *logQueue) []*appendReq {
	var group []*appendReq
	seen := map[string]bool{}
	n, i := 0, 0
	for ; i < len(q.waiting); i++ {
		r := q.waiting[i]
		dup := false
		for _, e := range r.evs {
			dup = dup || seen[e.ID]
		}
		if dup || n+len(r.evs) > maxGroupEvents {
			break
		}
		for _, e := range r.evs {
			seen[e.ID] = true
		}
		n += len(r.evs)
		group = append(group, r)
	}
	q.waiting = q.waiting[i:]
	return group
}
