package widget

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/verify"
)

func TestMain(m *testing.M) { os.Exit(emulatortest.Run(m)) }

const (
	site    = "https://shop.example.com"
	signKey = "test-widget-signing-key-0123"
)

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func testCfg() Config {
	o, _ := ParseOrigins([]string{site, "http://127.0.0.1:3000"})
	return Config{Workspace: "default", Origins: o, Keys: verify.NewSecrets(signKey), SessionTTL: time.Hour}
}

func TestTokens(t *testing.T) {
	keys := verify.NewSecrets(signKey)
	s := Session{Workspace: "default", ID: "wss_1", Origin: site, Expires: t0.Add(time.Hour)}
	tok := Sign(keys, s)
	if !strings.HasPrefix(tok, "hgw1.") || strings.Count(tok, ".") != 2 || len(tok) > maxTokenBytes {
		t.Fatalf("token %q", tok)
	}
	got, err := Verify(keys, tok, t0)
	if err != nil || got != s {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	if got.ThreadID() != ids.Derive("thr", "default", "web", "wss_1") {
		t.Fatalf("thread %s", got.ThreadID())
	}
	// During a key rotation the new key signs and both verify.
	rotated := verify.NewSecrets("a-new-signing-key-456789", signKey)
	if _, err := Verify(rotated, tok, t0); err != nil {
		t.Fatalf("old token under rotated keys: %v", err)
	}
	if _, err := Verify(keys, Sign(rotated, s), t0); err == nil {
		t.Fatal("a token of the new key verified under the old key alone")
	}
	signed, sig, _ := strings.Cut(strings.TrimPrefix(tok, "hgw1."), ".")
	forged, _ := json.Marshal(payload{W: "default", S: "wss_2", O: site, E: t0.Add(time.Hour).Unix()})
	bad := map[string]string{
		"expired":         tok, // checked at the expiry instant below
		"wrong key":       Sign(verify.NewSecrets("another-key-0123456789"), s),
		"forged payload":  "hgw1." + encodeRaw(forged) + "." + sig,
		"truncated sig":   tok[:len(tok)-2],
		"no signature":    "hgw1." + signed,
		"empty":           "",
		"other version":   "hgw2." + signed + "." + sig,
		"not base64":      "hgw1.%%%." + sig,
		"huge":            "hgw1." + strings.Repeat("a", 2000) + "." + sig,
		"payload not obj": signAs(keys, []byte(`[1]`)),
		"no origin":       signAs(keys, []byte(`{"w":"default","s":"wss_1","e":1900000000}`)),
	}
	for name, tok := range bad {
		now := t0
		if name == "expired" {
			now = s.Expires
		}
		_, err := Verify(keys, tok, now)
		if apierr.CodeOf(err) != apierr.Unauthorized {
			t.Errorf("%s: %v, want Unauthorized", name, err)
		}
		if name == "expired" && !strings.Contains(apierr.MessageOf(err), "expired") {
			t.Errorf("expired: message %q", apierr.MessageOf(err))
		}
	}
}

func encodeRaw(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func signAs(keys *verify.Secrets, raw []byte) string {
	signed := tokenPrefix + encodeRaw(raw)
	return signed + "." + strings.TrimPrefix(keys.SignHMAC([]byte(signed)), "sha256=")
}

func TestParseOrigins(t *testing.T) {
	o, err := ParseOrigins([]string{" https://Shop.Example.com ", "http://127.0.0.1:3000", "https://a.example/", ""})
	if err != nil || !slices.Equal(o, Origins{"https://shop.example.com", "http://127.0.0.1:3000", "https://a.example"}) {
		t.Fatalf("ParseOrigins = %v, %v", o, err)
	}
	if !o.Allowed("https://shop.example.com") || !o.Allowed("HTTPS://SHOP.EXAMPLE.COM") || o.Allowed("https://shop.example.com:444") ||
		o.Allowed("http://shop.example.com") || o.Allowed("https://evil.example.com") || o.Allowed("") || o.Allowed("null") {
		t.Fatal("Allowed answers wrong")
	}
	_, err = ParseOrigins([]string{"*", "https://*.example.com", "ftp://x", "https://x/path", "example.com", "https://u:p@x"})
	if err == nil {
		t.Fatal("bad origins accepted")
	}
	for _, s := range []string{`"*"`, `"ftp://x"`, `"https://x/path"`, `"example.com"`, `"https://u:p@x"`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
}

type fakeQueue struct {
	mu   sync.Mutex
	msgs []queue.Inbound
	err  error
}

func (q *fakeQueue) SendInbound(_ context.Context, m *queue.Inbound) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.msgs = append(q.msgs, *m)
	return nil
}

type reply struct {
	status  int
	headers map[string]string
	body    map[string]any
}

func (r reply) code() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func invoke(t *testing.T, fn func(context.Context, []byte) ([]byte, error), route string, headers map[string]string, query map[string]string, body string) reply {
	t.Helper()
	method, path, _ := strings.Cut(route, " ")
	req := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: route, RawPath: path, Headers: headers, QueryStringParameters: query, Body: body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path}}}
	payload, _ := json.Marshal(req)
	out, err := fn(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, headers: resp.Headers}
	if resp.Body != "" && resp.Headers["content-type"] == "application/json" {
		if err := json.Unmarshal([]byte(resp.Body), &r.body); err != nil {
			t.Fatalf("body %q", resp.Body)
		}
	}
	return r
}

func newHandler(q *fakeQueue, now func() time.Time) func(context.Context, []byte) ([]byte, error) {
	return lambda.NewHandler(New(testCfg(), q, slog.New(slog.NewJSONHandler(io.Discard, nil)), now).Handle).Invoke
}

func TestSessionsAndPreflight(t *testing.T) {
	clock := t0
	h := newHandler(&fakeQueue{}, func() time.Time { return clock })
	// Preflight from an allowed origin: 204 with that origin only; from another: 403.
	r := invoke(t, h, "OPTIONS /v1/web/{proxy+}", map[string]string{"origin": site, "access-control-request-method": "POST"}, nil, "")
	if r.status != 204 || r.headers["access-control-allow-origin"] != site || !strings.Contains(r.headers["access-control-allow-headers"], "authorization") ||
		!strings.Contains(r.headers["access-control-allow-methods"], "POST") || r.headers["vary"] != "Origin" {
		t.Fatalf("preflight: %d %v", r.status, r.headers)
	}
	for _, origin := range []string{"https://evil.example.com", "null", ""} {
		r = invoke(t, h, "OPTIONS /v1/web/{proxy+}", map[string]string{"origin": origin}, nil, "")
		if r.status != 403 || r.code() != "forbidden" || r.headers["access-control-allow-origin"] != "" {
			t.Fatalf("preflight from %q: %d %v %v", origin, r.status, r.headers, r.body)
		}
	}
	// A session from an allowed origin.
	r = invoke(t, h, "POST /v1/web/session", map[string]string{"origin": site}, nil, "")
	if r.status != 201 || r.headers["access-control-allow-origin"] != site || r.headers["cache-control"] != "no-store" {
		t.Fatalf("session: %d %v %v", r.status, r.headers, r.body)
	}
	tok, sid := r.body["token"].(string), r.body["session_id"].(string)
	s, err := Verify(verify.NewSecrets(signKey), tok, clock)
	if err != nil || s.ID != sid || !ids.Valid("wss", sid) || s.Origin != site || !s.Expires.Equal(clock.Add(time.Hour)) ||
		r.body["thread_id"] != ids.Derive("thr", "default", "web", sid) || r.body["expires_in"] != float64(3600) {
		t.Fatalf("session %v: %+v %v", r.body, s, err)
	}
	other := invoke(t, h, "POST /v1/web/session", map[string]string{"origin": site}, nil, "")
	if other.body["session_id"] == sid || other.body["thread_id"] == r.body["thread_id"] {
		t.Fatal("two sessions share a thread")
	}
	// Renewal keeps the session, with a later expiry.
	clock = clock.Add(40 * time.Minute)
	rn := invoke(t, h, "POST /v1/web/session", map[string]string{"origin": site, "authorization": "Bearer " + tok}, nil, "")
	if rn.status != 200 || rn.body["session_id"] != sid || rn.body["token"] == tok {
		t.Fatalf("renewal: %d %v", rn.status, rn.body)
	}
	if s2, _ := Verify(verify.NewSecrets(signKey), rn.body["token"].(string), clock); !s2.Expires.Equal(clock.Add(time.Hour)) {
		t.Fatalf("renewed expiry %v", s2.Expires)
	}
	refused := []struct {
		name    string
		headers map[string]string
		status  int
	}{
		{"no origin", nil, 403},
		{"disallowed origin", map[string]string{"origin": "https://evil.example.com"}, 403},
		{"renewal from another allowed origin", map[string]string{"origin": "http://127.0.0.1:3000", "authorization": "Bearer " + tok}, 403},
		{"renewal with a bad token", map[string]string{"origin": site, "authorization": "Bearer hgw1.x.y"}, 401},
	}
	for _, c := range refused {
		r := invoke(t, h, "POST /v1/web/session", c.headers, nil, "")
		if r.status != c.status {
			t.Errorf("%s: %d %v", c.name, r.status, r.body)
		}
	}
	clock = clock.Add(2 * time.Hour)
	if r := invoke(t, h, "POST /v1/web/session", map[string]string{"origin": site, "authorization": "Bearer " + tok}, nil, ""); r.status != 401 || !strings.Contains(r.body["error"].(map[string]any)["message"].(string), "expired") {
		t.Errorf("renewal with an expired token: %d %v", r.status, r.body)
	}
	if r := invoke(t, h, "GET /v1/web/nothing", nil, nil, ""); r.status != 404 {
		t.Errorf("unknown route: %d", r.status)
	}
}

func TestMessagesAreQueuedOnTheSessionsThread(t *testing.T) {
	q := &fakeQueue{}
	clock := t0
	h := newHandler(q, func() time.Time { return clock })
	s := Session{Workspace: "default", ID: ids.New("wss", t0), Origin: site, Expires: t0.Add(time.Hour)}
	tok := Sign(verify.NewSecrets(signKey), s)
	auth := map[string]string{"origin": site, "authorization": "Bearer " + tok, "content-type": "application/json"}
	r := invoke(t, h, "POST /v1/web/messages", auth, nil, `{"text":"  hello there \n second line ","client_id":"c1"}`)
	if r.status != 202 || r.headers["access-control-allow-origin"] != site {
		t.Fatalf("send: %d %v %v", r.status, r.headers, r.body)
	}
	if len(q.msgs) != 1 {
		t.Fatalf("%d messages queued", len(q.msgs))
	}
	m := q.msgs[0]
	want := queue.Inbound{Version: queue.InboundVersion, WorkspaceID: "default", ThreadID: s.ThreadID(), MessageID: m.MessageID, RunID: m.RunID,
		Source: "web", Channel: "web", ExternalID: s.ID, Text: "hello there \n second line", ReceivedAt: t0}
	if !m.ReceivedAt.Equal(t0) || m.Text != want.Text || m.ThreadID != want.ThreadID || m.Channel != "web" || m.Source != "web" || m.ExternalID != s.ID ||
		m.WorkspaceID != "default" || m.Version != queue.InboundVersion || !ids.Valid("msg", m.MessageID) || !ids.Valid("run", m.RunID) {
		t.Fatalf("queued %+v, want %+v", m, want)
	}
	if r.body["thread_id"] != s.ThreadID() || r.body["message_id"] != m.MessageID || r.body["run_id"] != m.RunID {
		t.Fatalf("reply %v", r.body)
	}
	// The same client_id is the same message (a retried send); without one, a new message.
	again := invoke(t, h, "POST /v1/web/messages", auth, nil, `{"text":"hello there","client_id":"c1"}`)
	fresh := invoke(t, h, "POST /v1/web/messages", map[string]string{"authorization": "Bearer " + tok}, nil, `{"text":"no origin: a server"}`)
	if again.body["message_id"] != m.MessageID || again.body["run_id"] != m.RunID || fresh.status != 202 || fresh.body["message_id"] == m.MessageID {
		t.Fatalf("again %v, fresh %v", again.body, fresh.body)
	}
	expired := Sign(verify.NewSecrets(signKey), Session{Workspace: "default", ID: "wss_x", Origin: site, Expires: t0})
	otherWS := Sign(verify.NewSecrets(signKey), Session{Workspace: "other", ID: "wss_x", Origin: site, Expires: t0.Add(time.Hour)})
	cases := []struct {
		name    string
		headers map[string]string
		body    string
		status  int
		code    string
	}{
		{"no token", map[string]string{"origin": site}, `{"text":"x"}`, 401, "unauthorized"},
		{"bad token", map[string]string{"origin": site, "authorization": "Bearer " + tok + "x"}, `{"text":"x"}`, 401, "unauthorized"},
		{"expired token", map[string]string{"origin": site, "authorization": "Bearer " + expired}, `{"text":"x"}`, 401, "unauthorized"},
		{"token of another workspace", map[string]string{"origin": site, "authorization": "Bearer " + otherWS}, `{"text":"x"}`, 401, "unauthorized"},
		{"disallowed origin", map[string]string{"origin": "https://evil.example.com", "authorization": "Bearer " + tok}, `{"text":"x"}`, 403, "forbidden"},
		{"another allowed origin", map[string]string{"origin": "http://127.0.0.1:3000", "authorization": "Bearer " + tok}, `{"text":"x"}`, 403, "forbidden"},
		{"blank text", auth, `{"text":"   "}`, 400, "invalid_request"},
		{"not json", auth, `text=hi`, 400, "invalid_request"},
		{"control characters", auth, `{"text":"a\u0007b"}`, 400, "invalid_request"},
		{"long text", auth, `{"text":"` + strings.Repeat("a", MaxTextBytes+1) + `"}`, 413, "payload_too_large"},
		{"huge body", auth, `{"text":"` + strings.Repeat("a", 20000) + `"}`, 413, "payload_too_large"},
		{"long client id", auth, `{"text":"x","client_id":"` + strings.Repeat("c", 65) + `"}`, 400, "invalid_request"},
	}
	for _, c := range cases {
		r := invoke(t, h, "POST /v1/web/messages", c.headers, nil, c.body)
		if r.status != c.status || r.code() != c.code {
			t.Errorf("%s: %d %v, want %d %s", c.name, r.status, r.body, c.status, c.code)
		}
		if c.status == 401 && c.headers["origin"] == site && r.headers["access-control-allow-origin"] != site {
			t.Errorf("%s: the widget cannot read the error: %v", c.name, r.headers)
		}
	}
	if len(q.msgs) != 3 {
		t.Fatalf("%d messages queued, want 3", len(q.msgs))
	}
	q.err = errors.New("sqs down at https://sqs.internal")
	if r := invoke(t, h, "POST /v1/web/messages", auth, nil, `{"text":"x"}`); r.status != 503 || strings.Contains(r.body["error"].(map[string]any)["message"].(string), "internal") {
		t.Fatalf("queue down: %d %v", r.status, r.body)
	}
}

func TestRouteKeys(t *testing.T) {
	h := New(testCfg(), &fakeQueue{}, slog.New(slog.DiscardHandler), time.Now)
	want := []string{"OPTIONS /v1/web/{proxy+}", "POST /v1/web/messages", "POST /v1/web/session"}
	if got := h.RouteKeys(); !slices.Equal(got, want) {
		t.Fatalf("RouteKeys = %v", got)
	}
}
