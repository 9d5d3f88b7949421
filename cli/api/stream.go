package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Event is one event of the workspace's stream.
type Event struct {
	Cursor string // its id: in the log, what a reader resumes after
	Type   string // its event: name
	Data   []byte // the envelope {id,type,created_at,workspace_id,data}, as a subscription receives it
}

// Follower reads the event stream window after window (each request is one bounded window that
// ends with the cursor it reached), and reconnects after a drop from the last event it handed on.
type Follower struct {
	Client *Client
	Types  string // ?types= patterns, comma-separated; empty for all
	// OnRetry is told of each failed window and the wait before the next (may be nil).
	OnRetry func(err error, wait time.Duration)
	// MaxWait bounds the backoff between failed windows (default 5 s).
	MaxWait time.Duration
}

// Follow reads from since ("now", "0" for the beginning, or a cursor) and calls fn with each event
// in log order. It returns the cursor to resume from when ctx ends (with a nil error), or with
// the error when the API refuses the stream (a 4xx: a bad key, cursor or filter) or fn fails.
// The cursor moves past an event only once fn has returned for it, and past the events a window
// skipped (the types filter) only at the window's end, so a reconnect neither loses nor repeats one.
func (f *Follower) Follow(ctx context.Context, since string, fn func(Event) error) (string, error) {
	cursor := since
	if cursor == "" {
		cursor = "now"
	}
	wait := 250 * time.Millisecond
	maxWait := f.MaxWait
	if maxWait <= 0 {
		maxWait = 5 * time.Second
	}
	for {
		if ctx.Err() != nil {
			return cursor, nil
		}
		err := f.window(ctx, &cursor, fn)
		switch {
		case ctx.Err() != nil:
			return cursor, nil
		case err == nil:
			wait = 250 * time.Millisecond
			continue
		}
		var fnErr *handlerError
		if errors.As(err, &fnErr) {
			return cursor, fnErr.err
		}
		if e, ok := IsAPI(err); ok && e.Status >= 300 && e.Status < 500 && e.Status != http.StatusTooManyRequests {
			return cursor, err // a refusal, or a redirect (never followed)
		}
		if errors.Is(err, errTooLong) {
			return cursor, err
		}
		if f.OnRetry != nil {
			f.OnRetry(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return cursor, nil
		case <-t.C:
		}
		wait = min(2*wait, maxWait)
	}
}

// maxEvent bounds one line and one event of the stream (an event item is at most 400 KB).
const maxEvent = 4 << 20

var errTooLong = fmt.Errorf("the stream sent an event over %d MiB", maxEvent>>20)

// readLine reads one line of at most maxEvent bytes.
func readLine(rd *bufio.Reader) (string, error) {
	var b []byte
	for {
		part, err := rd.ReadSlice('\n')
		if len(b)+len(part) > maxEvent {
			return "", errTooLong
		}
		b = append(b, part...)
		if err != bufio.ErrBufferFull {
			return string(b), err
		}
	}
}

type handlerError struct{ err error }

func (h *handlerError) Error() string { return h.err.Error() }

// window makes one request and hands on its events; *cursor follows what was handed on.
func (f *Follower) window(ctx context.Context, cursor *string, fn func(Event) error) error {
	c := f.Client
	q := url.Values{"since": {*cursor}, "types": {f.Types}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+Path(q, "/v1/events/stream"), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("X-API-Key", c.Key)
	req.Header.Set("User-Agent", c.UA)
	resp, err := c.http().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return errorOf(resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return fmt.Errorf("the stream answered %q, not text/event-stream", ct)
	}
	rd := bufio.NewReaderSize(resp.Body, 64<<10)
	var (
		id, name string
		data     strings.Builder
		hasData  bool
	)
	for {
		line, err := readLine(rd)
		if err != nil {
			if err == io.EOF && line == "" {
				return nil // the window ended at a block's end
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err // a block cut off is not dispatched: the cursor stays before it
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" { // dispatch
			if hasData {
				ev := Event{Cursor: id, Type: name, Data: []byte(data.String())}
				if ev.Type == "" {
					ev.Type = "message"
				}
				if err := fn(ev); err != nil {
					return &handlerError{err}
				}
			}
			if id != "" {
				*cursor = id
			}
			name, hasData = "", false
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			id = value
		case "event":
			name = value
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			if data.Len()+len(value) > maxEvent {
				return errTooLong
			}
			data.WriteString(value)
			hasData = true
		}
	}
}
