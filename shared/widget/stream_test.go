package widget

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
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

func TestRender(t *testing.T) {
	at := time.Date(2026, 11, 25, 9, 0, 0, 5, time.UTC)
	cases := []struct {
		typ, data, name, want string
	}{
		{"message.received", `{"thread_id":"t","message_id":"msg_1","text":"hi","user":"u","data":{"secret":1},"external_id":"wss_1"}`, "message",
			`{"id":"msg_1","role":"user","text":"hi","created_at":"2026-11-25T09:00:00.000000005Z"}`},
		{"message.sent", `{"thread_id":"t","message_id":"msg_2","run_id":"run_1","text":"hello","channel":"web"}`, "message",
			`{"id":"msg_2","role":"assistant","text":"hello","run_id":"run_1","created_at":"2026-11-25T09:00:00.000000005Z"}`},
		{"run.failed", `{"thread_id":"t","run_id":"run_1","status":"failed","error":"agent failed: 500 from http://10.0.0.1"}`, "run",
			`{"run_id":"run_1","status":"failed","created_at":"2026-11-25T09:00:00.000000005Z"}`},
		{"run.created", `{"thread_id":"t","run_id":"run_1","status":"queued"}`, "run", `{"run_id":"run_1","status":"queued","created_at":"2026-11-25T09:00:00.000000005Z"}`},
		{"run.created", `{"thread_id":"t"}`, "", ""},
		{"delivery.exhausted", `{"thread_id":"t","run_id":"r","status":"x"}`, "", ""},
		{"message.sent", `nope`, "", ""},
	}
	for _, c := range cases {
		name, data, ok := Render(store.Event{Type: c.typ, Data: json.RawMessage(c.data), CreatedAt: at})
		if ok != (c.name != "") || name != c.name || string(data) != c.want {
			t.Errorf("Render(%s %s) = %q %s %v, want %q %s", c.typ, c.data, name, data, ok, c.name, c.want)
		}
	}
}

func TestStreamShowsOnlyTheSessionsThread(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "widget")
	st := store.New(db, table, time.Now)
	cfg := testCfg()
	window := eventstream.Defaults()
	window.Window, window.Poll, window.Margin = 300*time.Millisecond, 20*time.Millisecond, 0
	h := lambda.NewHandler(NewStream(cfg, window, st, time.Now, slog.New(slog.DiscardHandler)).Handle).Invoke
	exp := time.Now().Add(time.Hour)
	a := Session{Workspace: "default", ID: "wss_a", Origin: site, Expires: exp}
	b := Session{Workspace: "default", ID: "wss_b", Origin: site, Expires: exp}
	ctx := context.Background()
	add := func(s Session, typ, data string) store.Event {
		t.Helper()
		e, err := st.AppendEvent(ctx, store.Event{ID: fmt.Sprintf("evt_%s_%s_%d", s.ID, typ, time.Now().UnixNano()), Type: typ, WorkspaceID: "default",
			Data: json.RawMessage(strings.ReplaceAll(data, "THREAD", s.ThreadID()))})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a1 := add(a, "message.received", `{"thread_id":"THREAD","message_id":"msg_a1","text":"hi from a"}`)
	add(b, "message.received", `{"thread_id":"THREAD","message_id":"msg_b1","text":"hi from b"}`)
	a2 := add(a, "run.created", `{"thread_id":"THREAD","run_id":"run_a","status":"queued"}`)
	add(a, "webhook.shop.order", `{"thread_id":"THREAD","text":"injected"}`)
	add(a, "message.sent", `{"thread_id":"THREAD","message_id":"msg_a2","run_id":"run_a","text":"hi from a"}`)
	add(b, "message.sent", `{"thread_id":"THREAD","message_id":"msg_b2","run_id":"run_b","text":"hi from b"}`)
	a4 := add(a, "run.completed", `{"thread_id":"THREAD","run_id":"run_a","status":"completed"}`)

	keys := verify.NewSecrets(signKey)
	get := func(headers, query map[string]string) (events.APIGatewayV2HTTPResponse, []ssetest.Event, *ssetest.Reader) {
		t.Helper()
		req := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "GET /v1/web/stream", RawPath: "/v1/web/stream", Headers: headers, QueryStringParameters: query}
		payload, _ := json.Marshal(req)
		out, err := h(ctx, payload)
		if err != nil {
			t.Fatal(err)
		}
		var resp events.APIGatewayV2HTTPResponse
		_ = json.Unmarshal(out, &resp)
		rd := ssetest.NewReader(strings.NewReader(resp.Body), headers["last-event-id"])
		evs, _ := rd.All()
		return resp, evs, rd
	}
	resp, evs, rd := get(map[string]string{"origin": site}, map[string]string{"token": Sign(keys, a)})
	if resp.StatusCode != 200 || resp.Headers["access-control-allow-origin"] != site || !strings.HasPrefix(resp.Headers["content-type"], "text/event-stream") {
		t.Fatalf("stream: %d %v %s", resp.StatusCode, resp.Headers, resp.Body)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.ID+" "+e.Name+" "+e.Data)
	}
	want := []string{
		fmt.Sprintf(`%d message {"id":"msg_a1","role":"user","text":"hi from a","created_at":"%s"}`, a1.Cursor, a1.CreatedAt.UTC().Format(time.RFC3339Nano)),
		fmt.Sprintf(`%d run {"run_id":"run_a","status":"queued","created_at":"%s"}`, a2.Cursor, a2.CreatedAt.UTC().Format(time.RFC3339Nano)),
	}
	if len(got) != 4 || got[0] != want[0] || got[1] != want[1] || !strings.Contains(got[2], `"id":"msg_a2","role":"assistant"`) ||
		!strings.Contains(got[3], `"status":"completed"`) || rd.LastEventID != fmt.Sprint(a4.Cursor) {
		t.Fatalf("session a sees:\n%s\nlast id %q", strings.Join(got, "\n"), rd.LastEventID)
	}
	if strings.Contains(resp.Body, "from b") || strings.Contains(resp.Body, "injected") {
		t.Fatalf("session a sees another thread's or a SaaS event: %s", resp.Body)
	}
	// Session b, by header, with no origin (a server): only b's.
	_, evs, _ = get(map[string]string{"authorization": "Bearer " + Sign(keys, b)}, nil)
	if len(evs) != 2 || !strings.Contains(evs[0].Data, "hi from b") || !strings.Contains(evs[1].Data, "msg_b2") {
		t.Fatalf("session b sees %+v", evs)
	}
	// Resuming: Last-Event-ID wins over since.
	_, evs, _ = get(map[string]string{"last-event-id": fmt.Sprint(a2.Cursor)}, map[string]string{"token": Sign(keys, a), "since": "0"})
	if len(evs) != 2 || !strings.Contains(evs[0].Data, "msg_a2") {
		t.Fatalf("after %d: %+v", a2.Cursor, evs)
	}
	// An idle window ends with a keep-alive and the cursor.
	begin := time.Now()
	resp, evs, rd = get(nil, map[string]string{"token": Sign(keys, a), "since": "now"})
	if len(evs) != 0 || !strings.Contains(resp.Body, ": keep-alive") || rd.LastEventID != fmt.Sprint(a4.Cursor) || time.Since(begin) < 250*time.Millisecond {
		t.Fatalf("idle: %q after %s", resp.Body, time.Since(begin))
	}
	expired := Sign(keys, Session{Workspace: "default", ID: "wss_a", Origin: site, Expires: time.Now().Add(-time.Second)})
	refusals := []struct {
		name    string
		headers map[string]string
		query   map[string]string
		status  int
	}{
		{"no token", map[string]string{"origin": site}, nil, 401},
		{"forged token", nil, map[string]string{"token": Sign(verify.NewSecrets("not-the-key-0123456"), a)}, 401},
		{"expired token", map[string]string{"origin": site}, map[string]string{"token": expired}, 401},
		{"disallowed origin", map[string]string{"origin": "https://evil.example.com"}, map[string]string{"token": Sign(keys, a)}, 403},
		{"the session's token on another allowed site", map[string]string{"origin": "http://127.0.0.1:3000"}, map[string]string{"token": Sign(keys, a)}, 403},
		{"malformed cursor", nil, map[string]string{"token": Sign(keys, a), "since": "x1"}, 400},
		{"unknown cursor", nil, map[string]string{"token": Sign(keys, a), "since": "99999"}, 400},
	}
	for _, c := range refusals {
		resp, _, _ := get(c.headers, c.query)
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal([]byte(resp.Body), &body)
		if resp.StatusCode != c.status || body.Error.Code == "" || resp.Headers["content-type"] != "application/json" {
			t.Errorf("%s: %d %v %s", c.name, resp.StatusCode, resp.Headers, resp.Body)
		}
	}
}
