package eventstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/local/ssetest"
	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/store"
)

// memLog is a log in memory whose events become visible when the test says.
type memLog struct {
	mu    sync.Mutex
	evs   map[int64]store.Event
	reads int
	fail  error
}

func newMemLog() *memLog { return &memLog{evs: map[int64]store.Event{}} }

func (m *memLog) put(cursor int64, typ string, created time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.evs[cursor] = store.Event{ID: fmt.Sprintf("evt_%d", cursor), Type: typ, WorkspaceID: "ws", Cursor: cursor,
		CreatedAt: created, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, cursor))}
}

func (m *memLog) read(_ context.Context, after int64, limit int) ([]store.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if m.fail != nil {
		return nil, m.fail
	}
	var max int64
	for c := range m.evs {
		max = maxOf(max, c)
	}
	var out []store.Event
	for c := after + 1; c <= max && len(out) < limit; c++ {
		if e, ok := m.evs[c]; ok {
			out = append(out, e)
		}
	}
	return out, nil
}

func maxOf(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func testConfig() Config {
	c := Defaults()
	c.Window, c.Poll, c.Margin = 300*time.Millisecond, 10*time.Millisecond, 0
	return c
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func all(e store.Event) (string, []byte, bool) { return e.Type, e.Data, true }

// parse reads a body as a browser would after a connection whose Last-Event-ID was prev.
func parse(t *testing.T, body []byte, prev string) ([]ssetest.Event, *ssetest.Reader) {
	t.Helper()
	r := ssetest.NewReader(bytes.NewReader(body), prev)
	evs, err := r.All()
	if err != nil {
		t.Fatal(err)
	}
	return evs, r
}

func TestServeAnswersAtOnceWithWhatThereIs(t *testing.T) {
	log := newMemLog()
	for c := int64(1); c <= 3; c++ {
		log.put(c, "run.created", time.Now())
	}
	begin := time.Now()
	res, err := testConfig().Serve(context.Background(), Source{Read: log.read, Dense: true, Render: all}, 1, time.Now, discard())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 100*time.Millisecond {
		t.Errorf("took %s with events waiting", d)
	}
	evs, r := parse(t, res.Body, "1")
	if len(evs) != 2 || evs[0].ID != "2" || evs[1].ID != "3" || evs[0].Name != "run.created" || evs[1].Data != `{"n":3}` {
		t.Fatalf("events %+v from %q", evs, res.Body)
	}
	if r.LastEventID != "3" || r.Retry != 100 || res.Cursor != 3 || res.Events != 2 {
		t.Fatalf("last id %q retry %d cursor %d events %d", r.LastEventID, r.Retry, res.Cursor, res.Events)
	}
}

func TestServeIdleWindowKeepsAliveAndNamesTheCursor(t *testing.T) {
	log := newMemLog()
	for c := int64(1); c <= 5; c++ {
		log.put(c, "t", time.Now())
	}
	cfg := testConfig()
	begin := time.Now()
	res, err := cfg.Serve(context.Background(), Source{Read: log.read, Dense: true, Render: all}, 5, time.Now, discard())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < cfg.Window-2*cfg.Poll || d > cfg.Window+100*time.Millisecond {
		t.Errorf("idle window lasted %s, want about %s", d, cfg.Window)
	}
	if !strings.Contains(string(res.Body), ": keep-alive\n") {
		t.Errorf("no keep-alive comment in %q", res.Body)
	}
	evs, r := parse(t, res.Body, "")
	if len(evs) != 0 || r.LastEventID != "5" {
		t.Fatalf("idle window: events %+v, last id %q (body %q)", evs, r.LastEventID, res.Body)
	}
	if log.reads < 10 {
		t.Errorf("read the log %d times in an idle window", log.reads)
	}
}

func TestServeWakesForANewEvent(t *testing.T) {
	log := newMemLog()
	log.put(1, "t", time.Now())
	go func() {
		time.Sleep(80 * time.Millisecond)
		log.put(2, "t", time.Now())
	}()
	begin := time.Now()
	res, err := testConfig().Serve(context.Background(), Source{Read: log.read, Dense: true, Render: all}, 1, time.Now, discard())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 200*time.Millisecond {
		t.Errorf("the new event came after %s", d)
	}
	if evs, _ := parse(t, res.Body, "1"); len(evs) != 1 || evs[0].ID != "2" {
		t.Fatalf("events %+v", evs)
	}
}

// A missing cursor in a dense log is an append not yet visible: never passed while it may appear.
func TestServeNeverPassesAFreshGap(t *testing.T) {
	log := newMemLog()
	for _, c := range []int64{1, 2, 4, 5} {
		log.put(c, "t", time.Now())
	}
	src := Source{Read: log.read, Dense: true, Render: all}
	res, err := testConfig().Serve(context.Background(), src, 0, time.Now, discard())
	if err != nil {
		t.Fatal(err)
	}
	if evs, r := parse(t, res.Body, ""); len(evs) != 2 || evs[1].ID != "2" || r.LastEventID != "2" {
		t.Fatalf("before the gap: %+v, last id %q", evs, r.LastEventID)
	}
	// From the gap on, the window waits for it, and sends it first when it appears.
	go func() {
		time.Sleep(50 * time.Millisecond)
		log.put(3, "t", time.Now())
	}()
	res, err = testConfig().Serve(context.Background(), src, 2, time.Now, discard())
	if err != nil {
		t.Fatal(err)
	}
	evs, r := parse(t, res.Body, "2")
	if len(evs) != 3 || evs[0].ID != "3" || evs[2].ID != "5" || r.LastEventID != "5" {
		t.Fatalf("after the gap filled: %+v", evs)
	}
	// A gap that never fills within the window: nothing is sent, the cursor stays.
	log.put(7, "t", time.Now())
	res, err = testConfig().Serve(context.Background(), src, 5, time.Now, discard())
	if err != nil {
		t.Fatal(err)
	}
	if evs, r := parse(t, res.Body, "5"); len(evs) != 0 || r.LastEventID != "5" || res.Cursor != 5 {
		t.Fatalf("at an open gap: %+v, last id %q", evs, r.LastEventID)
	}
}

// A gap whose next event is older than GapGrace will never fill: it is passed, and logged.
func TestServePassesAGapThatCannotFill(t *testing.T) {
	log := newMemLog()
	log.put(1, "t", time.Now().Add(-2*time.Minute))
	log.put(3, "t", time.Now().Add(-2*time.Minute))
	var logs bytes.Buffer
	res, err := testConfig().Serve(context.Background(), Source{Read: log.read, Dense: true, Render: all}, 0, time.Now, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if evs, _ := parse(t, res.Body, ""); len(evs) != 2 || evs[1].ID != "3" {
		t.Fatalf("events %+v", evs)
	}
	if !strings.Contains(logs.String(), "never appeared") || !strings.Contains(logs.String(), "from=2 to=2") {
		t.Errorf("log %q", logs.String())
	}
}

// A sparse source (a thread's index) has no gaps to wait for.
func TestServeSparseSource(t *testing.T) {
	log := newMemLog()
	log.put(3, "t", time.Now())
	log.put(9, "t", time.Now())
	res, err := testConfig().Serve(context.Background(), Source{Read: log.read, Render: all}, 0, time.Now, discard())
	if err != nil {
		t.Fatal(err)
	}
	if evs, _ := parse(t, res.Body, ""); len(evs) != 2 || evs[0].ID != "3" || evs[1].ID != "9" {
		t.Fatalf("events %+v", evs)
	}
}

// Skipped events move the cursor (a bare id: tells the client), even across full pages.
func TestServeFilterMovesTheCursorPastSkippedEvents(t *testing.T) {
	log := newMemLog()
	for c := int64(1); c <= 1200; c++ {
		typ := "delivery.exhausted"
		if c == 1100 {
			typ = "run.completed"
		}
		log.put(c, typ, time.Now())
	}
	only := func(e store.Event) (string, []byte, bool) { return e.Type, e.Data, e.Type == "run.completed" }
	cfg := testConfig()
	res, err := cfg.Serve(context.Background(), Source{Read: log.read, Dense: true, Render: only}, 0, time.Now, discard())
	if err != nil {
		t.Fatal(err)
	}
	evs, r := parse(t, res.Body, "")
	if len(evs) != 1 || evs[0].ID != "1100" || r.LastEventID != "1200" || res.Cursor != 1200 {
		t.Fatalf("events %+v, last id %q, cursor %d", evs, r.LastEventID, res.Cursor)
	}
	none := func(store.Event) (string, []byte, bool) { return "", nil, false }
	res, err = cfg.Serve(context.Background(), Source{Read: log.read, Dense: true, Render: none}, 0, time.Now, discard())
	if err != nil {
		t.Fatal(err)
	}
	if evs, r := parse(t, res.Body, ""); len(evs) != 0 || r.LastEventID != "1200" {
		t.Fatalf("all skipped: events %+v, last id %q", evs, r.LastEventID)
	}
}

func TestServeBoundsTheResponse(t *testing.T) {
	log := newMemLog()
	for c := int64(1); c <= 50; c++ {
		log.put(c, "t", time.Now())
	}
	cfg := testConfig()
	cfg.MaxEvents = 20
	res, err := cfg.Serve(context.Background(), Source{Read: log.read, Dense: true, Render: all}, 0, time.Now, discard())
	if err != nil {
		t.Fatal(err)
	}
	if evs, r := parse(t, res.Body, ""); len(evs) != 20 || r.LastEventID != "20" {
		t.Fatalf("MaxEvents: %d events, last id %q", len(evs), r.LastEventID)
	}
	big := func(e store.Event) (string, []byte, bool) { return "t", bytes.Repeat([]byte("x"), 400), true }
	cfg = testConfig()
	cfg.MaxBytes = 1000
	res, err = cfg.Serve(context.Background(), Source{Read: log.read, Dense: true, Render: big}, 0, time.Now, discard())
	if err != nil {
		t.Fatal(err)
	}
	evs, r := parse(t, res.Body, "")
	if len(evs) != 2 || r.LastEventID != "2" || res.Cursor != 2 || len(res.Body) > 1000+64 {
		t.Fatalf("MaxBytes: %d events, last id %q, cursor %d, %d bytes", len(evs), r.LastEventID, res.Cursor, len(res.Body))
	}
	cfg.MaxBytes = 10 // one event always goes out
	res, _ = cfg.Serve(context.Background(), Source{Read: log.read, Dense: true, Render: big}, 0, time.Now, discard())
	if evs, _ := parse(t, res.Body, ""); len(evs) != 1 {
		t.Fatalf("an event over MaxBytes: %d events", len(evs))
	}
}

func TestServeEndsBeforeTheDeadline(t *testing.T) {
	log := newMemLog()
	cfg := testConfig()
	cfg.Window, cfg.Margin = 5*time.Second, 100*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	res, err := cfg.Serve(ctx, Source{Read: log.read, Dense: true, Render: all}, 0, time.Now, discard())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 250*time.Millisecond {
		t.Errorf("window ran %s into a 300 ms deadline with a 100 ms margin", d)
	}
	if _, r := parse(t, res.Body, ""); r.LastEventID != "0" {
		t.Errorf("last id %q", r.LastEventID)
	}
}

func TestServeReadFailure(t *testing.T) {
	log := newMemLog()
	log.fail = io.ErrUnexpectedEOF
	_, err := testConfig().Serve(context.Background(), Source{Read: log.read, Dense: true, Render: all}, 0, time.Now, discard())
	if apierr.CodeOf(err) != apierr.Unavailable || strings.Contains(apierr.MessageOf(err), "EOF") {
		t.Fatalf("err %v", err)
	}
}

func TestParseCursor(t *testing.T) {
	good := map[string]int64{"0": 0, "1": 1, "42": 42, "9223372036854775807": 1<<63 - 1}
	for s, want := range good {
		if got, err := ParseCursor(s); err != nil || got != want {
			t.Errorf("ParseCursor(%q) = %d, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "-1", "+1", " 1", "1 ", "01", "1.5", "1e3", "abc", "9223372036854775808", "12345678901234567890", "0x10", "１"} {
		if _, err := ParseCursor(s); apierr.CodeOf(err) != apierr.Invalid {
			t.Errorf("ParseCursor(%q): %v, want Invalid", s, err)
		}
	}
}

func TestStartOf(t *testing.T) {
	cases := []struct {
		lastID, since string
		want          Start
		bad           bool
	}{
		{"", "", Start{}, false},
		{"", "now", Start{Now: true}, false},
		{"", "17", Start{Cursor: 17}, false},
		{"20", "17", Start{Cursor: 20}, false}, // a reconnect's Last-Event-ID wins over the first URL
		{"20", "now", Start{Cursor: 20}, false},
		{"x", "17", Start{}, true},
		{"", "yesterday", Start{}, true},
	}
	for _, c := range cases {
		got, err := StartOf(c.lastID, c.since)
		if (err != nil) != c.bad || (!c.bad && got != c.want) {
			t.Errorf("StartOf(%q, %q) = %+v, %v", c.lastID, c.since, got, err)
		}
	}
	if c, err := (Start{Now: true}).Resolve(30); err != nil || c != 30 {
		t.Errorf("now resolves to %d, %v", c, err)
	}
	if c, err := (Start{Cursor: 30}).Resolve(30); err != nil || c != 30 {
		t.Errorf("the last cursor resolves to %d, %v", c, err)
	}
	if _, err := (Start{Cursor: 31}).Resolve(30); apierr.CodeOf(err) != apierr.Invalid {
		t.Errorf("a cursor past the end: %v", err)
	}
}
