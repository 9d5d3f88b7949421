package eventstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/local/ssetest"
	"github.com/hookgate/hookgate/shared/fanout"
	"github.com/hookgate/hookgate/shared/manage"
	"github.com/hookgate/hookgate/shared/store"
)

func TestMain(m *testing.M) { os.Exit(emulatortest.Run(m)) }

const adminKey = "test-admin-key-0123456789"

type eventsEnv struct {
	st     *store.Store
	invoke func(ctx context.Context, payload []byte) ([]byte, error)
}

func newEventsEnv(t *testing.T) *eventsEnv {
	t.Helper()
	db, table := emulatortest.Table(t, "stream")
	st := store.New(db, table, time.Now)
	h := NewEvents(testConfig(), manage.NewAuthenticator("default", adminKey, st), st, time.Now, discard())
	return &eventsEnv{st: st, invoke: lambda.NewHandler(h.Handle).Invoke}
}

type streamReply struct {
	status  int
	headers map[string]string
	body    string
}

// get invokes the handler through the Lambda decoder with a payload 2.0 GET event.
func (e *eventsEnv) get(t *testing.T, headers, query map[string]string) streamReply {
	t.Helper()
	req := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "GET /v1/events/stream", RawPath: "/v1/events/stream",
		Headers: headers, QueryStringParameters: query}
	payload, _ := json.Marshal(req)
	out, err := e.invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	return streamReply{resp.StatusCode, resp.Headers, resp.Body}
}

func (e *eventsEnv) append(t *testing.T, ws string, n int, typ string) []store.Event {
	t.Helper()
	var out []store.Event
	for i := range n {
		ev, err := e.st.AppendEvent(context.Background(), store.Event{ID: fmt.Sprintf("evt_%s_%s_%d_%d", ws, typ, i, time.Now().UnixNano()), Type: typ, WorkspaceID: ws,
			Data: json.RawMessage(fmt.Sprintf(`{"i":%d,"thread_id":"thr_x"}`, i))})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func TestEventStreamRefusals(t *testing.T) {
	t.Parallel()
	e := newEventsEnv(t)
	e.append(t, "default", 3, "run.created")
	admin := map[string]string{"x-api-key": adminKey}
	cases := []struct {
		name    string
		headers map[string]string
		query   map[string]string
		status  int
		code    string
		message string
	}{
		{"no key", nil, nil, 401, "unauthorized", "missing API key"},
		{"wrong key", map[string]string{"x-api-key": "hgk_" + strings.Repeat("a", 40)}, nil, 401, "unauthorized", "invalid API key"},
		{"malformed since", admin, map[string]string{"since": "abc"}, 400, "invalid_request", "malformed cursor"},
		{"negative since", admin, map[string]string{"since": "-1"}, 400, "invalid_request", "malformed cursor"},
		{"malformed Last-Event-ID", map[string]string{"x-api-key": adminKey, "last-event-id": "3x"}, nil, 400, "invalid_request", "malformed cursor"},
		{"cursor past the end", admin, map[string]string{"since": "4"}, 400, "invalid_request", "unknown cursor 4"},
		{"token past the end", admin, map[string]string{"since": "v1.4"}, 400, "invalid_request", "unknown cursor 4"},
		{"token entry at the mark", admin, map[string]string{"since": "v1.1.1"}, 400, "invalid_request", "unknown cursor v1.1.1"},
		{"v1. alone", admin, map[string]string{"since": "v1."}, 400, "invalid_request", "malformed cursor"},
		{"v2 token", map[string]string{"x-api-key": adminKey, "last-event-id": "v2.1"}, nil, 400, "invalid_request", "malformed cursor"},
		{"17 entries", admin, map[string]string{"since": "v1" + strings.Repeat(".0", 17)}, 400, "invalid_request", "malformed cursor"},
		{"bad type pattern", admin, map[string]string{"types": "run.*,no such thing"}, 400, "invalid_request", "types"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.get(t, c.headers, c.query)
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			_ = json.Unmarshal([]byte(r.body), &body)
			if r.status != c.status || body.Error.Code != c.code || !strings.Contains(body.Error.Message, c.message) || r.headers["content-type"] != "application/json" {
				t.Fatalf("got %d %v %s, want %d %s %q", r.status, r.headers, r.body, c.status, c.code, c.message)
			}
		})
	}
}

func TestEventStreamServesTheCallersWorkspace(t *testing.T) {
	t.Parallel()
	e := newEventsEnv(t)
	mine := e.append(t, "ws-a", 3, "run.created")
	e.append(t, "ws-b", 5, "run.created")
	e.append(t, "default", 2, "message.sent")
	_, keyA, err := e.st.CreateAPIKey(context.Background(), "ws-a", "reader")
	if err != nil {
		t.Fatal(err)
	}
	r := e.get(t, map[string]string{"authorization": "Bearer " + keyA}, nil)
	if r.status != 200 || r.headers["content-type"] != "text/event-stream; charset=utf-8" || !strings.Contains(r.headers["cache-control"], "no-cache") {
		t.Fatalf("got %d %v", r.status, r.headers)
	}
	evs, err := ssetest.NewReader(strings.NewReader(r.body), "").All()
	if err != nil || len(evs) != 3 {
		t.Fatalf("ws-a sees %d events (%v): %s", len(evs), err, r.body)
	}
	for i, ev := range evs {
		var env Envelope
		if err := json.Unmarshal([]byte(ev.Data), &env); err != nil {
			t.Fatal(err)
		}
		want := mine[i]
		if ev.ID != fmt.Sprint(want.Cursor) || ev.Name != want.Type || env.ID != want.ID || env.WorkspaceID != "ws-a" || string(env.Data) != string(want.Data) {
			t.Fatalf("event %d: %+v %+v, want %+v", i, ev, env, want)
		}
		// The same envelope subscribers' webhooks get.
		sub, _ := json.Marshal(fanout.Envelope{ID: want.ID, Type: want.Type, CreatedAt: want.CreatedAt.UTC().Format(time.RFC3339Nano), WorkspaceID: "ws-a", Data: want.Data})
		if !bytes.Equal(sub, []byte(ev.Data)) {
			t.Fatalf("stream sends %s, subscribers get %s", ev.Data, sub)
		}
	}
	// The admin key reads the default workspace; a filter selects by type.
	r = e.get(t, map[string]string{"x-api-key": adminKey}, map[string]string{"types": "message.*"})
	evs, _ = ssetest.NewReader(strings.NewReader(r.body), "").All()
	if len(evs) != 2 || evs[0].Name != "message.sent" {
		t.Fatalf("default, message.*: %+v", evs)
	}
	r = e.get(t, map[string]string{"x-api-key": adminKey}, map[string]string{"types": "run.*"})
	evs, rd := parse(t, []byte(r.body), "")
	if len(evs) != 0 || rd.LastEventID != "2" {
		t.Fatalf("default, run.*: %+v, last id %q", evs, rd.LastEventID)
	}
	// since=now starts at the end and says where that is.
	r = e.get(t, map[string]string{"x-api-key": keyA}, map[string]string{"since": "now"})
	if evs, rd := parse(t, []byte(r.body), ""); len(evs) != 0 || rd.LastEventID != "3" {
		t.Fatalf("since=now: %+v, last id %q", evs, rd.LastEventID)
	}
	// Last-Event-ID resumes after it.
	r = e.get(t, map[string]string{"x-api-key": keyA, "last-event-id": "1"}, map[string]string{"since": "0"})
	if evs, _ := parse(t, []byte(r.body), "1"); len(evs) != 2 || evs[0].ID != "2" {
		t.Fatalf("Last-Event-ID 1: %+v", evs)
	}
}

// A log of four shards: every event once, each id the position after it, and the position resumes.
func TestEventStreamServesAFourShardLog(t *testing.T) {
	t.Parallel()
	e := newEventsEnv(t)
	ctx := context.Background()
	writer := e.st.WithShards(4)
	var appended []store.Event
	for shards := map[int]bool{}; len(shards) < 4; {
		if len(appended) == 200 {
			t.Fatalf("200 spread events did not reach four shards: %v", shards)
		}
		ev, err := writer.AppendEvent(ctx, store.Event{ID: fmt.Sprintf("evt_%d", len(appended)), Type: "webhook.test", WorkspaceID: "ws-4", Spread: true})
		if err != nil {
			t.Fatal(err)
		}
		shards[ev.Shard] = true
		appended = append(appended, ev)
	}
	_, key, err := e.st.CreateAPIKey(ctx, "ws-4", "reader")
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]string{"x-api-key": key}
	r := e.get(t, h, nil)
	evs, rd := parse(t, []byte(r.body), "")
	if r.status != 200 || len(evs) != len(appended) {
		t.Fatalf("%d, %d events of %d: %s", r.status, len(evs), len(appended), r.body)
	}
	pos := make([]int64, 4)
	byID := map[string]store.Event{}
	for _, ev := range appended {
		byID[ev.ID] = ev
	}
	for _, ev := range evs {
		var env Envelope
		if err := json.Unmarshal([]byte(ev.Data), &env); err != nil {
			t.Fatal(err)
		}
		want, ok := byID[env.ID]
		if !ok {
			t.Fatalf("%s sent twice, or never appended", env.ID)
		}
		delete(byID, env.ID)
		pos[want.Shard] = want.Cursor
		if ev.ID != tok(pos...) {
			t.Fatalf("%s (shard %d cursor %d) has id %q, want %q", env.ID, want.Shard, want.Cursor, ev.ID, tok(pos...))
		}
	}
	if rd.LastEventID != tok(pos...) {
		t.Fatalf("last id %q, want %q", rd.LastEventID, tok(pos...))
	}
	// since=now names every shard's end; a decimal id is shard 0's cursor, the others from their start.
	if _, rd := parse(t, []byte(e.get(t, h, map[string]string{"since": "now"}).body), ""); rd.LastEventID != tok(pos...) {
		t.Fatalf("since=now: last id %q, want %q", rd.LastEventID, tok(pos...))
	}
	if evs, _ := parse(t, []byte(e.get(t, h, map[string]string{"since": strconv.FormatInt(pos[0], 10)}).body), ""); len(evs) != len(appended)-int(pos[0]) {
		t.Fatalf("since=%d: %d events, want %d", pos[0], len(evs), len(appended)-int(pos[0]))
	}
	past := slices.Clone(pos)
	past[3]++
	for _, since := range []string{tok(past...), tok(append(slices.Clone(pos), 1)...), strconv.FormatInt(pos[0]+1, 10)} {
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		r := e.get(t, h, map[string]string{"since": since})
		if _ = json.Unmarshal([]byte(r.body), &body); r.status != 400 || !strings.Contains(body.Error.Message, "unknown cursor") {
			t.Fatalf("since=%s: %d %s", since, r.status, r.body)
		}
	}
}
