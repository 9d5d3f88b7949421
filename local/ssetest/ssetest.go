// Package ssetest reads Server-Sent Events as the WHATWG EventSource parser does, for tests that check
// what a browser would dispatch and which Last-Event-ID it would resume from.
package ssetest

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// Event is one dispatched event.
type Event struct {
	ID    string // the last event ID at dispatch
	Name  string // "message" when the stream named none
	Data  string
	Retry int // the reconnection time in force at dispatch, ms (0: none set)
}

// Reader parses one connection's stream. LastEventID carries over from the previous connection,
// as an EventSource keeps it; Retry likewise. The parser's own id buffer starts empty on each
// connection, as the spec words it (Chromium starts it at the previous id instead): a stream that
// ends a block before it has sent an id resets LastEventID here, so tests catch it.
type Reader struct {
	LastEventID string
	Retry       int

	sc             *bufio.Scanner
	idBuf, nameBuf string
	data           strings.Builder
	hasData        bool
}

// NewReader reads r, starting from the previous connection's last event id.
func NewReader(r io.Reader, lastEventID string) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	return &Reader{LastEventID: lastEventID, sc: sc}
}

// Next returns the next dispatched event, or io.EOF at the end of the stream (an event not ended
// by a blank line is dropped, as the spec says).
func (r *Reader) Next() (Event, error) {
	for r.sc.Scan() {
		line := strings.TrimSuffix(r.sc.Text(), "\r")
		if line == "" {
			r.LastEventID = r.idBuf // set even when nothing is dispatched
			if !r.hasData {
				r.nameBuf = ""
				continue
			}
			ev := Event{ID: r.LastEventID, Name: r.nameBuf, Data: strings.TrimSuffix(r.data.String(), "\n"), Retry: r.Retry}
			if ev.Name == "" {
				ev.Name = "message"
			}
			r.data.Reset()
			r.hasData, r.nameBuf = false, ""
			return ev, nil
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			r.nameBuf = value
		case "data":
			r.data.WriteString(value)
			r.data.WriteByte('\n')
			r.hasData = true
		case "id":
			if !strings.ContainsRune(value, 0) {
				r.idBuf = value
			}
		case "retry":
			if n, err := strconv.Atoi(value); err == nil && n >= 0 {
				r.Retry = n
			}
		}
	}
	if err := r.sc.Err(); err != nil {
		return Event{}, err
	}
	return Event{}, io.EOF
}

// All reads every event of the stream.
func (r *Reader) All() ([]Event, error) {
	var out []Event
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}
