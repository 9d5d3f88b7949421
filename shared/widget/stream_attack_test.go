package widget

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/local/ssetest"
	"github.com/hookgate/hookgate/shared/eventstream"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/verify"
)

// Attacks on the widget's stream over a log of several shards: a thread's cursors are its shard's.

// shardedWidget is the widget stream on DynamoDB Local, over a workspace whose threads are dealt to
// four shards.
type shardedWidget struct {
	db     store.DB
	table  string
	invoke func(ctx context.Context, payload []byte) ([]byte, error)
	keys   *verify.Secrets
}

func newShardedWidget(t *testing.T) *shardedWidget {
	t.Helper()
	db, table := emulatortest.Table(t, "widgetattack")
	window := eventstream.Defaults()
	window.Window, window.Poll, window.Margin, window.MaxEvents = 60*time.Millisecond, 10*time.Millisecond, 0, 3
	h := NewStream(testCfg(), window, store.New(db, table, time.Now), time.Now, slog.New(slog.DiscardHandler))
	return &shardedWidget{db: db, table: table, invoke: lambda.NewHandler(h.Handle).Invoke, keys: verify.NewSecrets(signKey)}
}

// sessionIn returns a session whose thread four shards deal to shard, and creates its thread with
// a writer of n shards (n 1: a thread from before shards, in shard 0).
func (w *shardedWidget) sessionIn(t *testing.T, prefix string, shard, n int) Session {
	t.Helper()
	for i := range 1000 {
		s := Session{Workspace: "default", ID: fmt.Sprintf("wss_%s%d", prefix, i), Origin: site, Expires: time.Now().Add(time.Hour)}
		if store.HashShard(s.ThreadID(), n) != shard {
			continue
		}
		nr := store.NewRun{
			Thread:  store.Thread{ID: s.ThreadID(), WorkspaceID: "default", Channel: "web", ExternalID: s.ID},
			Message: store.Message{ID: "msg_open_" + s.ID, Direction: "in", Source: "widget", Text: "hi", CreatedAt: time.Now()},
			Run:     store.Run{ID: "run_open_" + s.ID},
		}
		if _, _, err := store.New(w.db, w.table, time.Now).WithShards(n).CreateRunWith(context.Background(), nr); err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Fatalf("no session for shard %d of %d", shard, n)
	return Session{}
}

// say appends a visitor's message to the session's thread with a writer of n shards.
func (w *shardedWidget) say(t *testing.T, s Session, n int, text string) store.Event {
	t.Helper()
	id := fmt.Sprintf("msg_%s_%s", s.ID, text)
	e, err := store.New(w.db, w.table, time.Now).WithShards(n).AppendEvent(context.Background(), store.Event{
		ID: "evt_" + id, Type: "message.received", WorkspaceID: "default",
		Data: json.RawMessage(fmt.Sprintf(`{"thread_id":%q,"message_id":%q,"text":%q}`, s.ThreadID(), id, text)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type widgetReply struct {
	status int
	body   string
	texts  []string
	ids    []string
	last   string
}

func (w *shardedWidget) read(t *testing.T, s Session, lastEventID, since string) widgetReply {
	t.Helper()
	q := map[string]string{"token": Sign(w.keys, s)}
	if since != "" {
		q["since"] = since
	}
	h := map[string]string{"origin": site}
	if lastEventID != "" {
		h["last-event-id"] = lastEventID
	}
	req := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "GET /v1/web/stream", RawPath: "/v1/web/stream", Headers: h, QueryStringParameters: q}
	payload, _ := json.Marshal(req)
	out, err := w.invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	r := widgetReply{status: resp.StatusCode, body: resp.Body}
	if resp.StatusCode != 200 {
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		if json.Unmarshal([]byte(resp.Body), &body) != nil || body.Error.Code == "" {
			t.Fatalf("a %d that is not a JSON error: %s", resp.StatusCode, resp.Body)
		}
		return r
	}
	rd := ssetest.NewReader(strings.NewReader(resp.Body), lastEventID)
	evs, err := rd.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		var m Message
		if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
			t.Fatal(err)
		}
		r.texts, r.ids = append(r.texts, m.Text), append(r.ids, ev.ID)
	}
	r.last = rd.LastEventID
	return r
}

// The widget's stream given the workspace stream's tokens, another thread's cursors, and odd ones:
// each is a 400, or a resume of the session's own thread from the cursor it names; never a 500,
// never another thread's event.
func TestAttackWidgetStreamGivenForeignCursors(t *testing.T) {
	t.Parallel()
	w := newShardedWidget(t)
	a, b := w.sessionIn(t, "a", 1, 4), w.sessionIn(t, "b", 3, 4)
	var mine []store.Event
	for i := range 3 {
		mine = append(mine, w.say(t, a, 4, fmt.Sprintf("a%d", i)))
	}
	var theirs []store.Event
	for i := range 8 { // b's shard runs ahead of a's
		theirs = append(theirs, w.say(t, b, 4, fmt.Sprintf("b%d", i)))
	}
	head := mine[len(mine)-1].Cursor
	after := func(c int64) []string {
		var out []string
		for _, e := range mine {
			if e.Cursor > c {
				var d struct{ Text string }
				_ = json.Unmarshal(e.Data, &d)
				out = append(out, d.Text)
			}
		}
		return out
	}
	fmtC := func(c int64) string { return strconv.FormatInt(c, 10) }
	for _, c := range []struct {
		cursor string
		from   int64 // -1: 400
	}{
		{"v1." + fmtC(theirs[7].Cursor) + ".0.0." + fmtC(theirs[7].Cursor), -1}, // the workspace's token
		{"v1.0.1.0.0", -1},
		{"v1." + fmtC(mine[0].Cursor) + ".0.0.0", mine[0].Cursor}, // its first entry as this thread's cursor, or 400
		{fmtC(theirs[7].Cursor), -1},                              // b's last cursor: past a's shard
		{fmtC(theirs[0].Cursor), theirs[0].Cursor},                // b's first: a cursor of a's shard too
		{fmtC(head + 1), -1},
		{fmtC(head), head},
		{"now", head},
		{"01", -1}, {"+1", -1}, {"١", -1}, {"v1.", -1}, {"v1." + strings.Repeat("0.", 16) + "0", -1},
		{strings.Repeat("1", 5000), -1},
	} {
		for _, asHeader := range []bool{false, true} {
			var r widgetReply
			if asHeader {
				r = w.read(t, a, c.cursor, "")
			} else {
				r = w.read(t, a, "", c.cursor)
			}
			name := fmt.Sprintf("%.30q header=%v", c.cursor, asHeader)
			if strings.Contains(r.body, `"text":"b`) {
				t.Errorf("%s: session a sees thread b's events: %s", name, r.body)
			}
			switch {
			case r.status == 400 && (c.from < 0 || strings.HasPrefix(c.cursor, "v1.")):
			case r.status == 200 && c.from >= 0:
				if want := after(c.from); !slices.Equal(r.texts, want[:min(len(want), 3)]) {
					t.Errorf("%s: sends %v; want %v", name, r.texts, want)
				}
			default:
				t.Errorf("%s: %d %s; want %s", name, r.status, r.body, map[bool]string{true: "400", false: "a resume"}[c.from < 0])
			}
		}
	}
}

// A session's thread in shard 2 of four, another in shard 0 created before shards and continued
// with four: while other threads push shard 0's counter far ahead, each widget reader, resuming
// window after window from its Last-Event-ID, gets each of its thread's messages exactly once, in
// order, and is never refused.
func TestAttackWidgetResumesExactlyOnceWithFourShards(t *testing.T) {
	t.Parallel()
	w := newShardedWidget(t)
	sessions := []Session{w.sessionIn(t, "s2_", 2, 4), w.sessionIn(t, "old_", 0, 1)}
	noise := w.sessionIn(t, "noise_", 0, 4)
	for i := range 20 {
		w.say(t, noise, 4, fmt.Sprintf("n%d", i))
	}
	want := make([][]string, len(sessions))
	last := make([]string, len(sessions))
	got := make([][]string, len(sessions))
	for round := range 4 {
		for i, s := range sessions {
			for k := range 4 {
				text := fmt.Sprintf("r%d_%d", round, k)
				w.say(t, s, 4, text)
				want[i] = append(want[i], text)
			}
			w.say(t, noise, 4, fmt.Sprintf("n_%d_%d", round, i))
		}
		// Each reader reads two windows of at most three (a reconnect in between).
		for i, s := range sessions {
			for range 2 {
				r := w.read(t, s, last[i], "")
				if r.status != 200 {
					t.Fatalf("session %d, Last-Event-ID %q: %d %s", i, last[i], r.status, r.body)
				}
				got[i], last[i] = append(got[i], r.texts...), r.last
			}
		}
	}
	for i, s := range sessions {
		for range 10 {
			if len(got[i]) >= len(want[i]) {
				break
			}
			r := w.read(t, s, last[i], "")
			if r.status != 200 {
				t.Fatalf("session %d, Last-Event-ID %q: %d %s", i, last[i], r.status, r.body)
			}
			got[i], last[i] = append(got[i], r.texts...), r.last
		}
		// Caught up: one more window must bring nothing (no event repeated after the last).
		if r := w.read(t, s, last[i], ""); r.status != 200 || len(r.texts) > 0 {
			t.Errorf("session %d after catching up: %d %v", i, r.status, r.texts)
		}
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("session %d sees %v; want %v", i, got[i], want[i])
		}
	}
}
