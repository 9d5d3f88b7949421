package manage

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/store"
)

func TestMain(m *testing.M) { os.Exit(emulatortest.Run(m)) }

const adminKey = "admin-key-for-tests-0123456789"

// clock is a settable test clock shared by the handler and the store.
type clock struct{ t atomic.Pointer[time.Time] }

func (c *clock) set(t time.Time) { c.t.Store(&t) }
func (c *clock) now() time.Time  { return *c.t.Load() }
func (c *clock) add(d time.Duration) time.Time {
	t := c.now().Add(d)
	c.set(t)
	return t
}

// syncBuffer collects the handler's logs, to check that no key or secret reaches them.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one handler on its own table on DynamoDB Local.
type env struct {
	t       *testing.T
	st      *store.Store
	clk     *clock
	invoke  func(ctx context.Context, payload []byte) ([]byte, error)
	logs    *syncBuffer
	secrets []string // every key and secret seen; none may appear in the logs
}

func newEnv(t *testing.T, allowHTTP bool) *env {
	t.Helper()
	db, table := emulatortest.Table(t, "manage")
	e := &env{t: t, clk: &clock{}, logs: &syncBuffer{}, secrets: []string{adminKey}}
	e.clk.set(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	e.st = store.New(db, table, e.clk.now)
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := New(Config{DefaultWorkspace: "default", AdminKey: adminKey, AllowHTTPURLs: allowHTTP}, e.st, e.clk.now, log)
	e.invoke = lambda.NewHandler(h.Handle).Invoke
	t.Cleanup(func() {
		logs := e.logs.String()
		for _, s := range e.secrets {
			if strings.Contains(logs, s) {
				t.Errorf("the logs hold a key or secret (%.8s…)", s)
			}
		}
	})
	return e
}

// key makes a stored API key for ws.
func (e *env) key(ws string) string {
	e.t.Helper()
	_, plain, err := e.st.CreateAPIKey(context.Background(), ws, "test")
	if err != nil {
		e.t.Fatal(err)
	}
	e.secrets = append(e.secrets, plain)
	return plain
}

type call struct {
	route  string            // "POST /v1/webhooks/{id}"
	params map[string]string // path parameters
	query  map[string]string
	key    string // sent as X-API-Key; "" for none
	auth   string // sent as Authorization, instead
	body   any    // string (raw) or a value to encode; nil for none
	base64 bool   // send the body base64-encoded, as API Gateway does for a binary content type
}

type response struct {
	status  int
	headers map[string]string
	body    string
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("response %d %s: %v", r.status, r.body, err)
	}
}

func (r response) errorCode(t *testing.T) (string, string) {
	t.Helper()
	var b struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	r.decode(t, &b)
	return b.Error.Code, b.Error.Message
}

// do builds an API Gateway v2 event from testdata/request.json and pushes it through the real
// Lambda decoder and encoder.
func (e *env) do(c call) response {
	e.t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "request.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		e.t.Fatal(err)
	}
	method, path, _ := strings.Cut(c.route, " ")
	for k, v := range c.params {
		path = strings.ReplaceAll(path, "{"+k+"}", url.PathEscape(v))
	}
	q := url.Values{}
	for k, v := range c.query {
		q.Set(k, v)
	}
	ev["routeKey"], ev["rawPath"], ev["rawQueryString"] = c.route, path, q.Encode()
	rc := ev["requestContext"].(map[string]any)
	rc["routeKey"] = c.route
	rc["http"].(map[string]any)["method"], rc["http"].(map[string]any)["path"] = method, path
	headers := ev["headers"].(map[string]any)
	delete(headers, "x-api-key")
	if c.key != "" {
		headers["x-api-key"] = c.key
	}
	if c.auth != "" {
		headers["authorization"] = c.auth
	}
	if len(c.params) > 0 {
		ev["pathParameters"] = c.params
	}
	if len(c.query) > 0 {
		ev["queryStringParameters"] = c.query
	}
	switch b := c.body.(type) {
	case nil:
		delete(ev, "body")
	case string:
		ev["body"] = b
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		ev["body"] = string(enc)
	}
	if b, ok := ev["body"].(string); ok && c.base64 {
		ev["body"], ev["isBase64Encoded"] = base64.StdEncoding.EncodeToString([]byte(b)), true
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := e.invoke(context.Background(), payload)
	if err != nil {
		e.t.Fatalf("%s: invoke: %v", c.route, err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, headers: resp.Headers, body: resp.Body}
}

// must does c and fails the test unless the status is want.
func (e *env) must(want int, c call) response {
	e.t.Helper()
	r := e.do(c)
	if r.status != want {
		e.t.Fatalf("%s %v: status %d, want %d: %s", c.route, c.params, r.status, want, r.body)
	}
	return r
}

// created is the response to POST /v1/webhooks.
type created struct {
	WebhookView
	Secret string `json:"secret"`
}

func (e *env) createWebhook(key string, body any) created {
	e.t.Helper()
	var c created
	e.must(201, call{route: "POST /v1/webhooks", key: key, body: body}).decode(e.t, &c)
	e.secrets = append(e.secrets, c.Secret)
	return c
}

func TestWebhookCRUD(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	key := e.key("ws-a")

	r := e.must(201, call{route: "POST /v1/webhooks", key: key, body: map[string]any{
		"url": "https://example.com/hook", "events": []string{"run.*", "message.received", "run.*"}, "description": "orders",
	}})
	var c created
	r.decode(t, &c)
	e.secrets = append(e.secrets, c.Secret)
	if !outbound.ValidSecret(c.Secret) || !strings.HasPrefix(c.Secret, "whsec_") {
		t.Fatalf("generated secret %q", c.Secret)
	}
	if !strings.HasPrefix(c.ID, "sub_") || c.URL != "https://example.com/hook" || !slices.Equal(c.Events, []string{"run.*", "message.received"}) ||
		c.Description != "orders" || c.Status != "active" || c.ActiveSecrets != 1 || c.CreatedAt.IsZero() || !c.UpdatedAt.Equal(c.CreatedAt) {
		t.Fatalf("created %+v", c)
	}
	if r.headers["location"] != "/v1/webhooks/"+c.ID || r.headers["cache-control"] != "no-store" || r.headers["content-type"] != "application/json" {
		t.Fatalf("headers %v", r.headers)
	}
	// Stored under its workspace with the secret it was shown.
	sub, err := e.st.GetSubscription(context.Background(), "ws-a", c.ID)
	if err != nil || len(sub.Secrets) != 1 || sub.Secrets[0].Value != c.Secret {
		t.Fatalf("stored %v, %v", sub.Secrets, err)
	}

	// A given secret is kept as given.
	e.clk.add(time.Millisecond)
	given := outbound.NewSecret()
	e.secrets = append(e.secrets, given)
	c2 := e.createWebhook(key, map[string]any{"url": "https://example.org/2", "events": []string{"*"}, "secret": given})
	if c2.Secret != given || c2.Description != "" {
		t.Fatalf("given secret: %+v", c2)
	}

	// The secret is shown only at creation: never by get, list or patch.
	get := e.must(200, call{route: "GET /v1/webhooks/{id}", params: map[string]string{"id": c.ID}, key: key})
	list := e.must(200, call{route: "GET /v1/webhooks", key: key})
	patch := e.must(200, call{route: "PATCH /v1/webhooks/{id}", params: map[string]string{"id": c.ID}, key: key, body: map[string]any{
		"url": "https://example.com/v2", "events": []string{"webhook.stripe.*"}, "description": "", "status": "disabled",
	}})
	for _, r := range []response{get, list, patch} {
		if strings.Contains(r.body, "whsec_") || strings.Contains(r.body, `"secret"`) {
			t.Fatalf("a secret in %s", r.body)
		}
	}
	var got WebhookView
	get.decode(t, &got)
	if got.ID != c.ID || got.URL != c.URL || !slices.Equal(got.Events, c.Events) || got.ActiveSecrets != 1 {
		t.Fatalf("get %+v", got)
	}
	var page struct {
		Data       []WebhookView `json:"data"`
		NextCursor *string       `json:"next_cursor"`
	}
	list.decode(t, &page)
	if len(page.Data) != 2 || page.Data[0].ID != c.ID || page.Data[1].ID != c2.ID || page.NextCursor != nil || !strings.Contains(list.body, `"next_cursor":null`) {
		t.Fatalf("list %s", list.body)
	}
	var patched WebhookView
	patch.decode(t, &patched)
	if patched.URL != "https://example.com/v2" || !slices.Equal(patched.Events, []string{"webhook.stripe.*"}) || patched.Description != "" ||
		patched.Status != "disabled" || patched.DisabledReason == "" {
		t.Fatalf("patched %+v", patched)
	}
	// Fields not in a patch stay; re-enabling clears the reason and the failure count.
	for range 3 {
		if _, err := e.st.RecordDeliveryOutcome(context.Background(), "ws-a", c.ID, false); err != nil {
			t.Fatal(err)
		}
	}
	patched = WebhookView{}
	e.must(200, call{route: "PATCH /v1/webhooks/{id}", params: map[string]string{"id": c.ID}, key: key, body: `{"status":"active"}`}).decode(t, &patched)
	if patched.Status != "active" || patched.DisabledReason != "" || patched.ConsecutiveFailures != 0 || patched.URL != "https://example.com/v2" {
		t.Fatalf("re-enabled %+v", patched)
	}

	r = e.must(204, call{route: "DELETE /v1/webhooks/{id}", params: map[string]string{"id": c.ID}, key: key})
	if r.body != "" {
		t.Fatalf("204 with body %q", r.body)
	}
	for _, route := range []string{"GET /v1/webhooks/{id}", "DELETE /v1/webhooks/{id}"} {
		r := e.must(404, call{route: route, params: map[string]string{"id": c.ID}, key: key})
		if code, msg := r.errorCode(t); code != "not_found" || msg != "subscription not found" {
			t.Fatalf("%s after delete: %s", route, r.body)
		}
	}
	e.must(404, call{route: "PATCH /v1/webhooks/{id}", params: map[string]string{"id": c.ID}, key: key, body: `{"description":"x"}`})
	e.must(404, call{route: "POST /v1/webhooks/{id}/rotate-secret", params: map[string]string{"id": c.ID}, key: key})
}

func TestRotateSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	key := e.key("ws")
	ctx := context.Background()
	first := outbound.NewSecret()
	e.secrets = append(e.secrets, first)
	c := e.createWebhook(key, map[string]any{"url": "https://example.com/h", "events": []string{"*"}, "secret": first})
	id := map[string]string{"id": c.ID}

	t0 := e.clk.add(time.Minute)
	var rot RotatedSecret
	e.must(200, call{route: "POST /v1/webhooks/{id}/rotate-secret", params: id, key: key, body: `{"overlap_seconds":3600}`}).decode(t, &rot)
	e.secrets = append(e.secrets, rot.Secret)
	if !outbound.ValidSecret(rot.Secret) || rot.Secret == first || !rot.PreviousExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("rotated %+v, want a new secret and previous_expires_at %s", rot, t0.Add(time.Hour))
	}
	sub, _ := e.st.GetSubscription(ctx, "ws", c.ID)
	if got := sub.ActiveSecrets(e.clk.now()); !slices.Equal(got, []string{rot.Secret, first}) {
		t.Fatalf("during the overlap, %d secrets sign, want both", len(got))
	}
	var view WebhookView
	e.must(200, call{route: "GET /v1/webhooks/{id}", params: id, key: key}).decode(t, &view)
	if view.ActiveSecrets != 2 {
		t.Fatalf("active_secret_count %d during the overlap", view.ActiveSecrets)
	}
	if got := sub.ActiveSecrets(t0.Add(59 * time.Minute)); len(got) != 2 {
		t.Fatalf("just before the end of the overlap: %d secrets", len(got))
	}

	e.clk.add(time.Hour + time.Second)
	sub, _ = e.st.GetSubscription(ctx, "ws", c.ID)
	if got := sub.ActiveSecrets(e.clk.now()); !slices.Equal(got, []string{rot.Secret}) {
		t.Fatalf("after the overlap, %d secrets sign, want only the new one", len(got))
	}
	e.must(200, call{route: "GET /v1/webhooks/{id}", params: id, key: key}).decode(t, &view)
	if view.ActiveSecrets != 1 {
		t.Fatalf("active_secret_count %d after the overlap", view.ActiveSecrets)
	}

	// A given secret, the default overlap (a day); the expired first secret is pruned.
	given := outbound.NewSecret()
	e.secrets = append(e.secrets, given)
	t1 := e.clk.now()
	var rot2 RotatedSecret
	e.must(200, call{route: "POST /v1/webhooks/{id}/rotate-secret", params: id, key: key, body: map[string]any{"secret": given}}).decode(t, &rot2)
	if rot2.Secret != given || !rot2.PreviousExpiresAt.Equal(t1.Add(24*time.Hour)) {
		t.Fatalf("rotated %+v", rot2)
	}
	sub, _ = e.st.GetSubscription(ctx, "ws", c.ID)
	if len(sub.Secrets) != 2 || !slices.Equal(sub.ActiveSecrets(t1), []string{given, rot.Secret}) {
		t.Fatalf("after the second rotation: %v", sub.Secrets)
	}
	// overlap_seconds 0 retires the previous secrets at once.
	e.must(200, call{route: "POST /v1/webhooks/{id}/rotate-secret", params: id, key: key, body: `{"overlap_seconds":0}`}).decode(t, &rot)
	e.secrets = append(e.secrets, rot.Secret)
	sub, _ = e.st.GetSubscription(ctx, "ws", c.ID)
	if got := sub.ActiveSecrets(e.clk.now()); !slices.Equal(got, []string{rot.Secret}) || !rot.PreviousExpiresAt.Equal(e.clk.now()) {
		t.Fatalf("overlap 0: %d secrets, previous_expires_at %s", len(got), rot.PreviousExpiresAt)
	}
	// Reusing a secret the subscription has is refused.
	r := e.must(400, call{route: "POST /v1/webhooks/{id}/rotate-secret", params: id, key: key, body: map[string]any{"secret": rot.Secret}})
	if _, msg := r.errorCode(t); !strings.Contains(msg, "secret") {
		t.Fatalf("reused secret: %s", r.body)
	}
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	key := e.key("ws")
	other := e.key("ws-other")
	var want []string
	for i := range 25 {
		e.clk.add(time.Millisecond) // ids are time-ordered to the millisecond
		c := e.createWebhook(key, map[string]any{"url": fmt.Sprintf("https://example.com/%d", i), "events": []string{"run.*"}})
		want = append(want, c.ID)
	}
	e.createWebhook(other, map[string]any{"url": "https://other.example", "events": []string{"*"}})

	type page struct {
		Data       []WebhookView `json:"data"`
		NextCursor *string       `json:"next_cursor"`
	}
	var got []string
	var sizes []int
	query := map[string]string{"limit": "10"}
	for {
		var p page
		e.must(200, call{route: "GET /v1/webhooks", key: key, query: query}).decode(t, &p)
		sizes = append(sizes, len(p.Data))
		for _, v := range p.Data {
			got = append(got, v.ID)
		}
		if p.NextCursor == nil {
			break
		}
		query = map[string]string{"limit": "10", "cursor": *p.NextCursor}
	}
	if !slices.Equal(sizes, []int{10, 10, 5}) || !slices.Equal(got, want) {
		t.Fatalf("pages %v; ids in order: %v", sizes, slices.Equal(got, want))
	}
	var p page
	e.must(200, call{route: "GET /v1/webhooks", key: key}).decode(t, &p)
	if len(p.Data) != DefaultPageSize || p.NextCursor == nil {
		t.Fatalf("default page: %d, cursor %v", len(p.Data), p.NextCursor)
	}
	e.must(200, call{route: "GET /v1/webhooks", key: key, query: map[string]string{"limit": "100"}}).decode(t, &p)
	if len(p.Data) != 25 || p.NextCursor != nil {
		t.Fatalf("limit 100: %d, cursor %v", len(p.Data), p.NextCursor)
	}
	for _, q := range []map[string]string{{"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"limit": "-1"}, {"limit": ""}, {"cursor": "%%%"}, {"cursor": "bm9wZQ"}} {
		r := e.must(400, call{route: "GET /v1/webhooks", key: key, query: q})
		code, msg := r.errorCode(t)
		field := "limit"
		if _, ok := q["cursor"]; ok {
			field = "cursor"
		}
		if code != "invalid_request" || !strings.Contains(msg, field) {
			t.Errorf("query %v: %s", q, r.body)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	key := e.key("ws")
	sub := e.createWebhook(key, map[string]any{"url": "https://example.com/h", "events": []string{"run.*"}})
	id := map[string]string{"id": sub.ID}
	many := make([]string, 51)
	for i := range many {
		many[i] = fmt.Sprintf("webhook.src.type_%d", i)
	}
	base := func(kv ...any) map[string]any {
		m := map[string]any{"url": "https://example.com/h", "events": []string{"run.*"}}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	tests := []struct {
		name  string
		route string
		body  any
		want  string // the field (or problem) the message must name
	}{
		{"url missing", "POST /v1/webhooks", base("url", nil), "url is required"},
		{"url relative", "POST /v1/webhooks", base("url", "/hook"), "url must be an absolute URL"},
		{"url http", "POST /v1/webhooks", base("url", "http://example.com/h"), "url must use https"},
		{"url ftp", "POST /v1/webhooks", base("url", "ftp://example.com/h"), "url must use https"},
		{"url userinfo", "POST /v1/webhooks", base("url", "https://u:p@example.com/h"), "url must not contain a user or password"},
		{"url no host", "POST /v1/webhooks", base("url", "https:///h"), "url must have a host"},
		{"url too long", "POST /v1/webhooks", base("url", "https://example.com/"+strings.Repeat("a", 2048)), "url must be at most 2048"},
		{"events missing", "POST /v1/webhooks", base("events", nil), "events must have 1 to 50"},
		{"events empty", "POST /v1/webhooks", base("events", []string{}), "events must have 1 to 50"},
		{"events too many", "POST /v1/webhooks", base("events", many), "events must have 1 to 50"},
		{"events unknown", "POST /v1/webhooks", base("events", []string{"run.*", "run.exploded"}), `events[1] "run.exploded"`},
		{"events bad wildcard", "POST /v1/webhooks", base("events", []string{"run*"}), `events[0] "run*"`},
		{"events bad family", "POST /v1/webhooks", base("events", []string{"thread.*"}), `events[0] "thread.*"`},
		{"events upper case", "POST /v1/webhooks", base("events", []string{"webhook.Stripe.paid"}), `events[0]`},
		{"events not strings", "POST /v1/webhooks", base("events", []any{"run.*", 3}), "events must be an array of strings"},
		{"events not array", "POST /v1/webhooks", base("events", "run.*"), "events must be an array of strings"},
		{"description too long", "POST /v1/webhooks", base("description", strings.Repeat("é", 513)), "description must be at most 512"},
		{"secret no prefix", "POST /v1/webhooks", base("secret", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"), "secret must be whsec_"},
		{"secret short", "POST /v1/webhooks", base("secret", "whsec_c2hvcnQ="), "secret must be whsec_"},
		{"secret not base64", "POST /v1/webhooks", base("secret", "whsec_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"), "secret must be whsec_"},
		{"secret empty", "POST /v1/webhooks", base("secret", ""), "secret must be whsec_"},
		{"unknown field", "POST /v1/webhooks", base("filters", "x"), `unknown field "filters"`},
		{"header host", "POST /v1/webhooks", base("headers", map[string]string{"Host": "evil.example"}), `header "Host" is set by the delivery`},
		{"header signature", "POST /v1/webhooks", base("headers", map[string]string{"webhook-signature": "v1,x"}), `header "webhook-signature"`},
		{"header crlf", "POST /v1/webhooks", base("headers", map[string]string{"X-A": "a\r\nB: c"}), `header "X-A": a value must be`},
		{"header bad name", "POST /v1/webhooks", base("headers", map[string]string{"X A": "b"}), `header "X A": a name must be an HTTP token`},
		{"headers not strings", "POST /v1/webhooks", base("headers", map[string]any{"X-A": 1}), `must be`},
		{"filter not object", "POST /v1/webhooks", base("filter", "x"), "filter must be a JSON object"},
		{"filter bad operator", "POST /v1/webhooks", base("filter", map[string]any{"data.a": map[string]any{"$regex": "x"}}), `filter path "data.a": "$regex" is not an operator`},
		{"filter bad path", "POST /v1/webhooks", base("filter", map[string]any{"data..a": 1}), `filter path "data..a" has an empty part`},
		{"patch filter", "PATCH /v1/webhooks/{id}", `{"filter":{"$or":[]}}`, "filter $or takes a non-empty array"},
		{"patch header", "PATCH /v1/webhooks/{id}", `{"headers":{"Content-Length":"1"}}`, `header "Content-Length"`},
		{"invalid JSON", "POST /v1/webhooks", `{"url": "https://example.com",`, "body is not valid JSON"},
		{"not an object", "POST /v1/webhooks", `["https://example.com"]`, "body must be a JSON object"},
		{"no body", "POST /v1/webhooks", nil, "body must be a JSON object"},
		{"trailing data", "POST /v1/webhooks", `{"url":"https://example.com/h","events":["*"]} {}`, "single JSON object"},
		{"url wrong type", "POST /v1/webhooks", base("url", 42), "url must be a string"},

		{"patch url", "PATCH /v1/webhooks/{id}", `{"url":"http://example.com"}`, "url must use https"},
		{"patch url empty", "PATCH /v1/webhooks/{id}", `{"url":""}`, "url is required"},
		{"patch events empty", "PATCH /v1/webhooks/{id}", `{"events":[]}`, "events must have 1 to 50"},
		{"patch events unknown", "PATCH /v1/webhooks/{id}", `{"events":["nope"]}`, `events[0] "nope"`},
		{"patch description", "PATCH /v1/webhooks/{id}", map[string]any{"description": strings.Repeat("x", 513)}, "description must be at most 512"},
		{"patch status", "PATCH /v1/webhooks/{id}", `{"status":"paused"}`, "status must be active or disabled"},
		{"patch unknown field", "PATCH /v1/webhooks/{id}", `{"secret":"whsec_x"}`, `unknown field "secret"`},
		{"patch invalid JSON", "PATCH /v1/webhooks/{id}", `{"status":`, "body is not valid JSON"},

		{"rotate overlap negative", "POST /v1/webhooks/{id}/rotate-secret", `{"overlap_seconds":-1}`, "overlap_seconds must be from 0 to 604800"},
		{"rotate overlap too long", "POST /v1/webhooks/{id}/rotate-secret", `{"overlap_seconds":604801}`, "overlap_seconds must be from 0 to 604800"},
		{"rotate overlap fraction", "POST /v1/webhooks/{id}/rotate-secret", `{"overlap_seconds":1.5}`, "overlap_seconds must be an integer"},
		{"rotate secret", "POST /v1/webhooks/{id}/rotate-secret", `{"secret":"whsec_short"}`, "secret must be whsec_"},
		{"rotate unknown field", "POST /v1/webhooks/{id}/rotate-secret", `{"overlap":60}`, `unknown field "overlap"`},

		{"key name missing", "POST /v1/api-keys", `{}`, "name is required"},
		{"key name blank", "POST /v1/api-keys", `{"name":"   "}`, "name is required"},
		{"key name too long", "POST /v1/api-keys", map[string]any{"name": strings.Repeat("n", 129)}, "name must be at most 128"},
		{"key workspace bad", "POST /v1/api-keys", `{"name":"x","workspace_id":"a#b"}`, "workspace_id must be"},
		{"key unknown field", "POST /v1/api-keys", `{"name":"x","scopes":[]}`, `unknown field "scopes"`},
		{"key invalid JSON", "POST /v1/api-keys", `nope`, "body is not valid JSON"},
	}
	before, _ := e.st.GetSubscription(context.Background(), "ws", sub.ID)
	for _, tt := range tests {
		c := call{route: tt.route, key: key, body: tt.body}
		if strings.Contains(tt.route, "{id}") {
			c.params = id
		}
		r := e.do(c)
		code, msg := "", ""
		if r.status == 400 {
			code, msg = r.errorCode(t)
		}
		if r.status != 400 || code != "invalid_request" || !strings.Contains(msg, tt.want) {
			t.Errorf("%s: %d %s; want 400 naming %q", tt.name, r.status, r.body, tt.want)
		}
	}
	// Nothing was created or changed by a refused request.
	after, _ := e.st.GetSubscription(context.Background(), "ws", sub.ID)
	list, _, _ := e.st.ListSubscriptions(context.Background(), "ws", 100, "")
	keys, _ := e.st.ListAPIKeys(context.Background(), "ws")
	if len(list) != 1 || len(keys) != 1 || !after.UpdatedAt.Equal(before.UpdatedAt) || len(after.Secrets) != 1 {
		t.Fatalf("refused requests changed state: %d subscriptions, %d keys, %v", len(list), len(keys), after)
	}
	// A body over the limit is refused before parsing.
	r := e.do(call{route: "POST /v1/webhooks", key: key, body: `{"description":"` + strings.Repeat("x", MaxBodyBytes) + `"}`})
	if r.status != 413 {
		t.Fatalf("large body: %d %s", r.status, r.body)
	}
}

func TestAllowHTTPURLs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	key := e.key("ws")
	c := e.createWebhook(key, map[string]any{"url": "http://127.0.0.1:9000/hook", "events": []string{"*"}})
	if c.URL != "http://127.0.0.1:9000/hook" {
		t.Fatalf("created %+v", c)
	}
	r := e.must(400, call{route: "POST /v1/webhooks", key: key, body: `{"url":"ftp://x/y","events":["*"]}`})
	if _, msg := r.errorCode(t); !strings.Contains(msg, "url must use http or https") {
		t.Fatalf("ftp: %s", r.body)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	key := e.key("ws-a")
	sub := e.createWebhook(key, map[string]any{"url": "https://example.com/h", "events": []string{"*"}})

	// No key, a wrong key, a malformed header: 401 on every route, before anything else.
	routes := []call{
		{route: "POST /v1/api-keys", body: `{"name":"x"}`},
		{route: "GET /v1/api-keys"},
		{route: "DELETE /v1/api-keys/{id}", params: map[string]string{"id": "key_x"}},
		{route: "POST /v1/webhooks", body: `{"url":"https://example.com/h","events":["*"]}`},
		{route: "GET /v1/webhooks"},
		{route: "GET /v1/webhooks/{id}", params: map[string]string{"id": sub.ID}},
		{route: "PATCH /v1/webhooks/{id}", params: map[string]string{"id": sub.ID}, body: `{"status":"disabled"}`},
		{route: "DELETE /v1/webhooks/{id}", params: map[string]string{"id": sub.ID}},
		{route: "POST /v1/webhooks/{id}/rotate-secret", params: map[string]string{"id": sub.ID}},
		{route: "GET /v1/nothing"},
	}
	wrong := "hgk_" + strings.Repeat("a", 40)
	for _, c := range routes {
		for _, cred := range []struct{ key, auth string }{
			{}, {key: wrong}, {key: "not-a-key"}, {auth: "Bearer " + wrong}, {auth: "Basic " + key}, {auth: "Bearer"},
			{key: adminKey + "x"}, {key: adminKey[:len(adminKey)-1]},
		} {
			c.key, c.auth = cred.key, cred.auth
			r := e.do(c)
			if code, _ := r.errorCode(t); r.status != 401 || code != "unauthorized" {
				t.Errorf("%s with %+v: %d %s", c.route, cred, r.status, r.body)
			}
		}
	}
	// Both headers work, Bearer in any case.
	e.must(200, call{route: "GET /v1/webhooks/{id}", params: map[string]string{"id": sub.ID}, auth: "Bearer " + key})
	e.must(200, call{route: "GET /v1/webhooks/{id}", params: map[string]string{"id": sub.ID}, auth: "bearer " + key})
	e.must(200, call{route: "GET /v1/webhooks", auth: "Bearer " + adminKey})
	// An authenticated request to a route this handler does not serve.
	e.must(404, call{route: "GET /v1/nothing", key: key})

	stored, _ := e.st.GetSubscription(context.Background(), "ws-a", sub.ID)
	if stored.Status != "active" {
		t.Fatal("an unauthenticated request changed the subscription")
	}
}

func TestRevokedKeyChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	owner := e.key("ws")

	// Create a key through the API, use it, then revoke it through the API.
	var k struct {
		ID, Key, Prefix, Name string
		WorkspaceID           string    `json:"workspace_id"`
		CreatedAt             time.Time `json:"created_at"`
	}
	r := e.must(201, call{route: "POST /v1/api-keys", key: owner, body: `{"name":"deploy bot"}`})
	r.decode(t, &k)
	e.secrets = append(e.secrets, k.Key)
	if !store.LooksLikeAPIKey(k.Key) || k.Prefix != k.Key[:12] || k.WorkspaceID != "ws" || k.Name != "deploy bot" || !strings.HasPrefix(k.ID, "key_") || k.CreatedAt.IsZero() {
		t.Fatalf("created key %s", r.body)
	}
	sub := e.createWebhook(k.Key, map[string]any{"url": "https://example.com/h", "events": []string{"*"}})

	// The listing shows the keys without the keys themselves or their hashes.
	r = e.must(200, call{route: "GET /v1/api-keys", key: owner})
	var keys struct{ Data []map[string]any }
	r.decode(t, &keys)
	if len(keys.Data) != 2 || strings.Contains(r.body, k.Key) || strings.Contains(r.body, k.Key[12:]) || strings.Contains(r.body, `"key"`) || strings.Contains(r.body, "hash") {
		t.Fatalf("key listing: %s", r.body)
	}

	e.must(204, call{route: "DELETE /v1/api-keys/{id}", params: map[string]string{"id": k.ID}, key: owner})
	before, _ := e.st.GetSubscription(ctx, "ws", sub.ID)
	attempts := []call{
		{route: "POST /v1/webhooks", body: `{"url":"https://example.com/x","events":["*"]}`},
		{route: "PATCH /v1/webhooks/{id}", params: map[string]string{"id": sub.ID}, body: `{"url":"https://evil.example/"}`},
		{route: "POST /v1/webhooks/{id}/rotate-secret", params: map[string]string{"id": sub.ID}},
		{route: "DELETE /v1/webhooks/{id}", params: map[string]string{"id": sub.ID}},
		{route: "POST /v1/api-keys", body: `{"name":"again"}`},
		{route: "GET /v1/webhooks"},
	}
	for _, c := range attempts {
		for _, cred := range []call{{key: k.Key}, {auth: "Bearer " + k.Key}} {
			c.key, c.auth = cred.key, cred.auth
			r := e.do(c)
			if code, _ := r.errorCode(t); r.status != 401 || code != "unauthorized" {
				t.Errorf("revoked key on %s: %d %s", c.route, r.status, r.body)
			}
		}
	}
	after, err := e.st.GetSubscription(ctx, "ws", sub.ID)
	subs, _, _ := e.st.ListSubscriptions(ctx, "ws", 100, "")
	stored, _ := e.st.ListAPIKeys(ctx, "ws")
	if err != nil || after.URL != before.URL || !after.UpdatedAt.Equal(before.UpdatedAt) || len(after.Secrets) != 1 || len(subs) != 1 || len(stored) != 2 {
		t.Fatalf("a revoked key changed state: %+v %v, %d subscriptions, %d keys", after, err, len(subs), len(stored))
	}
	r = e.must(200, call{route: "GET /v1/api-keys", key: owner})
	if !strings.Contains(r.body, `"revoked_at"`) {
		t.Fatalf("revoked key not marked: %s", r.body)
	}
	// Revoking again is harmless; an unknown id is not found.
	e.must(204, call{route: "DELETE /v1/api-keys/{id}", params: map[string]string{"id": k.ID}, key: owner})
	e.must(404, call{route: "DELETE /v1/api-keys/{id}", params: map[string]string{"id": "key_unknown"}, key: owner})
	if !strings.Contains(e.logs.String(), k.ID) {
		t.Error("the revocation is not in the logs by key id")
	}
}

func TestWorkspaceIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	keyA, keyB := e.key("ws-a"), e.key("ws-b")
	subB := e.createWebhook(keyB, map[string]any{"url": "https://b.example/h", "events": []string{"run.*"}, "description": "B's"})
	e.createWebhook(keyA, map[string]any{"url": "https://a.example/h", "events": []string{"*"}})
	before, _ := e.st.GetSubscription(ctx, "ws-b", subB.ID)

	id := map[string]string{"id": subB.ID}
	for _, c := range []call{
		{route: "GET /v1/webhooks/{id}", params: id},
		{route: "PATCH /v1/webhooks/{id}", params: id, body: `{"url":"https://a.example/stolen","status":"disabled"}`},
		{route: "POST /v1/webhooks/{id}/rotate-secret", params: id, body: `{"overlap_seconds":0}`},
		{route: "DELETE /v1/webhooks/{id}", params: id},
	} {
		c.key = keyA
		r := e.do(c)
		if code, msg := r.errorCode(t); r.status != 404 || code != "not_found" || msg != "subscription not found" {
			t.Errorf("A on B's subscription, %s: %d %s", c.route, r.status, r.body)
		}
	}
	// A's listing does not show B's subscription.
	r := e.must(200, call{route: "GET /v1/webhooks", key: keyA})
	if strings.Contains(r.body, subB.ID) || strings.Contains(r.body, "b.example") {
		t.Fatalf("A's list shows B's subscription: %s", r.body)
	}
	after, err := e.st.GetSubscription(ctx, "ws-b", subB.ID)
	if err != nil || after.URL != before.URL || after.Status != "active" || after.Description != "B's" ||
		!after.UpdatedAt.Equal(before.UpdatedAt) || len(after.Secrets) != 1 || after.Secrets[0].Value != subB.Secret {
		t.Fatalf("B's subscription changed: %+v, %v", after, err)
	}
	// B still sees it as it was.
	var v WebhookView
	e.must(200, call{route: "GET /v1/webhooks/{id}", params: id, key: keyB}).decode(t, &v)
	if v.URL != "https://b.example/h" || v.Status != "active" {
		t.Fatalf("B's view: %+v", v)
	}

	// API keys: A cannot list or revoke B's keys.
	bKeys, _ := e.st.ListAPIKeys(ctx, "ws-b")
	r = e.must(404, call{route: "DELETE /v1/api-keys/{id}", params: map[string]string{"id": bKeys[0].ID}, key: keyA})
	if code, _ := r.errorCode(t); code != "not_found" {
		t.Fatalf("A revoking B's key: %s", r.body)
	}
	e.must(200, call{route: "GET /v1/webhooks", key: keyB}) // B's key still works
	e.must(403, call{route: "GET /v1/api-keys", key: keyA, query: map[string]string{"workspace_id": "ws-b"}})
	e.must(403, call{route: "DELETE /v1/api-keys/{id}", params: map[string]string{"id": bKeys[0].ID}, key: keyA, query: map[string]string{"workspace_id": "ws-b"}})
	r = e.must(200, call{route: "GET /v1/api-keys", key: keyA})
	if strings.Contains(r.body, bKeys[0].ID) {
		t.Fatalf("A lists B's key: %s", r.body)
	}
}

func TestAdminKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	keyA := e.key("ws-a")

	// The admin creates a key for workspace B; that key acts in B only.
	var k struct {
		ID, Key     string
		WorkspaceID string `json:"workspace_id"`
	}
	e.must(201, call{route: "POST /v1/api-keys", key: adminKey, body: `{"name":"b-ops","workspace_id":"ws-b"}`}).decode(t, &k)
	e.secrets = append(e.secrets, k.Key)
	if k.WorkspaceID != "ws-b" {
		t.Fatalf("admin-created key is in %q", k.WorkspaceID)
	}
	c := e.createWebhook(k.Key, map[string]any{"url": "https://b.example/h", "events": []string{"*"}})
	if _, err := e.st.GetSubscription(ctx, "ws-b", c.ID); err != nil {
		t.Fatalf("B's key did not create in B: %v", err)
	}
	// The admin lists and revokes B's keys by naming the workspace.
	r := e.must(200, call{route: "GET /v1/api-keys", key: adminKey, query: map[string]string{"workspace_id": "ws-b"}})
	if !strings.Contains(r.body, k.ID) {
		t.Fatalf("admin listing of B: %s", r.body)
	}

	// A non-admin key cannot create a key for another workspace, but can for its own.
	r = e.must(403, call{route: "POST /v1/api-keys", key: keyA, body: `{"name":"sneaky","workspace_id":"ws-b"}`})
	if code, _ := r.errorCode(t); code != "forbidden" {
		t.Fatalf("non-admin for B: %s", r.body)
	}
	if keys, _ := e.st.ListAPIKeys(ctx, "ws-b"); len(keys) != 1 {
		t.Fatalf("B has %d keys after a refused creation", len(keys))
	}
	var own struct {
		Key         string
		WorkspaceID string `json:"workspace_id"`
	}
	e.must(201, call{route: "POST /v1/api-keys", key: keyA, body: `{"name":"mine","workspace_id":"ws-a"}`}).decode(t, &own)
	e.secrets = append(e.secrets, own.Key)
	if own.WorkspaceID != "ws-a" {
		t.Fatalf("own key in %q", own.WorkspaceID)
	}

	// Without workspace_id the admin acts on the default workspace.
	var dk struct {
		Key         string
		WorkspaceID string `json:"workspace_id"`
	}
	e.must(201, call{route: "POST /v1/api-keys", key: adminKey, body: `{"name":"default"}`}).decode(t, &dk)
	e.secrets = append(e.secrets, dk.Key)
	if dk.WorkspaceID != "default" {
		t.Fatalf("admin default workspace: %q", dk.WorkspaceID)
	}
	d := e.createWebhook(adminKey, map[string]any{"url": "https://d.example/h", "events": []string{"*"}})
	if _, err := e.st.GetSubscription(ctx, "default", d.ID); err != nil {
		t.Fatalf("admin webhook not in the default workspace: %v", err)
	}

	e.must(204, call{route: "DELETE /v1/api-keys/{id}", params: map[string]string{"id": k.ID}, key: adminKey, query: map[string]string{"workspace_id": "ws-b"}})
	e.must(401, call{route: "GET /v1/webhooks", key: k.Key})
}

func TestRouteKeys(t *testing.T) {
	h := New(Config{AdminKey: adminKey}, nil, time.Now, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	want := []string{
		"DELETE /v1/api-keys/{id}", "DELETE /v1/webhooks/{id}", "GET /v1/api-keys", "GET /v1/event-types", "GET /v1/webhooks", "GET /v1/webhooks/{id}",
		"PATCH /v1/webhooks/{id}", "POST /v1/api-keys", "POST /v1/webhooks", "POST /v1/webhooks/{id}/rotate-secret",
	}
	if got := h.RouteKeys(); !slices.Equal(got, want) {
		t.Fatalf("RouteKeys = %v", got)
	}
}
