package eventstream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/local/ssetest"
	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/store"
)

// memLog is a log of one or more shards in memory whose events become visible when the test says.
type memLog struct {
	mu     sync.Mutex
	shards []map[int64]store.Event
	reads  int
	fail   error // a read of the last shard fails with it
	cut    int   // > 0: a page holds at most cut events and says more may follow (cut short)
}

func newMemLog(shards int) *memLog {
	m := &memLog{shards: make([]map[int64]store.Event, shards)}
	for s := range m.shards {
		m.shards[s] = map[int64]store.Event{}
	}
	return m
}

// put makes event evt_<n> (data {"n":<n>}) visible at cursor of shard.
func (m *memLog) put(shard int, cursor int64, n int, typ string, created time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.shards[shard][cursor] = store.Event{ID: fmt.Sprintf("evt_%d", n), Type: typ, WorkspaceID: "ws", Cursor: cursor,
		Shard: shard, CreatedAt: created, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
}

// putK puts the log's k-th event (see layout), created at created plus k nanoseconds, so that
// events put in one go keep their order of creation.
func (m *memLog) putK(l layout, k int, typ string, created time.Time) {
	s, c := l.at(k)
	m.put(s, c, k, typ, created.Add(time.Duration(k)))
}

func (m *memLog) read(_ context.Context, shard int, after int64, limit int) ([]store.Event, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if m.fail != nil && shard == len(m.shards)-1 {
		return nil, false, m.fail
	}
	var max int64
	for c := range m.shards[shard] {
		max = maxOf(max, c)
	}
	var out []store.Event
	for c := after + 1; c <= max && len(out) < limit; c++ {
		if e, ok := m.shards[shard][c]; ok {
			out = append(out, e)
		}
	}
	if m.cut > 0 && len(out) > m.cut {
		return out[:m.cut], true, nil
	}
	return out, false, nil
}

// src is the log as a dense source.
func (m *memLog) src(r Render) Source {
	return Source{Shards: len(m.shards), Read: m.read, Dense: true, Render: r}
}

func maxOf(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// layout places a test's events, numbered k = 1, 2, … in the order they are created, in a log of m
// shards, round robin: event k at shard (k-1)%m, cursor (k-1)/m+1. With one shard k is the cursor,
// so a test written with it reads as before shards.
type layout struct{ m int }

func (l layout) at(k int) (int, int64) { return (k - 1) % l.m, int64((k-1)/l.m + 1) }

// pos is the position after events 1 to k.
func (l layout) pos(k int) []int64 {
	p := make([]int64, l.m)
	for i := 1; i <= k; i++ {
		s, c := l.at(i)
		p[s] = c
	}
	return p
}

// id is the stream's id after events 1 to k.
func (l layout) id(k int) string { return tok(l.pos(k)...) }

// tok spells a token as the stream documents it, independently of Token: the cursor of a
// one-shard log, else v1. and the cursors joined by dots.
func tok(pos ...int64) string {
	parts := make([]string, len(pos))
	for i, c := range pos {
		parts[i] = strconv.FormatInt(c, 10)
	}
	if len(pos) == 1 {
		return parts[0]
	}
	return "v1." + strings.Join(parts, ".")
}

// forShards runs test against a log of one shard and of four.
func forShards(t *testing.T, test func(t *testing.T, l layout)) {
	t.Helper()
	for _, m := range []int{1, 4} {
		t.Run(fmt.Sprintf("shards-%d", m), func(t *testing.T) { test(t, layout{m}) })
	}
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
	forShards(t, func(t *testing.T, l layout) {
		log := newMemLog(l.m)
		for k := 1; k <= 3; k++ {
			log.putK(l, k, "run.created", time.Now())
		}
		begin := time.Now()
		res, err := testConfig().Serve(context.Background(), log.src(all), l.pos(1), time.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(begin); d > 100*time.Millisecond {
			t.Errorf("took %s with events waiting", d)
		}
		evs, r := parse(t, res.Body, l.id(1))
		if len(evs) != 2 || evs[0].ID != l.id(2) || evs[1].ID != l.id(3) || evs[0].Name != "run.created" || evs[1].Data != `{"n":3}` {
			t.Fatalf("events %+v from %q", evs, res.Body)
		}
		if r.LastEventID != l.id(3) || r.Retry != 100 || !slices.Equal(res.Pos, l.pos(3)) || res.Events != 2 {
			t.Fatalf("last id %q retry %d position %v events %d", r.LastEventID, r.Retry, res.Pos, res.Events)
		}
	})
}

func TestServeIdleWindowKeepsAliveAndNamesTheCursor(t *testing.T) {
	forShards(t, func(t *testing.T, l layout) {
		log := newMemLog(l.m)
		for k := 1; k <= 5; k++ {
			log.putK(l, k, "t", time.Now())
		}
		cfg := testConfig()
		begin := time.Now()
		res, err := cfg.Serve(context.Background(), log.src(all), l.pos(5), time.Now, discard())
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
		if len(evs) != 0 || r.LastEventID != l.id(5) {
			t.Fatalf("idle window: events %+v, last id %q (body %q)", evs, r.LastEventID, res.Body)
		}
		if log.reads < 10 {
			t.Errorf("read the log %d times in an idle window", log.reads)
		}
	})
}

func TestServeWakesForANewEvent(t *testing.T) {
	forShards(t, func(t *testing.T, l layout) {
		log := newMemLog(l.m)
		log.putK(l, 1, "t", time.Now())
		go func() {
			time.Sleep(80 * time.Millisecond)
			log.putK(l, 2, "t", time.Now())
		}()
		begin := time.Now()
		res, err := testConfig().Serve(context.Background(), log.src(all), l.pos(1), time.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(begin); d > 200*time.Millisecond {
			t.Errorf("the new event came after %s", d)
		}
		if evs, _ := parse(t, res.Body, l.id(1)); len(evs) != 1 || evs[0].ID != l.id(2) {
			t.Fatalf("events %+v", evs)
		}
	})
}

// A missing cursor in a dense log is an append not yet visible: never passed while it may appear.
func TestServeNeverPassesAFreshGap(t *testing.T) {
	t.Run("shards-1", func(t *testing.T) {
		log := newMemLog(1)
		for _, c := range []int64{1, 2, 4, 5} {
			log.put(0, c, int(c), "t", time.Now())
		}
		src := log.src(all)
		res, err := testConfig().Serve(context.Background(), src, []int64{0}, time.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		if evs, r := parse(t, res.Body, ""); len(evs) != 2 || evs[1].ID != "2" || r.LastEventID != "2" {
			t.Fatalf("before the gap: %+v, last id %q", evs, r.LastEventID)
		}
		// From the gap on, the window waits for it, and sends it first when it appears.
		go func() {
			time.Sleep(50 * time.Millisecond)
			log.put(0, 3, 3, "t", time.Now())
		}()
		res, err = testConfig().Serve(context.Background(), src, []int64{2}, time.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		evs, r := parse(t, res.Body, "2")
		if len(evs) != 3 || evs[0].ID != "3" || evs[2].ID != "5" || r.LastEventID != "5" {
			t.Fatalf("after the gap filled: %+v", evs)
		}
		// A gap that never fills within the window: nothing is sent, the cursor stays.
		log.put(0, 7, 7, "t", time.Now())
		res, err = testConfig().Serve(context.Background(), src, []int64{5}, time.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		if evs, r := parse(t, res.Body, "5"); len(evs) != 0 || r.LastEventID != "5" || !slices.Equal(res.Pos, []int64{5}) {
			t.Fatalf("at an open gap: %+v, last id %q", evs, r.LastEventID)
		}
	})
	// With four shards, a gap holds back its own shard only.
	t.Run("shards-4", func(t *testing.T) {
		log := newMemLog(4)
		at := time.Now()
		put := func(s int, c int64) { log.put(s, c, 100*s+int(c), "t", at); at = at.Add(time.Millisecond) }
		put(2, 1)
		put(0, 1)
		put(2, 3) // shard 2's cursor 2 is not visible yet
		put(1, 1)
		put(3, 1)
		put(2, 4)
		put(0, 2)
		src := log.src(all)
		res, err := testConfig().Serve(context.Background(), src, make([]int64, 4), time.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		evs, r := parse(t, res.Body, "")
		want := []string{tok(0, 0, 1, 0), tok(1, 0, 1, 0), tok(1, 1, 1, 0), tok(1, 1, 1, 1), tok(2, 1, 1, 1)}
		if got := ids(evs); !slices.Equal(got, want) || r.LastEventID != tok(2, 1, 1, 1) {
			t.Fatalf("before shard 2's gap: %v, last id %q; want %v", got, r.LastEventID, want)
		}
		// From there the window waits for shard 2's cursor 2, and sends it first when it appears.
		late := at.Add(time.Second) // created after every other event: shard 2 still goes in cursor order
		go func() {
			time.Sleep(50 * time.Millisecond)
			log.put(2, 2, 202, "t", late)
		}()
		res, err = testConfig().Serve(context.Background(), src, []int64{2, 1, 1, 1}, time.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		evs, r = parse(t, res.Body, r.LastEventID)
		want = []string{tok(2, 1, 2, 1), tok(2, 1, 3, 1), tok(2, 1, 4, 1)}
		if got := ids(evs); !slices.Equal(got, want) || evs[0].Data != `{"n":202}` || r.LastEventID != tok(2, 1, 4, 1) {
			t.Fatalf("after the gap filled: %v; want %v", got, want)
		}
		// A gap that never fills within the window: the other shards' events still come.
		put(2, 6)
		put(1, 2)
		res, err = testConfig().Serve(context.Background(), src, []int64{2, 1, 4, 1}, time.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		if evs, r := parse(t, res.Body, ""); !slices.Equal(ids(evs), []string{tok(2, 2, 4, 1)}) || r.LastEventID != tok(2, 2, 4, 1) {
			t.Fatalf("beside an open gap: %+v, last id %q", evs, r.LastEventID)
		}
		res, err = testConfig().Serve(context.Background(), src, []int64{2, 2, 4, 1}, time.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		if evs, r := parse(t, res.Body, ""); len(evs) != 0 || r.LastEventID != tok(2, 2, 4, 1) || !slices.Equal(res.Pos, []int64{2, 2, 4, 1}) {
			t.Fatalf("at an open gap: %+v, last id %q", evs, r.LastEventID)
		}
	})
}

func ids(evs []ssetest.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// A gap whose next event is older than GapGrace will never fill: it is passed, and logged.
func TestServePassesAGapThatCannotFill(t *testing.T) {
	cases := []struct {
		m    int
		want []string
		log  string
	}{
		{1, []string{"1", "3"}, "from=2 to=2"},
		{4, []string{tok(0, 0, 0, 1), tok(0, 0, 0, 3), tok(1, 0, 0, 3)}, "shard=3 from=2 to=2"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("shards-%d", c.m), func(t *testing.T) {
			log := newMemLog(c.m)
			gap := c.m - 1 // the last shard's cursor 2 never appears
			log.put(gap, 1, 1, "t", time.Now().Add(-2*time.Minute))
			log.put(gap, 3, 3, "t", time.Now().Add(-2*time.Minute))
			if c.m > 1 {
				log.put(0, 1, 4, "t", time.Now())
			}
			var logs bytes.Buffer
			res, err := testConfig().Serve(context.Background(), log.src(all), nil, time.Now, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if evs, _ := parse(t, res.Body, ""); !slices.Equal(ids(evs), c.want) {
				t.Fatalf("events %+v, want %v", evs, c.want)
			}
			if !strings.Contains(logs.String(), "never appeared") || !strings.Contains(logs.String(), c.log) {
				t.Errorf("log %q", logs.String())
			}
		})
	}
}

// A sparse source (a thread's index) has no gaps to wait for.
func TestServeSparseSource(t *testing.T) {
	cases := []struct {
		m    int
		want []string
	}{
		{1, []string{"3", "9"}},
		{4, []string{tok(3, 0, 0, 0), tok(3, 0, 5, 0), tok(9, 0, 5, 0)}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("shards-%d", c.m), func(t *testing.T) {
			log := newMemLog(c.m)
			now := time.Now()
			log.put(0, 3, 3, "t", now)
			if c.m > 1 {
				log.put(2, 5, 5, "t", now.Add(time.Millisecond))
			}
			log.put(0, 9, 9, "t", now.Add(2*time.Millisecond))
			src := log.src(all)
			src.Dense = false
			res, err := testConfig().Serve(context.Background(), src, nil, time.Now, discard())
			if err != nil {
				t.Fatal(err)
			}
			if evs, _ := parse(t, res.Body, ""); !slices.Equal(ids(evs), c.want) {
				t.Fatalf("events %+v, want %v", evs, c.want)
			}
		})
	}
}

// Skipped events move the cursor (a bare id: tells the client), even across full pages.
func TestServeFilterMovesTheCursorPastSkippedEvents(t *testing.T) {
	forShards(t, func(t *testing.T, l layout) {
		log := newMemLog(l.m)
		for k := 1; k <= 1200; k++ {
			typ := "delivery.exhausted"
			if k == 1100 {
				typ = "run.completed"
			}
			log.putK(l, k, typ, time.Now())
		}
		only := func(e store.Event) (string, []byte, bool) { return e.Type, e.Data, e.Type == "run.completed" }
		cfg := testConfig()
		res, err := cfg.Serve(context.Background(), log.src(only), nil, time.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		evs, r := parse(t, res.Body, "")
		if len(evs) != 1 || evs[0].ID != l.id(1100) || r.LastEventID != l.id(1200) || !slices.Equal(res.Pos, l.pos(1200)) {
			t.Fatalf("events %+v, last id %q, position %v", evs, r.LastEventID, res.Pos)
		}
		none := func(store.Event) (string, []byte, bool) { return "", nil, false }
		res, err = cfg.Serve(context.Background(), log.src(none), nil, time.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		if evs, r := parse(t, res.Body, ""); len(evs) != 0 || r.LastEventID != l.id(1200) {
			t.Fatalf("all skipped: events %+v, last id %q", evs, r.LastEventID)
		}
	})
}

// A page the store cut short (more, below the limit) is not the shard's end: when all of it was
// skipped, the window reads on at once. (With Poll as long as the window, only reading on can
// find the event after the skipped ones.)
func TestServeReadsOnPastAPageCutShort(t *testing.T) {
	forShards(t, func(t *testing.T, l layout) {
		log := newMemLog(l.m)
		log.cut = 2
		for k := 1; k <= 12; k++ {
			log.putK(l, k, "t", time.Now())
		}
		last := func(e store.Event) (string, []byte, bool) { return e.Type, e.Data, string(e.Data) == `{"n":12}` }
		cfg := testConfig()
		cfg.Poll = cfg.Window
		res, err := cfg.Serve(context.Background(), log.src(last), nil, time.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		if evs, r := parse(t, res.Body, ""); !slices.Equal(ids(evs), []string{l.id(12)}) || r.LastEventID != l.id(12) {
			t.Fatalf("events %+v, last id %q", evs, r.LastEventID)
		}
	})
}

// Shards are merged by created_at (ties by shard), each shard in cursor order even where its
// created_at disagree (a cursor reserved after another's created_at was taken).
func TestServeMergesShardsByCreationTime(t *testing.T) {
	log := newMemLog(4)
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	log.put(0, 1, 1, "t", at(10))
	log.put(0, 2, 2, "t", at(5))
	log.put(1, 1, 3, "t", at(7))
	log.put(2, 1, 4, "t", at(7))
	log.put(3, 1, 5, "t", at(1))
	log.put(3, 2, 6, "t", at(20))
	res, err := testConfig().Serve(context.Background(), log.src(all), nil, time.Now, discard())
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := parse(t, res.Body, "")
	var order []string
	for _, e := range evs {
		order = append(order, e.Data)
	}
	want := []string{`{"n":5}`, `{"n":3}`, `{"n":4}`, `{"n":1}`, `{"n":2}`, `{"n":6}`}
	if !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	wantIDs := []string{tok(0, 0, 0, 1), tok(0, 1, 0, 1), tok(0, 1, 1, 1), tok(1, 1, 1, 1), tok(2, 1, 1, 1), tok(2, 1, 1, 2)}
	if got := ids(evs); !slices.Equal(got, wantIDs) {
		t.Fatalf("ids %v, want %v", got, wantIDs)
	}
}

// A shard whose page ended before its events do ends the window's merge there: the next page may
// hold events created before other shards' next ones. So windows in a row keep creation order.
func TestServeKeepsCreationOrderPastAShardsPage(t *testing.T) {
	log := newMemLog(4)
	t0 := time.Now()
	for c := int64(1); c <= 60; c++ {
		log.put(0, c, int(c), "t", t0.Add(time.Duration(c)*time.Millisecond))
	}
	log.put(1, 1, 1000, "t", t0.Add(55*time.Millisecond)) // after shard 0's first page (50 events)
	cfg := testConfig()
	cfg.MaxEvents = 200 // pages of 50 a shard
	var order []string
	pos := make([]int64, 4)
	for range 2 {
		res, err := cfg.Serve(context.Background(), log.src(all), pos, time.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		evs, _ := parse(t, res.Body, "")
		for _, e := range evs {
			order = append(order, e.Data)
		}
		pos = res.Pos
	}
	var want []string
	for n := 1; n <= 60; n++ {
		want = append(want, fmt.Sprintf(`{"n":%d}`, n))
		if n == 55 {
			want = append(want, `{"n":1000}`)
		}
	}
	if !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}

func TestServeBoundsTheResponse(t *testing.T) {
	forShards(t, func(t *testing.T, l layout) {
		log := newMemLog(l.m)
		for k := 1; k <= 50; k++ {
			log.putK(l, k, "t", time.Now())
		}
		cfg := testConfig()
		cfg.MaxEvents = 20
		res, err := cfg.Serve(context.Background(), log.src(all), nil, time.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		if evs, r := parse(t, res.Body, ""); len(evs) != 20 || r.LastEventID != l.id(20) {
			t.Fatalf("MaxEvents: %d events, last id %q", len(evs), r.LastEventID)
		}
		big := func(e store.Event) (string, []byte, bool) { return "t", bytes.Repeat([]byte("x"), 400), true }
		cfg = testConfig()
		cfg.MaxBytes = 1000
		res, err = cfg.Serve(context.Background(), log.src(big), nil, time.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		evs, r := parse(t, res.Body, "")
		if len(evs) != 2 || r.LastEventID != l.id(2) || !slices.Equal(res.Pos, l.pos(2)) || len(res.Body) > 1000+64 {
			t.Fatalf("MaxBytes: %d events, last id %q, position %v, %d bytes", len(evs), r.LastEventID, res.Pos, len(res.Body))
		}
		cfg.MaxBytes = 10 // one event always goes out
		res, _ = cfg.Serve(context.Background(), log.src(big), nil, time.Now, discard())
		if evs, _ := parse(t, res.Body, ""); len(evs) != 1 {
			t.Fatalf("an event over MaxBytes: %d events", len(evs))
		}
	})
}

// The longest token (16 shards of 19-digit cursors) is counted against MaxBytes.
func TestServeCountsLongTokensAgainstMaxBytes(t *testing.T) {
	log := newMemLog(16)
	const big = int64(1e18)
	for s := range 16 {
		log.put(s, big+1, s, "t", time.Now().Add(time.Duration(s)))
	}
	head := make([]int64, 16)
	for s := range head {
		head[s] = big
	}
	cfg := testConfig()
	cfg.MaxBytes = 2000
	res, err := cfg.Serve(context.Background(), log.src(all), head, time.Now, discard())
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := parse(t, res.Body, "")
	if len(evs) < 2 || len(res.Body) > cfg.MaxBytes+64 || len(evs[0].ID) != len("v1.")+16*20-1 {
		t.Fatalf("%d events, %d bytes over a bound of %d: %q", len(evs), len(res.Body), cfg.MaxBytes, res.Body)
	}
	if evs[len(evs)-1].ID != Token(res.Pos) {
		t.Fatalf("the last event's id %q is not the position %v", evs[len(evs)-1].ID, res.Pos)
	}
}

func TestServeEndsBeforeTheDeadline(t *testing.T) {
	forShards(t, func(t *testing.T, l layout) {
		log := newMemLog(l.m)
		cfg := testConfig()
		cfg.Window, cfg.Margin = 5*time.Second, 100*time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		begin := time.Now()
		res, err := cfg.Serve(ctx, log.src(all), nil, time.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(begin); d > 250*time.Millisecond {
			t.Errorf("window ran %s into a 300 ms deadline with a 100 ms margin", d)
		}
		if _, r := parse(t, res.Body, ""); r.LastEventID != l.id(0) {
			t.Errorf("last id %q", r.LastEventID)
		}
	})
}

func TestServeReadFailure(t *testing.T) {
	forShards(t, func(t *testing.T, l layout) {
		log := newMemLog(l.m)
		log.putK(l, 1, "t", time.Now())
		log.fail = io.ErrUnexpectedEOF // the last shard's read
		_, err := testConfig().Serve(context.Background(), log.src(all), nil, time.Now, discard())
		if apierr.CodeOf(err) != apierr.Unavailable || strings.Contains(apierr.MessageOf(err), "EOF") {
			t.Fatalf("err %v", err)
		}
	})
}

// A one-shard log's responses are what they were before shards, byte for byte (SHA-256 of bodies
// recorded from the code before shards, on the same scenarios).
func TestServeOneShardBodiesAreUnchanged(t *testing.T) {
	cfg := testConfig()
	cfg.Window = 50 * time.Millisecond
	old := time.Now().Add(-2 * time.Minute)
	mk := func(cs ...int64) *memLog {
		l := newMemLog(1)
		for _, c := range cs {
			l.put(0, c, int(c), "run.created", time.Now())
		}
		return l
	}
	var seq []int64
	for c := int64(1); c <= 1200; c++ {
		seq = append(seq, c)
	}
	only := func(e store.Event) (string, []byte, bool) { return e.Type, e.Data, e.Cursor == 1100 }
	big := func(e store.Event) (string, []byte, bool) { return "t", bytes.Repeat([]byte("x"), 400), true }
	gap := newMemLog(1)
	gap.put(0, 1, 1, "t", old)
	gap.put(0, 3, 3, "t", old)
	small, few := cfg, cfg
	small.MaxBytes, few.MaxEvents = 1000, 20
	sparse := mk(3, 9).src(all)
	sparse.Dense = false
	cases := []struct {
		name string
		cfg  Config
		src  Source
		from int64
		sum  string
	}{
		{"three", cfg, mk(1, 2, 3).src(all), 1, "48de6a1c006343b3331841290916b97e7686de4fe3681cd4ea498642199005a7"},
		{"idle", cfg, mk(1, 2, 3, 4, 5).src(all), 5, "a65f2844f3b7dbd70ce183e1720cc50b3ef5b54a31c4dabe39dd6b2cbe7e3893"},
		{"filter", cfg, mk(seq...).src(only), 0, "e40b1bdd63de71a5bf1dbbd2da994b3a96eebad11622c6e2a062b8ae2554b73c"},
		{"bytes", small, mk(seq[:50]...).src(big), 0, "9ec59b2d8bf3da7cfcbd03cd5f3dcc62ba00dcbd66cb72c474e3d6c903b035cd"},
		{"events", few, mk(seq[:50]...).src(all), 0, "e7b6ba223a576f83bb436574f2d6594d157b35ba3a0d04de012ce775b74f0ea2"},
		{"sparse", cfg, sparse, 0, "3136d96edfb175726d977e51c21aa44d8a3805c8b58f9b8a355c0cbf76d209ea"},
		{"oldgap", cfg, gap.src(all), 0, "837183d55448298f35c2460a45d2f1f1ecd35281d2b8586808ec6743ed91b5fd"},
		{"freshgap", cfg, mk(1, 2, 4, 5).src(all), 0, "a96178ba806fd6c4873d7b768a878d69b7ca04a6ddf1300f1e24f228939f2c0b"},
		{"empty", cfg, mk().src(all), 0, "93eaae5bbf4e03ec100df5e575086758f8a699ff857f37fc99e0e304ab5fdac7"},
	}
	for _, c := range cases {
		res, err := c.cfg.Serve(context.Background(), c.src, []int64{c.from}, time.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(res.Body)); got != c.sum {
			t.Errorf("%s: the body changed: %.300q", c.name, res.Body)
		}
	}
}
