package manage

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/store"
)

// An agent seeded from the stack's Agents parameter is the operator's: the worker lets it dial
// private addresses (a model server beside the stack), and a seeded openai agent without a key of
// its own holds the stack's OpenAIApiKey. A workspace key of the default workspace that re-points
// it would make the worker dial an address it chose with private addresses allowed (SSRF), or send
// the operator's API key to its own host as the Bearer token. Where a seeded agent points is the
// operator's: the parameter changes it, the API refuses to.
func TestAttackSeededAgentRepointed(t *testing.T) {
	t.Parallel()
	e := newAgentsEnv(t)
	ctx := context.Background()
	seeds := []store.Agent{
		{WorkspaceID: "default", Name: "model", Type: "webhook", URL: "https://model.internal.example/hook", Secret: "whsec_" + "0123456789abcdef0123456789abcdef", Operator: true},
		{WorkspaceID: "default", Name: "llm", Type: "openai", Model: "m", Secret: "sk-operator-0123456789", Operator: true},
	}
	for _, a := range seeds {
		if err := e.st.PutAgent(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	e.secrets = append(e.secrets, "whsec_0123456789abcdef0123456789abcdef", "sk-operator-0123456789")
	key := e.key("default")
	for _, tc := range []struct{ name, field, to string }{
		{"model", "url", "https://169.254.169.254/latest/meta-data"},
		{"llm", "base_url", "https://attacker.example/v1"},
	} {
		r := e.do(call{route: "PATCH /v1/agents/{name}", params: map[string]string{"name": tc.name}, key: key, body: map[string]any{tc.field: tc.to}})
		if r.status != 400 || !strings.Contains(r.body, "Agents parameter") {
			t.Errorf("re-pointing seeded agent %s: %d %s, want a 400 naming the Agents parameter", tc.name, r.status, r.body)
		}
	}
	for _, want := range seeds {
		a, err := e.st.GetAgent(ctx, "default", want.Name)
		if err != nil {
			t.Fatal(err)
		}
		if a.URL != want.URL || a.BaseURL != want.BaseURL || !a.Operator {
			t.Errorf("seeded agent %s now points at %q%q (operator %v)", want.Name, a.URL, a.BaseURL, a.Operator)
		}
	}
	// Other changes to a seeded agent, and an unchanged address, are taken.
	e.must(200, call{route: "PATCH /v1/agents/{name}", params: map[string]string{"name": "llm"}, key: key, body: map[string]any{"model": "m2", "base_url": ""}})
	e.must(200, call{route: "PATCH /v1/agents/{name}", params: map[string]string{"name": "model"}, key: key, body: map[string]any{"timeout_seconds": 20, "url": "https://model.internal.example/hook"}})
}

// Odd bytes in agent and adapter fields (invalid UTF-8, NUL and other control characters, line
// separators, huge values, deep nesting) are refused as a client's error, never a 500, and
// nothing is stored.
func TestAttackOddBytesInAgentsAndAdapters(t *testing.T) {
	t.Parallel()
	e := newAgentsEnv(t)
	key := e.key("odd")
	huge := strings.Repeat("x", MaxAgentBodyBytes+1)
	for _, tc := range []struct {
		route string
		body  string
	}{
		{"POST /v1/agents", "{\"name\":\"a\",\"type\":\"openai\",\"model\":\"m\",\"system\":\"bad \xff\xfe utf8\"}"},
		{"POST /v1/agents", "{\"name\":\"a\xff\",\"type\":\"echo\"}"},
		{"POST /v1/agents", `{"name":"a\u0000","type":"echo"}`},
		{"POST /v1/agents", `{"name":"a","type":"openai","model":"m\u0000"}`},
		{"POST /v1/agents", `{"name":"a","type":"openai","model":"m","system":"a\u2028b\u0000"}`},
		{"POST /v1/agents", `{"name":"a","type":"openai","model":"m","system":"\ud800"}`},
		{"POST /v1/agents", `{"name":"a","type":"webhook","url":"https://x.example/\u0000"}`},
		{"POST /v1/agents", `{"name":"a","type":"webhook","url":"https://x.example/` + "\x7f" + `"}`},
		{"POST /v1/agents", `{"name":"a","type":"openai","model":"m","system":"` + huge + `"}`},
		{"POST /v1/agents", strings.Repeat("[", 10000)},
		{"POST /v1/agents", `{"name":"a","type":"openai","model":"m","max_history":1e400}`},
		{"POST /v1/adapters", "{\"name\":\"ad\",\"approvers\":[\"\xff\"]}"},
		{"POST /v1/adapters", `{"name":"ad","approvers":["a\u0000b"]}`},
		{"POST /v1/adapters", `{"name":"ad","reply_hosts":["h\u0000.example"]}`},
		{"POST /v1/adapters", `{"name":"ad","secret":"0123456789abcdef\u0000"}`},
		{"POST /v1/adapters", `{"name":"ad","max_body_bytes":99999999999999999999}`},
		{"POST /v1/adapters", `{"name":"` + strings.Repeat("a", 5000) + `"}`},
	} {
		r := e.do(call{route: tc.route, key: key, body: tc.body, base64: true})
		if r.status < 400 || r.status >= 500 {
			t.Errorf("%s %.60q: %d %s, want a 4xx", tc.route, tc.body, r.status, truncate(r.body, 200))
		}
	}
	for _, name := range []string{"a\x00", "a\xff", strings.Repeat("a", 3000), "../a", "a/b"} {
		r := e.do(call{route: "GET /v1/adapters/{name}", params: map[string]string{"name": name}, key: key})
		if r.status != 404 {
			t.Errorf("GET adapter %.40q: %d %s, want 404", name, r.status, truncate(r.body, 200))
		}
		r = e.do(call{route: "PATCH /v1/agents/{name}", params: map[string]string{"name": name}, key: key, body: map[string]any{"timeout_seconds": 5}})
		if r.status != 404 {
			t.Errorf("PATCH agent %.40q: %d %s, want 404", name, r.status, truncate(r.body, 200))
		}
	}
	if as, err := e.st.ListAgents(context.Background(), "odd"); err != nil || len(as) != 0 {
		t.Errorf("agents stored: %v %v", as, err)
	}
	if as, err := e.st.ListAdapters(context.Background(), "odd"); err != nil || len(as) != 0 {
		t.Errorf("adapters stored: %v %v", as, err)
	}
}

// A disabled subscription's deliveries fail at once, without a request: replaying them is a loop
// that costs the tenant one call and the stack up to MaxReplay queue messages, delivery
// invocations and writes each time, past every quota of the workspace. A replay of a disabled
// subscription is refused (409) and queues nothing; enabled again, it replays.
func TestAttackReplayLoopOnDisabledSubscription(t *testing.T) {
	t.Parallel()
	e, q := newDeliveryEnv(t)
	ctx := context.Background()
	key := e.key("loop")
	sub := e.createWebhook(key, map[string]any{"url": "https://example.com/loop", "events": []string{"*"}})
	e.clk.add(-time.Hour)
	var failed []store.Delivery
	for range 3 {
		failed = append(failed, e.failedDelivery("loop", sub.ID))
	}
	e.clk.add(time.Hour)
	if _, err := e.st.DisableSubscription(ctx, "loop", sub.ID, "the endpoint answered 410 Gone"); err != nil {
		t.Fatal(err)
	}
	replay := call{route: "POST /v1/webhooks/{id}/replay", params: map[string]string{"id": sub.ID}, key: key,
		body: map[string]string{"since": e.clk.now().Add(-2 * time.Hour).Format(time.RFC3339)}}
	r := e.do(replay)
	if r.status != 409 || len(q.queued()) != 0 {
		t.Fatalf("replay of a disabled subscription: %d %s, queued %v; want 409 and nothing queued", r.status, r.body, q.queued())
	}
	for _, d := range failed {
		if got, err := e.st.GetDelivery(ctx, "loop", d.ID); err != nil || got.Status != store.DeliveryFailed || got.Series != 0 {
			t.Errorf("delivery %s after a refused replay: %s series %d (%v)", d.ID, got.Status, got.Series, err)
		}
	}
	e.must(200, call{route: "PATCH /v1/webhooks/{id}", params: map[string]string{"id": sub.ID}, key: key, body: map[string]string{"status": "active"}})
	e.must(202, replay)
	if len(q.queued()) != 3 {
		t.Fatalf("replay once enabled: queued %v", q.queued())
	}
}
