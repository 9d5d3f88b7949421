package e2e_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/verify"
	"github.com/hookgate/hookgate/shared/widget"
)

// openSession opens a widget session from origin.
func openSession(t *testing.T, e *liveEnv, origin string) (token, sessionID, threadID string) {
	t.Helper()
	r := do(t, http.MethodPost, e.stack.URL+"/v1/web/session", map[string]string{"Origin": origin, "Content-Type": "application/json"}, "{}")
	if r.status != 201 {
		t.Fatalf("open session: %d %s", r.status, r.raw)
	}
	return r.body["token"].(string), r.body["session_id"].(string), r.body["thread_id"].(string)
}

type widgetMessage struct {
	ID    string `json:"id"`
	Role  string `json:"role"`
	Text  string `json:"text"`
	RunID string `json:"run_id"`
}

// follow reads the widget stream until want returns true or 90 s pass, resuming as EventSource
// does; it returns the messages and run statuses seen.
func follow(t *testing.T, e *liveEnv, token, origin string, want func(msgs []widgetMessage, statuses []string) bool) ([]widgetMessage, []string) {
	t.Helper()
	var msgs []widgetMessage
	var statuses []string
	lastID := ""
	deadline := time.Now().Add(90 * time.Second)
	for !want(msgs, statuses) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting; saw %+v and %v", msgs, statuses)
		}
		h := map[string]string{}
		if origin != "" {
			h["Origin"] = origin
		}
		w := streamOnce(t, e.stack.URL+"/v1/web/stream?token="+url.QueryEscape(token), h, lastID)
		if w.status != 200 {
			t.Fatalf("widget stream: %d %s", w.status, w.raw)
		}
		for _, ev := range w.events {
			switch ev.Name {
			case "message":
				var m widgetMessage
				if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, m)
			case "run":
				var r struct{ Status string }
				_ = json.Unmarshal([]byte(ev.Data), &r)
				statuses = append(statuses, r.Status)
			default:
				t.Fatalf("widget stream sent a %q event: %s", ev.Name, ev.Data)
			}
		}
		lastID = w.lastID
	}
	return msgs, statuses
}

// The widget's API through the local HTTP API: a session, a message, the echo agent's reply on the
// session's stream; another session sees none of it; bad tokens and origins are refused.
func TestWidgetConversation(t *testing.T) {
	inLane(t, laneLive)
	e := liveStack(t)
	site := e.stack.URL // local mode allows its own origin
	token, sessionID, threadID := openSession(t, e, site)
	r := do(t, http.MethodPost, e.stack.URL+"/v1/web/messages", map[string]string{"Origin": site, "Authorization": "Bearer " + token, "Content-Type": "application/json"},
		`{"text":"hello, widget","client_id":"c-1"}`)
	if r.status != 202 || r.body["thread_id"] != threadID {
		t.Fatalf("send: %d %s", r.status, r.raw)
	}
	msgID := r.body["message_id"].(string)
	msgs, statuses := follow(t, e, token, site, func(msgs []widgetMessage, statuses []string) bool {
		return len(statuses) > 0 && statuses[len(statuses)-1] == "completed"
	})
	if len(msgs) != 2 || msgs[0] != (widgetMessage{ID: msgID, Role: "user", Text: "hello, widget"}) ||
		msgs[1].Role != "assistant" || msgs[1].Text != "hello, widget" || msgs[1].RunID != r.body["run_id"] {
		t.Fatalf("conversation %+v", msgs)
	}
	if strings.Join(statuses, ",") != "queued,completed" {
		t.Fatalf("run statuses %v", statuses)
	}
	// Another session's stream has nothing of it.
	other, _, otherThread := openSession(t, e, site)
	if otherThread == threadID {
		t.Fatal("two sessions share a thread")
	}
	w := streamOnce(t, e.stack.URL+"/v1/web/stream?token="+url.QueryEscape(other), nil, "")
	if w.status != 200 || len(w.events) != 0 || strings.Contains(w.raw, "hello, widget") {
		t.Fatalf("another session sees: %d %s", w.status, w.raw)
	}

	keys := verify.NewSecrets(widgetKey)
	expired := widget.Sign(keys, widget.Session{Workspace: "default", ID: sessionID, Origin: strings.ToLower(site), Expires: time.Now().Add(-time.Minute)})
	forged := widget.Sign(verify.NewSecrets("not-the-signing-key-0123"), widget.Session{Workspace: "default", ID: sessionID, Origin: site, Expires: time.Now().Add(time.Hour)})
	stream := e.stack.URL + "/v1/web/stream?token="
	cases := []struct {
		name, method, url string
		headers           map[string]string
		body              string
		status            int
	}{
		{"stream without a token", "GET", e.stack.URL + "/v1/web/stream", nil, "", 401},
		{"stream with an expired token", "GET", stream + url.QueryEscape(expired), nil, "", 401},
		{"stream with a forged token", "GET", stream + url.QueryEscape(forged), nil, "", 401},
		{"stream from a disallowed origin", "GET", stream + url.QueryEscape(token), map[string]string{"Origin": "https://evil.example"}, "", 403},
		{"stream with a malformed cursor", "GET", stream + url.QueryEscape(token) + "&since=x", nil, "", 400},
		{"stream with an unknown cursor", "GET", stream + url.QueryEscape(token) + "&since=999999999", nil, "", 400},
		{"send with an expired token", "POST", e.stack.URL + "/v1/web/messages", map[string]string{"Origin": site, "Authorization": "Bearer " + expired}, `{"text":"x"}`, 401},
		{"send without a token", "POST", e.stack.URL + "/v1/web/messages", map[string]string{"Origin": site}, `{"text":"x"}`, 401},
		{"session without an origin", "POST", e.stack.URL + "/v1/web/session", nil, "{}", 403},
		{"session from a disallowed origin", "POST", e.stack.URL + "/v1/web/session", map[string]string{"Origin": "https://evil.example"}, "{}", 403},
		{"preflight from a disallowed origin", "OPTIONS", e.stack.URL + "/v1/web/messages", map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, "", 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, c.method, c.url, c.headers, c.body)
			if r.status != c.status || r.errorCode() == "" {
				t.Fatalf("got %d %s, want %d", r.status, r.raw, c.status)
			}
		})
	}
	// A preflight from the allowed origin, as a browser sends it.
	req, _ := http.NewRequest(http.MethodOptions, e.stack.URL+"/v1/web/messages", nil)
	req.Header.Set("Origin", site)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
	resp, err := apiClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != site || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "authorization") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	// The script and the demo page are served by the stack.
	for path, ct := range map[string]string{"/widget.js": "text/javascript", "/widget/demo": "text/html"} {
		resp, err := apiClient(t).Get(e.stack.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, resp.Header)
		}
	}
}
