package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

var (
	testSecret  = "whsec_" + base64.StdEncoding.EncodeToString([]byte("hookgate-agent-test-key-32-bytes"))
	otherSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("another-agent-test-key-32-bytes!"))
	testSession = Session{ID: "thr_1", WorkspaceID: "ws_1", Channel: "telegram", ExternalID: "42", User: "ada"}
	fixedNow    = time.Unix(1_750_000_000, 0)
)

// captured is one request a test server received.
type captured struct {
	path   string
	header http.Header
	body   []byte
}

// server answers every request with status and body, recording what it received.
func server(t *testing.T, status int, body string) (*httptest.Server, chan captured) {
	t.Helper()
	got := make(chan captured, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- captured{r.URL.RequestURI(), r.Header.Clone(), b}
		if body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func newTestWebhook(t *testing.T, url string, timeout time.Duration) *Webhook {
	t.Helper()
	w, err := NewWebhook(WebhookConfig{URL: url, Secret: testSecret, Timeout: timeout, Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func speakReq(text string) Request {
	return Request{Kind: KindUserSpeak, RunID: "run_1", Session: testSession, Text: text}
}

// Each kind of request has its documented body, signed so the Standard Webhooks library accepts it.
func TestWebhookBodiesAndSignature(t *testing.T) {
	session := `{"id":"thr_1","workspace_id":"ws_1","channel":"telegram","external_id":"42","user":"ada"}`
	cases := []struct {
		name string
		req  Request
		body string
		id   string
	}{
		{"session start", Request{Kind: KindSessionStart, RunID: "run_1", Session: testSession, Text: "ignored"},
			`{"type":"session_start","session":` + session + `,"run_id":"run_1"}`, "msg_run_1_session_start"},
		{"user speak", Request{Kind: KindUserSpeak, RunID: "run_1", Session: testSession, Text: "hi \"there\"",
			History: []Turn{{"user", "earlier"}}},
			`{"type":"user_speak","text":"hi \"there\"","session":` + session + `,"run_id":"run_1"}`, "msg_run_1_user_speak"},
		{"user speak with data", Request{Kind: KindUserSpeak, RunID: "run_1", Session: testSession, Text: "",
			Data: json.RawMessage(`{ "amount": 12 }`)},
			`{"type":"user_speak","text":"","data":{"amount":12},"session":` + session + `,"run_id":"run_1"}`, "msg_run_1_user_speak"},
		{"approval", Request{Kind: KindApproval, RunID: "run_2", Session: Session{ID: "thr_2", WorkspaceID: "ws_1", Channel: "slack", ExternalID: "C1"},
			Decision: &Decision{Approved: true, Option: "refund", Approver: "grace", Comment: "ok"}},
			`{"type":"approval_result","run_id":"run_2","session":{"id":"thr_2","workspace_id":"ws_1","channel":"slack","external_id":"C1"},` +
				`"decision":{"approved":true,"option":"refund","approver":"grace","comment":"ok"}}`, "msg_run_2_approval_result"},
		{"denial", Request{Kind: KindApproval, RunID: "run_3", Session: testSession, Decision: &Decision{}},
			`{"type":"approval_result","run_id":"run_3","session":` + session + `,"decision":{"approved":false}}`, "msg_run_3_approval_result"},
	}
	verifier, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	impostor, err := standardwebhooks.NewWebhook(otherSecret)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, got := server(t, http.StatusNoContent, "")
			if _, err := newTestWebhook(t, srv.URL+"/agent", 0).Respond(context.Background(), c.req); err != nil {
				t.Fatal(err)
			}
			r := <-got
			if string(r.body) != c.body {
				t.Errorf("body\n%s\nwant\n%s", r.body, c.body)
			}
			h := r.header
			if h.Get("Content-Type") != "application/json" || h.Get("User-Agent") != "Hookgate/0.1" || r.path != "/agent" {
				t.Errorf("path %s, headers %v", r.path, h)
			}
			if id := h.Get("webhook-id"); id != c.id || strings.Contains(id, ".") {
				t.Errorf("webhook-id %q, want %q", id, c.id)
			}
			if ts := h.Get("webhook-timestamp"); ts != strconv.FormatInt(fixedNow.Unix(), 10) {
				t.Errorf("webhook-timestamp %q", ts)
			}
			if err := verifier.VerifyIgnoringTimestamp(r.body, h); err != nil {
				t.Errorf("the Standard Webhooks library rejects the signature: %v", err)
			}
			if err := impostor.VerifyIgnoringTimestamp(r.body, h); err == nil {
				t.Error("another secret's verifier accepts the signature")
			}
			if err := verifier.VerifyIgnoringTimestamp(append(r.body, ' '), h); err == nil {
				t.Error("a changed body verifies")
			}
		})
	}
}

// With the real clock the library's timestamp tolerance is met too.
func TestWebhookSignatureCurrentTime(t *testing.T) {
	srv, got := server(t, http.StatusNoContent, "")
	w, err := NewWebhook(WebhookConfig{URL: srv.URL, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Respond(context.Background(), speakReq("hi")); err != nil {
		t.Fatal(err)
	}
	r := <-got
	verifier, _ := standardwebhooks.NewWebhook(testSecret)
	if err := verifier.Verify(r.body, r.header); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestMessageID(t *testing.T) {
	if a, b := messageID("run_1", KindUserSpeak), messageID("run_1", KindUserSpeak); a != b {
		t.Errorf("a retry changes the id: %q, %q", a, b)
	}
	seen := map[string]bool{}
	for _, run := range []string{"run_1", "run_2", "run.1", "run/1", strings.Repeat("r", 300)} {
		for _, kind := range []string{KindSessionStart, KindUserSpeak, KindApproval} {
			id := messageID(run, kind)
			if seen[id] || strings.ContainsAny(id, ". \n") || !strings.HasPrefix(id, "msg_") || len(id) > 140 {
				t.Errorf("messageID(%q, %q) = %q: duplicate or malformed", run, kind, id)
			}
			seen[id] = true
		}
	}
}

func TestWebhookReplies(t *testing.T) {
	speak := func(s string) Action { return Action{Type: ActionSpeak, Text: s} }
	cases := []struct {
		name   string
		status int
		body   string
		want   []Action
		errHas string // "" means success
	}{
		{"no content", 204, "", nil, ""},
		{"empty 200", 200, "", nil, ""},
		{"empty 202", 202, " \n", nil, ""},
		{"single action", 200, `{"type":"speak","text":"hi"}`, []Action{speak("hi")}, ""},
		{"array", 200, `[{"type":"speak","text":"a"},{"type":"request_approval","prompt":"refund?","options":["yes","no"]}]`,
			[]Action{speak("a"), {Type: ActionRequestApproval, Prompt: "refund?", Options: []string{"yes", "no"}}}, ""},
		{"actions object", 200, `{"actions":[{"type":"speak","text":"a"},{"type":"speak","text":"b"}]}`, []Action{speak("a"), speak("b")}, ""},
		{"unknown type skipped", 200, `[{"type":"dance","steps":3},{"type":"speak","text":"a"}]`, []Action{speak("a")}, ""},
		{"extra fields ignored", 200, `{"type":"speak","text":"a","prompt":"x","voice":"calm"}`, []Action{speak("a")}, ""},
		{"invalid json", 200, `{"type":"speak",`, nil, "not valid JSON"},
		{"html", 200, `<html>hi</html>`, nil, "not valid JSON"},
		{"string", 200, `"hi"`, nil, "neither an action"},
		{"speak without text", 200, `{"type":"speak"}`, nil, "speak without text"},
		{"speak blank text", 200, `{"type":"speak","text":"  "}`, nil, "speak without text"},
		{"approval without prompt", 200, `[{"type":"speak","text":"a"},{"type":"request_approval"}]`, nil, "action 2: request_approval without prompt"},
		{"approval naming approvers", 200, `{"type":"request_approval","prompt":"refund?","approvers":["boss","cfo"]}`,
			[]Action{{Type: ActionRequestApproval, Prompt: "refund?", Approvers: []string{"boss", "cfo"}}}, ""},
		{"approval with a blank approver", 200, `{"type":"request_approval","prompt":"refund?","approvers":["boss"," "]}`, nil, "approver is empty"},
		{"approval with too many approvers", 200, `{"type":"request_approval","prompt":"refund?","approvers":["a","b","c","d","e","f","g","h","i","j","k"]}`, nil, "11 approvers, more than 10"},
		{"no type", 200, `[{"text":"a"}]`, nil, `no "type"`},
		{"neither", 200, `{"text":"a"}`, nil, `neither "type" nor "actions"`},
		{"text wrong type", 200, `{"type":"speak","text":5}`, nil, "wrong type"},
		{"too many", 200, "[" + strings.Repeat(`{"type":"dance"},`, 20) + `{"type":"speak","text":"a"}]`, nil, "21 actions, more than 20"},
		{"text too long", 200, `{"type":"speak","text":"` + strings.Repeat("a", 32<<10+1) + `"}`, nil, "longer than 32 KiB"},
		{"oversized body", 200, `{"type":"speak","text":"a","pad":"` + strings.Repeat("x", 256<<10) + `"}`, nil, "exceeds 256 KiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, _ := server(t, c.status, c.body)
			got, err := newTestWebhook(t, srv.URL, 0).Respond(context.Background(), speakReq("hi"))
			if c.errHas == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got.Actions, c.want) {
					t.Fatalf("actions %+v, want %+v", got.Actions, c.want)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) || ae.Retryable || !strings.Contains(ae.Reason, c.errHas) {
				t.Fatalf("error %#v, want a permanent *Error containing %q", err, c.errHas)
			}
			if len(ae.Reason) > 300 {
				t.Errorf("reason is %d bytes long", len(ae.Reason))
			}
		})
	}
}

func TestWebhookStatus(t *testing.T) {
	cases := []struct {
		status    int
		retryable bool
		reason    string
	}{
		{500, true, "agent answered 500"},
		{503, true, "agent answered 503"},
		{429, true, "agent answered 429"},
		{408, true, "agent answered 408"},
		{400, false, "agent answered 400"},
		{404, false, "agent answered 404"},
		{301, false, "agent answered 301 (redirects are not followed)"},
		{307, false, "agent answered 307 (redirects are not followed)"},
	}
	for _, c := range cases {
		t.Run(strconv.Itoa(c.status), func(t *testing.T) {
			var followed atomic.Int32
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				followed.Add(1)
				io.WriteString(w, `{"type":"speak","text":"redirected"}`)
			}))
			defer target.Close()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Location", target.URL)
				w.WriteHeader(c.status)
			}))
			defer srv.Close()
			// Also through a caller's client that would follow redirects.
			for _, client := range []*http.Client{nil, srv.Client()} {
				w, err := NewWebhook(WebhookConfig{URL: srv.URL, Secret: testSecret, Client: client})
				if err != nil {
					t.Fatal(err)
				}
				_, err = w.Respond(context.Background(), speakReq("hi"))
				var ae *Error
				if !errors.As(err, &ae) || ae.Retryable != c.retryable || ae.Reason != c.reason {
					t.Errorf("client %v: error %#v, want retryable %t reason %q", client, err, c.retryable, c.reason)
				}
				if Retryable(err) != c.retryable {
					t.Errorf("Retryable(%v) = %t", err, !c.retryable)
				}
			}
			if n := followed.Load(); n != 0 {
				t.Errorf("a redirect was followed %d times", n)
			}
		})
	}
}

// An error body is quoted, shortened, on one line, without the secret or the URL's token.
func TestWebhookReasonSafe(t *testing.T) {
	const token = "tok-5up3r-s3cr3t"
	sec := strings.TrimPrefix(testSecret, "whsec_")
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "bad request to %s with %s and %s\n%s", r.URL.RequestURI(), testSecret, sec, strings.Repeat("z", 1000))
	}))
	defer echo.Close()
	slow := httptest.NewServer(stall())
	defer slow.Close()
	refused := closedAddr(t)

	for _, base := range []string{echo.URL, slow.URL, "http://" + refused} {
		w := newTestWebhook(t, base+"/hook?token="+token, 100*time.Millisecond)
		_, err := w.Respond(context.Background(), speakReq("hi"))
		if err == nil {
			t.Fatalf("%s: no error", base)
		}
		msg := err.Error()
		for _, s := range []string{token, testSecret, sec, "token="} {
			if strings.Contains(msg, s) {
				t.Errorf("reason %q quotes %q", msg, s)
			}
		}
		if len([]rune(msg)) > 260 || strings.ContainsAny(msg, "\n\r") {
			t.Errorf("reason %q is too long or has several lines", msg)
		}
		if base == echo.URL && !strings.HasPrefix(msg, "agent answered 400: bad request to /hook?[redacted] with [redacted] and [redacted] zzz") {
			t.Errorf("reason %q", msg)
		}
		if got := fmt.Sprintf("%v %+v %#v", w, w, w); strings.Contains(got, token) || strings.Contains(got, sec) {
			t.Errorf("printing the agent leaks: %s", got)
		}
	}
}

func TestWebhookTimeout(t *testing.T) {
	srv := httptest.NewServer(stall())
	defer srv.Close()
	for _, client := range []*http.Client{nil, {}} {
		start := time.Now()
		_, err := newTestWebhookClient(t, srv.URL, 100*time.Millisecond, client).Respond(context.Background(), speakReq("hi"))
		var ae *Error
		if !errors.As(err, &ae) || !ae.Retryable || ae.Reason != "agent timed out after 100ms" {
			t.Errorf("error %#v, want a retryable timeout", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("took %s", d)
		}
	}
}

func newTestWebhookClient(t *testing.T, url string, timeout time.Duration, c *http.Client) *Webhook {
	t.Helper()
	w, err := NewWebhook(WebhookConfig{URL: url, Secret: testSecret, Timeout: timeout, Client: c})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// The caller's context ending stops the call; the run is retried later.
func TestWebhookCallerContext(t *testing.T) {
	srv := httptest.NewServer(stall())
	defer srv.Close()
	w := newTestWebhook(t, srv.URL, 5*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := w.Respond(ctx, speakReq("hi"))
	if !Retryable(err) || !strings.Contains(err.Error(), "caller's deadline") {
		t.Errorf("deadline: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = w.Respond(ctx, speakReq("hi"))
	if !Retryable(err) || err.Error() != "agent call canceled" {
		t.Errorf("canceled: %v", err)
	}
}

// stall answers after 2s, or never when the client goes away first. It reads the body first: only
// then does the server notice a closed connection.
func stall() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	})
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestWebhookRefused(t *testing.T) {
	addr := closedAddr(t)
	_, err := newTestWebhook(t, "http://"+addr+"/hook", time.Second).Respond(context.Background(), speakReq("hi"))
	var ae *Error
	if !errors.As(err, &ae) || !ae.Retryable || ae.Reason != "agent unreachable: connection refused" || ae.Host != addr {
		t.Fatalf("error %#v", err)
	}
}

func TestWebhookBadRequests(t *testing.T) {
	srv, got := server(t, 204, "")
	w := newTestWebhook(t, srv.URL, 0)
	cases := map[string]Request{
		"no run id":        {Kind: KindUserSpeak, Text: "hi"},
		"unknown kind":     {Kind: "dance", RunID: "run_1"},
		"no decision":      {Kind: KindApproval, RunID: "run_1"},
		"invalid raw data": {Kind: KindUserSpeak, RunID: "run_1", Data: json.RawMessage(`{"a":`)},
	}
	for name, req := range cases {
		_, err := w.Respond(context.Background(), req)
		var ae *Error
		if !errors.As(err, &ae) || ae.Retryable {
			t.Errorf("%s: error %#v, want permanent", name, err)
		}
	}
	if len(got) != 0 {
		t.Errorf("%d requests sent", len(got))
	}
}

func TestNewWebhookInvalid(t *testing.T) {
	const badSecret = "whsec_not*base64*at*all*really*secret"
	cases := []struct {
		name string
		cfg  WebhookConfig
		has  string
	}{
		{"no url", WebhookConfig{Secret: testSecret}, "url must be an absolute http or https URL"},
		{"relative url", WebhookConfig{URL: "/hook", Secret: testSecret}, "url must be"},
		{"ftp url", WebhookConfig{URL: "ftp://example.com/x?token=abcdef123", Secret: testSecret}, "url must be"},
		{"no secret", WebhookConfig{URL: "https://example.com"}, "secret must be whsec_"},
		{"not whsec", WebhookConfig{URL: "https://example.com", Secret: "plain-secret-value-123"}, "secret must be whsec_"},
		{"bad base64", WebhookConfig{URL: "https://example.com", Secret: badSecret}, "secret must be whsec_"},
		{"short key", WebhookConfig{URL: "https://example.com", Secret: "whsec_" + base64.StdEncoding.EncodeToString([]byte("short"))}, "secret must be whsec_"},
	}
	for _, c := range cases {
		_, err := NewWebhook(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.has) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.has)
			continue
		}
		for _, s := range []string{c.cfg.Secret, "abcdef123"} {
			if s != "" && strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q quotes %q", c.name, err, s)
			}
		}
	}
}

// One agent serves concurrent runs.
func TestWebhookConcurrent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Text string }
		json.NewDecoder(r.Body).Decode(&in)
		json.NewEncoder(w).Encode(Action{Type: ActionSpeak, Text: "echo " + in.Text})
	}))
	defer srv.Close()
	w := newTestWebhook(t, srv.URL, 0)
	errs := make(chan error, 20)
	for i := range 20 {
		go func() {
			text := strconv.Itoa(i)
			r, err := w.Respond(context.Background(), Request{Kind: KindUserSpeak, RunID: "run_" + text, Text: text})
			if err == nil && r.Text() != "echo "+text {
				err = fmt.Errorf("reply %q to %q", r.Text(), text)
			}
			errs <- err
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// Every agent call carries the hop marker, and a failure's reason (which run.failed shows every
// subscriber) names no host, not even when the agent's error page does; Host has it for the log.
func TestWebhookHopMarkerAndHostlessReasons(t *testing.T) {
	hop := make(chan string, 1)
	var srvHost string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hop <- r.Header.Get("Hookgate-Hop")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(w, `{"error":{"message":"upstream of %s (http://%s/hook) failed"}}`, r.Host, srvHost)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	srvHost = u.Hostname()
	_, err := newTestWebhook(t, srv.URL+"/hook", time.Second).Respond(context.Background(), speakReq("hi"))
	if got := <-hop; got != "1" {
		t.Fatalf("Hookgate-Hop = %q", got)
	}
	var ae *Error
	if !errors.As(err, &ae) || !strings.HasPrefix(ae.Reason, "agent answered 502") || ae.Host != u.Host {
		t.Fatalf("error %#v", err)
	}
	if strings.Contains(ae.Reason, u.Hostname()) {
		t.Fatalf("reason %q names the agent's host", ae.Reason)
	}
}
