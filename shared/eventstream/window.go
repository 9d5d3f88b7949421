// Package eventstream serves the workspace's event log as Server-Sent Events in bounded windows that a
// client resumes with Last-Event-ID, so a Lambda's whole-response reply still streams.
package eventstream

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/store"
)

// Config bounds one response (one window).
type Config struct {
	Window    time.Duration // how long a response waits for an event after the cursor
	Poll      time.Duration // how often the log is read while waiting
	MaxEvents int           // events per response
	MaxBytes  int           // body bytes per response (one event always fits)
	Retry     time.Duration // the retry: hint: how soon the client reconnects
	// GapGrace is how long a dense log's missing cursor is waited for (see Serve).
	GapGrace time.Duration
	// Margin is kept between a window's end and the invocation's deadline.
	Margin time.Duration
}

// Defaults: a 20 s window stays under API Gateway's 30 s integration timeout; at 200 ms polls a
// connected reader sees a new event within about 100 ms of its commit plus the response's trip.
func Defaults() Config {
	return Config{
		Window: 20 * time.Second, Poll: 200 * time.Millisecond, MaxEvents: 500, MaxBytes: 1 << 20,
		Retry: 100 * time.Millisecond, GapGrace: time.Minute, Margin: 2 * time.Second,
	}
}

// Page reads up to limit events of one shard with a cursor after the given one, in cursor order,
// and whether the shard may hold more after them than limit explains (a page cut short).
type Page func(ctx context.Context, shard int, after int64, limit int) (evs []store.Event, more bool, err error)

// Render turns an event into an SSE event name and data (one line of JSON). ok false skips the
// event: it is not for this reader, but the cursor moves past it.
type Render func(e store.Event) (name string, data []byte, ok bool)

// Source is what a window reads.
type Source struct {
	// Shards is how many shards Read reads, 0 to Shards-1 (a workspace's log: LogHead's length,
	// the mark; a thread's index is one). 0 means 1.
	Shards int
	Read   Page
	// Dense says each shard's cursors are 1, 2, 3, … with none left out (a workspace's log): a
	// missing cursor is an event whose append has not written it yet, and the reader waits for
	// it instead of moving past it. A thread's index is sparse: its order is the log's.
	Dense  bool
	Render Render
}

// Result is what one window produced.
type Result struct {
	Body   []byte
	Events int     // events sent
	Pos    []int64 // where the next window starts: each shard's last event read (sent or skipped)
}

// Serve reads src after pos (a cursor per shard) and returns one response body: the events found,
// or, when none come within the window, a keep-alive comment. Each event's id is the token (Token)
// of the position after it. The body always ends with a block that carries the position (id:) and
// the retry: hint, so a client's Last-Event-ID moves past skipped events and a client that started
// from "now" learns where now was.
//
// A dense shard can show a cursor before a lower one: an append reserves its cursors first and
// writes its events after, so a later append's event can be visible before an earlier one's
// (store's AppendEvents). Serve never moves past a missing cursor while it may still appear: it
// sends what is before it and waits. A cursor is given up on only when the event after it was
// created more than GapGrace ago: appenders write an event only within a bound of its creation and
// move it to a new cursor of the same shard after that (store's writeWindow and staleAfter), so by
// then the cursor will never appear (its writer died, or it was moved); it is logged. Each shard
// waits on its own gaps only: a thread's events are all in one shard, so no shard holds an event
// that another shard's must follow.
//
// Each poll reads every shard side by side, takes each shard's ready prefix (up to its first gap
// still waited for) and merges them by (created_at, shard), each shard in cursor order, so the
// events of a thread stay in order and those of different shards come in about the order they
// were created. A one-shard log is read and answered as before shards, byte for byte.
func (c Config) Serve(ctx context.Context, src Source, pos []int64, now func() time.Time, log *slog.Logger) (Result, error) {
	start := now()
	deadline := start.Add(c.Window)
	if dl, ok := ctx.Deadline(); ok && dl.Add(-c.Margin).Before(deadline) {
		deadline = dl.Add(-c.Margin)
	}
	m := max(src.Shards, 1)
	res := Result{Pos: make([]int64, m)}
	copy(res.Pos, pos)
	// A page per shard: about one page of MaxEvents in all (one shard reads MaxEvents).
	limit := max(c.MaxEvents/m, min(50, c.MaxEvents))
	var b bytes.Buffer
	lastID := "" // the id of the last event written
	for {
		pages, err := readShards(ctx, src, res.Pos, limit)
		if err != nil {
			return Result{}, apierr.Wrap(apierr.Unavailable, err, "the event log could not be read; retry")
		}
		at := now()
		for s := range pages {
			pages[s].ready = c.readyPrefix(src.Dense, pages[s].evs, res.Pos[s], at)
		}
		full := false
		for res.Events < c.MaxEvents {
			s := earliest(pages)
			if s < 0 {
				break
			}
			p := &pages[s]
			e := p.evs[p.next]
			if src.Dense && e.Cursor != res.Pos[s]+1 {
				log.WarnContext(ctx, "event log: passing cursors that never appeared",
					"workspace_id", e.WorkspaceID, "shard", s, "from", res.Pos[s]+1, "to", e.Cursor-1)
			}
			name, data, ok := src.Render(e)
			if ok {
				prev := res.Pos[s]
				res.Pos[s] = e.Cursor
				id := Token(res.Pos)
				if res.Events > 0 && b.Len()+len(data)+len(name)+eventOverhead(id) > c.MaxBytes {
					res.Pos[s] = prev
					full = true
					break
				}
				writeEvent(&b, id, name, data)
				res.Events++
				lastID = id
			}
			res.Pos[s] = e.Cursor
			p.next++
			if p.next == len(p.evs) && p.cut(limit) {
				break // the shard's next events are not read yet: this window's order ends here
			}
		}
		if res.Events > 0 || full {
			break // answer at once
		}
		if readOn(pages, limit) && now().Before(deadline) {
			continue // a full page of skipped events: read on without pausing
		}
		if !now().Add(c.Poll).Before(deadline) {
			break
		}
		if err := sleep(ctx, c.Poll); err != nil {
			break
		}
	}
	if res.Events == 0 {
		b.WriteString(": keep-alive\n")
	}
	b.WriteString("retry: ")
	b.WriteString(strconv.FormatInt(c.Retry.Milliseconds(), 10))
	b.WriteByte('\n')
	if id := Token(res.Pos); lastID != id {
		b.WriteString("id: ")
		b.WriteString(id)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	res.Body = b.Bytes()
	return res, nil
}

// shardPage is one poll's page of a shard and how far the window took it.
type shardPage struct {
	evs   []store.Event
	more  bool
	ready int // evs[:ready] may be sent: no gap still waited for before them
	next  int // evs[:next] were taken (sent or skipped)
}

// cut says the shard may hold events after the page.
func (p *shardPage) cut(limit int) bool { return len(p.evs) > 0 && (len(p.evs) >= limit || p.more) }

// readShards reads a page of every shard after its position, side by side.
func readShards(ctx context.Context, src Source, pos []int64, limit int) ([]shardPage, error) {
	pages := make([]shardPage, len(pos))
	if len(pos) == 1 {
		evs, more, err := src.Read(ctx, 0, pos[0], limit)
		pages[0] = shardPage{evs: evs, more: more}
		return pages, err
	}
	errs := make([]error, len(pos))
	var wg sync.WaitGroup
	for s := range pos {
		wg.Go(func() { pages[s].evs, pages[s].more, errs[s] = src.Read(ctx, s, pos[s], limit) })
	}
	wg.Wait()
	return pages, errors.Join(errs...)
}

// readyPrefix is how many of a shard's events, read after cursor after, may be sent: in a dense
// shard, those before the first missing cursor that may still appear (the event after it is
// younger than GapGrace).
func (c Config) readyPrefix(dense bool, evs []store.Event, after int64, now time.Time) int {
	for i, e := range evs {
		if dense && e.Cursor != after+1 && now.Sub(e.CreatedAt) < c.GapGrace {
			return i // not visible yet: never pass it
		}
		after = e.Cursor
	}
	return len(evs)
}

// earliest is the shard whose next ready event comes first by (created_at, shard), or -1.
func earliest(pages []shardPage) int {
	best := -1
	for s := range pages {
		p := &pages[s]
		if p.next < p.ready && (best < 0 || p.evs[p.next].CreatedAt.Before(pages[best].evs[pages[best].next].CreatedAt)) {
			best = s
		}
	}
	return best
}

// readOn says a window that sent nothing reads again at once: some shard's page was cut short
// and wholly skipped, so more may follow it now.
func readOn(pages []shardPage, limit int) bool {
	for i := range pages {
		if p := &pages[i]; p.cut(limit) && p.next == len(p.evs) {
			return true
		}
	}
	return false
}

// eventOverhead bounds what an event adds to a body besides its name and data: "id: ", "event: ",
// "data: " and newlines with a decimal id, and a longer token's extra bytes.
func eventOverhead(id string) int { return 48 + max(0, len(id)-maxCursorDigits) }

// writeEvent writes one SSE event. data is one line (JSON has no raw newlines); a newline in it
// would start a new data: line, as SSE joins them back with "\n".
func writeEvent(b *bytes.Buffer, id, name string, data []byte) {
	b.WriteString("id: ")
	b.WriteString(id)
	b.WriteString("\nevent: ")
	b.WriteString(name)
	for _, line := range bytes.Split(data, []byte("\n")) {
		b.WriteString("\ndata: ")
		b.Write(line)
	}
	b.WriteString("\n\n")
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
