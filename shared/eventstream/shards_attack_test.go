package eventstream

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/local/ssetest"
	"github.com/hookgate/hookgate/shared/manage"
	"github.com/hookgate/hookgate/shared/store"
)

// Attacks on the stream of a log of several shards: forged and odd tokens, ids of before the mark
// rose, a flood read by readers that drop off mid-body.

// shardedEnv is the stream's handler on DynamoDB Local with an API key of workspace "ws".
type shardedEnv struct {
	*eventsEnv
	key   string
	db    store.DB
	table string
}

// writer is a fresh process's store with n shards.
func (e *shardedEnv) writer(n int) *store.Store {
	return store.New(e.db, e.table, time.Now).WithShards(n)
}

func newShardedEnv(t *testing.T, cfg Config) *shardedEnv {
	t.Helper()
	// A window that finds nothing waits it out: short, as these requests each find their events
	// at once or find none.
	cfg.Window = 60 * time.Millisecond
	db, table := emulatortest.Table(t, "streamattack")
	st := store.New(db, table, time.Now)
	h := NewEvents(cfg, manage.NewAuthenticator("default", adminKey, st), st, time.Now, discard())
	_, key, err := st.CreateAPIKey(context.Background(), "ws", "reader")
	if err != nil {
		t.Fatal(err)
	}
	return &shardedEnv{&eventsEnv{st: st, invoke: lambda.NewHandler(h.Handle).Invoke}, key, db, table}
}

// appendSpread appends spread events with a writer of n shards until every shard holds at least
// min of them, and returns them.
func (e *shardedEnv) appendSpread(t *testing.T, w *store.Store, n, min int, prefix string) []store.Event {
	t.Helper()
	var out []store.Event
	per := map[int]int{}
	for i := 0; ; i++ {
		full := len(per) == n
		for _, c := range per {
			full = full && c >= min
		}
		if full {
			return out
		}
		if i == 2000 {
			t.Fatalf("2000 spread events did not reach %d shards: %v", n, per)
		}
		ev, err := w.AppendEvent(context.Background(), store.Event{ID: fmt.Sprintf("%s_%d", prefix, i), Type: "webhook.test", WorkspaceID: "ws",
			Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), Spread: true})
		if err != nil {
			t.Fatal(err)
		}
		per[ev.Shard]++
		out = append(out, ev)
	}
}

// reply is one response: its status, the error's code when it is one, the events' envelope ids and
// the SSE ids, and the last id a browser would resume from.
type reply struct {
	status int
	code   string
	body   string
	ids    []string // envelope ids
	sseIDs []string
	last   string
}

func (e *shardedEnv) read(t *testing.T, lastEventID, since string) reply {
	t.Helper()
	h := map[string]string{"x-api-key": e.key}
	if lastEventID != "" {
		h["last-event-id"] = lastEventID
	}
	q := map[string]string{}
	if since != "" {
		q["since"] = since
	}
	r := e.get(t, h, q)
	out := reply{status: r.status, body: r.body}
	if r.status != 200 {
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal([]byte(r.body), &body); err != nil || r.headers["content-type"] != "application/json" {
			t.Fatalf("a %d that is not a JSON error: %v %q", r.status, r.headers, r.body)
		}
		out.code = body.Error.Code
		return out
	}
	rd := ssetest.NewReader(strings.NewReader(r.body), lastEventID)
	evs, err := rd.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		var env Envelope
		if err := json.Unmarshal([]byte(ev.Data), &env); err != nil {
			t.Fatal(err)
		}
		out.ids, out.sseIDs = append(out.ids, env.ID), append(out.sseIDs, ev.ID)
	}
	out.last = rd.LastEventID
	return out
}

// after is the ids of the events past pos (a cursor per shard; absent entries 0), in a set.
func after(evs []store.Event, pos []int64) map[string]bool {
	out := map[string]bool{}
	for _, e := range evs {
		var c int64
		if e.Shard < len(pos) {
			c = pos[e.Shard]
		}
		if e.Cursor > c {
			out[e.ID] = true
		}
	}
	return out
}

// wantExactly fails unless got holds each id of want once and nothing else.
func wantExactly(t *testing.T, what string, got []string, want map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] || !want[id] {
			t.Errorf("%s: %s sent twice or not wanted (got %d events, want %d)", what, id, len(got), len(want))
			return
		}
		seen[id] = true
	}
	if len(seen) != len(want) {
		t.Errorf("%s: %d events; want %d", what, len(seen), len(want))
	}
}

// Forged and odd cursors, as since= and as Last-Event-ID, against a log of four shards: each is
// a 400 JSON invalid_request, or a resume from exactly the position it names (never a 500, never
// an event lost or sent twice).
func TestAttackForgedTokensAgainstFourShards(t *testing.T) {
	t.Parallel()
	e := newShardedEnv(t, testConfig())
	evs := e.appendSpread(t, e.writer(4), 4, 2, "evt")
	head, err := e.st.LogHead(context.Background(), "ws")
	if err != nil || len(head) != 4 {
		t.Fatalf("LogHead = %v, %v", head, err)
	}
	h := func(i int) string { return strconv.FormatInt(head[i], 10) }
	zeros := func(n int) string { return strings.TrimSuffix(strings.Repeat("0.", n), ".") }
	type want struct {
		pos []int64 // nil: a 400
	}
	bad := want{}
	resume := func(pos ...int64) want { return want{pos} }
	cases := map[string]want{
		"v1." + zeros(16): resume(0, 0, 0, 0),
		"v1." + zeros(17): bad,
		"v1." + h(0) + "." + h(1) + "." + h(2) + "." + h(3) + "." + zeros(12): resume(head...),
		"v1." + h(0) + "." + h(1) + "." + h(2) + "." + h(3) + "." + zeros(13): bad,
		"v1." + zeros(10) + ".1." + zeros(5):                                  bad, // shard 10 does not exist
		"v1.1":                                                                resume(1, 0, 0, 0),
		"v1." + h(0):                                                          resume(head[0], 0, 0, 0),
		h(0):                                                                  resume(head[0], 0, 0, 0), // a decimal id: shard 0's cursor
		"v1.0." + h(1):                                                        resume(0, head[1], 0, 0),
		"v1.0.0.0." + strconv.FormatInt(head[3]+1, 10): bad, // past shard 3's counter
		"v1." + strconv.FormatInt(head[0]+1, 10):       bad,
		strconv.FormatInt(head[0]+1, 10):               bad,
		"v1.9223372036854775807.0.0.0":                 bad,
		"v1.9223372036854775808.0.0.0":                 bad,
		"9223372036854775808":                          bad,
		"v1.01.0.0.0":                                  bad,
		"v1.00":                                        bad,
		"01":                                           bad,
		"+1":                                           bad,
		"v1.+1.0":                                      bad,
		"v1.-0":                                        bad,
		"v1.1.-1":                                      bad,
		"-0":                                           bad,
		"١":                                            bad, // ARABIC-INDIC DIGIT ONE
		"v1.١.0":                                       bad,
		"１":                                            bad, // FULLWIDTH DIGIT ONE
		"v1.1.𝟏":                                       bad, // MATHEMATICAL BOLD DIGIT ONE
		"v1.1..1":                                      bad,
		"v1.1.1.":                                      bad,
		".1":                                           bad,
		"v1..":                                         bad,
		"V1.1.0":                                       bad,
		"v1.1 .0":                                      bad,
		"v1.1.0x1":                                     bad,
		"1e3":                                          bad,
		"v1.1\x00":                                     bad,
		"v1.1,0":                                       bad,
		"v2.0.0":                                       bad,
		"v1":                                           bad,
		"NOW":                                          bad,
		"now":                                          resume(head...),
		"  v1.1.1.0.0\t":                               resume(1, 1, 0, 0),
		"v1." + strings.Repeat("0.", 5000) + "0":       bad,
		strings.Repeat("9", 10000):                     bad,
		"v1.1." + strings.Repeat("1", 10000):           bad,
		strings.Repeat("v1.", 2000):                    bad,
	}
	for tokenValue, w := range cases {
		for _, asHeader := range []bool{false, true} {
			name := fmt.Sprintf("%.40q header=%v", tokenValue, asHeader)
			var r reply
			if asHeader {
				r = e.read(t, tokenValue, "")
			} else {
				r = e.read(t, "", tokenValue)
			}
			if w.pos == nil {
				if r.status != 400 || r.code != "invalid_request" {
					t.Errorf("%s: %d %q; want 400 invalid_request", name, r.status, r.body)
				}
				continue
			}
			if r.status != 200 {
				t.Errorf("%s: %d %s; want a resume", name, r.status, r.body)
				continue
			}
			wantExactly(t, name, r.ids, after(evs, w.pos))
			if r.last != tok(head...) {
				t.Errorf("%s: resumes from %q; want %q", name, r.last, tok(head...))
			}
		}
	}
}

// Last-Event-ID (what a reconnecting EventSource sends) wins over since= (the first connection's
// URL), whichever of them is odd; a blank header leaves since= in force.
func TestAttackLastEventIDVersusSince(t *testing.T) {
	t.Parallel()
	e := newShardedEnv(t, testConfig())
	evs := e.appendSpread(t, e.writer(4), 4, 1, "evt")
	head, err := e.st.LogHead(context.Background(), "ws")
	if err != nil {
		t.Fatal(err)
	}
	mid := []int64{1, 1, 0, 0}
	for _, c := range []struct {
		header, since string
		pos           []int64 // nil: 400
	}{
		{tok(mid...), "garbage", mid},
		{tok(mid...), "now", mid},
		{tok(mid...), tok(head...), mid},
		{"garbage", tok(mid...), nil},
		{"v1.0.0.0.99999", tok(mid...), nil},
		{"  ", tok(mid...), mid},
		{"now", "0", head},
		{"0", "now", []int64{0, 0, 0, 0}},
	} {
		r := e.read(t, c.header, c.since)
		name := fmt.Sprintf("Last-Event-ID %q, since %q", c.header, c.since)
		if c.pos == nil {
			if r.status != 400 || r.code != "invalid_request" {
				t.Errorf("%s: %d %s; want 400 invalid_request", name, r.status, r.body)
			}
			continue
		}
		if r.status != 200 {
			t.Errorf("%s: %d %s", name, r.status, r.body)
			continue
		}
		wantExactly(t, name, r.ids, after(evs, c.pos))
	}
}

// A reader whose last window was served while the log had one shard holds a decimal id; the log
// then gets shards. Resuming from that id sends what followed it in shard 0 and everything of the
// new shards, each once, and never what it had read.
func TestAttackDecimalIDAfterTheMarkRose(t *testing.T) {
	t.Parallel()
	e := newShardedEnv(t, testConfig())
	ctx := context.Background()
	var old []store.Event
	for i := range 5 {
		ev, err := e.st.AppendEvent(ctx, store.Event{ID: fmt.Sprintf("evt_old_%d", i), Type: "webhook.test", WorkspaceID: "ws", Spread: true})
		if err != nil {
			t.Fatal(err)
		}
		old = append(old, ev)
	}
	first := e.read(t, "", "")
	if first.status != 200 || first.last != "5" {
		t.Fatalf("one shard: %d, last id %q; want 200 and 5", first.status, first.last)
	}
	wantExactly(t, "one shard", first.ids, after(old, []int64{0}))
	mid := first.sseIDs[2] // a reader that dropped off after the third event: "3"
	// A process with four shards appends; one with one shard goes on in shard 0.
	spread := e.appendSpread(t, e.writer(4), 4, 2, "evt_new")
	more, err := e.writer(1).AppendEvent(ctx, store.Event{ID: "evt_more", Type: "webhook.test", WorkspaceID: "ws"})
	if err != nil {
		t.Fatal(err)
	}
	all := append(append(slices.Clone(old), spread...), more)
	for _, c := range []struct {
		header string
		pos    []int64
	}{
		{first.last, []int64{5, 0, 0, 0}},
		{mid, []int64{3, 0, 0, 0}},
	} {
		r := e.read(t, c.header, "")
		if r.status != 200 {
			t.Fatalf("Last-Event-ID %s after the mark rose: %d %s", c.header, r.status, r.body)
		}
		wantExactly(t, "Last-Event-ID "+c.header, r.ids, after(all, c.pos))
		if !strings.HasPrefix(r.last, "v1.") {
			t.Errorf("Last-Event-ID %s: the next id is %q; want a v1 token now", c.header, r.last)
		}
	}
}

// A flood: writers append spread events (and shard-0 events) to a workspace of four shards while
// readers read it in small windows and drop off mid-body, each resuming from the last id it got (as a
// browser's Last-Event-ID). Every reader gets every event exactly once, each shard in cursor order.
func TestAttackFloodReadersResumingMidWay(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.MaxEvents = 9
	e := newShardedEnv(t, cfg)
	ctx := context.Background()
	const writers, each = 4, 50
	var wg sync.WaitGroup
	appended := make(chan store.Event, writers*each)
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := e.writer(4)
			for i := range each {
				ev, err := st.AppendEvent(ctx, store.Event{ID: fmt.Sprintf("evt_%d_%d", w, i), Type: "webhook.test", WorkspaceID: "ws",
					Data: json.RawMessage(`{}`), Spread: w != 0}) // writer 0: the gateway's own, shard 0
				if err != nil {
					errs <- err
					return
				}
				appended <- ev
			}
		}()
	}
	const readers = 3
	got := make([][]string, readers)
	var rwg sync.WaitGroup
	for rd := range readers {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			rng := rand.New(rand.NewPCG(uint64(rd), 7))
			last := ""
			for range 400 {
				r := e.read(t, last, "")
				if r.status != 200 {
					t.Errorf("reader %d: %d %s", rd, r.status, r.body)
					return
				}
				if len(r.ids) == 0 {
					last = r.last
				} else { // drop off after a random number of the events
					k := 1 + rng.IntN(len(r.ids))
					got[rd] = append(got[rd], r.ids[:k]...)
					last = r.sseIDs[k-1]
				}
				if len(got[rd]) >= writers*each {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(appended)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rwg.Wait()
	var all []store.Event
	byID := map[string]store.Event{}
	for ev := range appended {
		all = append(all, ev)
		byID[ev.ID] = ev
	}
	for rd := range readers {
		wantExactly(t, fmt.Sprintf("reader %d", rd), got[rd], after(all, nil))
		last := map[int]int64{}
		for _, id := range got[rd] {
			ev := byID[id]
			if ev.Cursor <= last[ev.Shard] {
				t.Errorf("reader %d: %s (shard %d cursor %d) after cursor %d", rd, id, ev.Shard, ev.Cursor, last[ev.Shard])
			}
			last[ev.Shard] = ev.Cursor
		}
	}
}
