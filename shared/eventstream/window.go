// Package eventstream serves the workspace's event log as Server-Sent Events in bounded windows that a
// client resumes with Last-Event-ID, so a Lambda's whole-response reply still streams.
package eventstream

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
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

// Page reads up to limit events with a cursor after the given one, in cursor order.
type Page func(ctx context.Context, after int64, limit int) ([]store.Event, error)

// Render turns an event into an SSE event name and data (one line of JSON). ok false skips the
// event: it is not for this reader, but the cursor moves past it.
type Render func(e store.Event) (name string, data []byte, ok bool)

// Source is what a window reads.
type Source struct {
	Read Page
	// Dense says the cursors are 1, 2, 3, … with none left out (a workspace's log): a missing
	// cursor is an event whose append has not written it yet, and the reader waits for it
	// instead of moving past it. A thread's index is sparse: its order is the log's.
	Dense  bool
	Render Render
}

// Result is what one window produced.
type Result struct {
	Body   []byte
	Events int   // events sent
	Cursor int64 // where the next window starts: the last event read (sent or skipped)
}

// Serve reads src after cursor and returns one response body: the events found, or, when none come
// within the window, a keep-alive comment. The body always ends with a block that carries the
// cursor (id:) and the retry: hint, so a client's Last-Event-ID moves past skipped events and a
// client that started from "now" learns where now was.
//
// A dense log can show a cursor before a lower one: an append reserves its cursors first and writes
// its events after, so a later append's event can be visible before an earlier one's (store's
// AppendEvents). Serve never moves past a missing cursor while it may still appear: it sends what
// is before it and waits. A cursor is given up on only when the event after it was created more
// than GapGrace ago: appenders write an event only within a bound of its creation and move it to a
// new cursor after that (store's writeWindow and staleAfter), so by then the cursor will never
// appear (its writer died, or it was moved); it is logged.
func (c Config) Serve(ctx context.Context, src Source, cursor int64, now func() time.Time, log *slog.Logger) (Result, error) {
	start := now()
	deadline := start.Add(c.Window)
	if dl, ok := ctx.Deadline(); ok && dl.Add(-c.Margin).Before(deadline) {
		deadline = dl.Add(-c.Margin)
	}
	var b bytes.Buffer
	res := Result{Cursor: cursor}
	lastID := int64(-1) // the id of the last event written
	for {
		// Nothing has been sent yet (the loop ends once something is): read a full page.
		limit := c.MaxEvents
		evs, err := src.Read(ctx, res.Cursor, limit)
		if err != nil {
			return Result{}, apierr.Wrap(apierr.Unavailable, err, "the event log could not be read; retry")
		}
		waiting, full := false, false
		for _, e := range evs {
			if src.Dense && e.Cursor != res.Cursor+1 {
				if age := now().Sub(e.CreatedAt); age < c.GapGrace {
					waiting = true // not visible yet: never pass it
					break
				}
				log.WarnContext(ctx, "event log: passing cursors that never appeared",
					"workspace_id", e.WorkspaceID, "from", res.Cursor+1, "to", e.Cursor-1)
			}
			name, data, ok := src.Render(e)
			if ok {
				if res.Events > 0 && b.Len()+len(data)+len(name)+48 > c.MaxBytes {
					full = true
					break
				}
				writeEvent(&b, e.Cursor, name, data)
				res.Events++
				lastID = e.Cursor
			}
			res.Cursor = e.Cursor
		}
		if res.Events > 0 || full {
			break // answer at once
		}
		if len(evs) == limit && !waiting && now().Before(deadline) {
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
	if lastID != res.Cursor {
		b.WriteString("id: ")
		b.WriteString(strconv.FormatInt(res.Cursor, 10))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	res.Body = b.Bytes()
	return res, nil
}

// writeEvent writes one SSE event. data is one line (JSON has no raw newlines); a newline in it
// would start a new data: line, as SSE joins them back with "\n".
func writeEvent(b *bytes.Buffer, cursor int64, name string, data []byte) {
	b.WriteString("id: ")
	b.WriteString(strconv.FormatInt(cursor, 10))
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

// maxCursorDigits is the longest cursor: 19 digits hold every int64.
const maxCursorDigits = 19

// ParseCursor reads a cursor as the stream sends it: a decimal number, 0 for before the first
// event. Anything else (signs, spaces, leading zeros, more than 19 digits) is Invalid.
func ParseCursor(s string) (int64, error) {
	bad := apierr.New(apierr.Invalid, "malformed cursor: want the decimal id of an event (or \"now\")")
	if s == "" || len(s) > maxCursorDigits || (len(s) > 1 && s[0] == '0') {
		return 0, bad
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, bad
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, bad
	}
	return n, nil
}

// Start is where a reader asks to start.
type Start struct {
	Cursor int64
	Now    bool // start after the log's current end
}

// StartOf reads the reader's cursor: the Last-Event-ID header (a reconnecting EventSource sends it,
// and it wins over the URL, which still holds the first connection's since=), else since=: a
// cursor, or "now"; neither means the beginning.
func StartOf(lastEventID, since string) (Start, error) {
	v := strings.TrimSpace(lastEventID)
	if v == "" {
		v = strings.TrimSpace(since)
	}
	switch v {
	case "":
		return Start{}, nil
	case "now":
		return Start{Now: true}, nil
	}
	c, err := ParseCursor(v)
	if err != nil {
		return Start{}, err
	}
	return Start{Cursor: c}, nil
}

// Resolve turns a Start into a cursor against the log's end: "now" is the end, and a cursor past
// the end (a cursor of another log, or made up) is Invalid.
func (s Start) Resolve(last int64) (int64, error) {
	if s.Now {
		return last, nil
	}
	if s.Cursor > last {
		return 0, apierr.New(apierr.Invalid, "unknown cursor %d: the log ends at %d", s.Cursor, last)
	}
	return s.Cursor, nil
}
