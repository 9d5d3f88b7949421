package manage

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hookgate/hookgate/shared/store"
)

// newAgentsEnv is newEnv with the source and agent routes, as functions/management wires them.
func newAgentsEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, true)
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := New(Config{DefaultWorkspace: "default", AdminKey: adminKey, AllowHTTPURLs: true}, e.st, e.clk.now, log).WithSources(e.st).WithAgents(e.st)
	e.invoke = lambda.NewHandler(h.Handle).Invoke
	return e
}

func TestAgentValidation(t *testing.T) {
	t.Parallel()
	e := newAgentsEnv(t)
	long := strings.Repeat("s", MaxAgentSystemBytes+1)
	for _, tc := range []struct {
		name string
		body any
		want string // in the 400's message
	}{
		{"no name", map[string]any{"type": "echo"}, "name must be"},
		{"bad name", map[string]any{"name": "Bad Name", "type": "echo"}, "name must be"},
		{"echo", map[string]any{"name": "echo", "type": "echo"}, "built-in"},
		{"no type", map[string]any{"name": "a"}, "type is required"},
		{"unknown type", map[string]any{"name": "a", "type": "robot"}, "type must be"},
		{"webhook without url", map[string]any{"name": "a", "type": "webhook"}, "url is required"},
		{"webhook ftp url", map[string]any{"name": "a", "type": "webhook", "url": "ftp://x.example"}, "url must use"},
		{"webhook short secret", map[string]any{"name": "a", "type": "webhook", "url": "https://x.example", "secret": "whsec_abc"}, "secret must be whsec_"},
		{"webhook with model", map[string]any{"name": "a", "type": "webhook", "url": "https://x.example", "model": "m"}, "model does not apply to a webhook agent"},
		{"openai without model", map[string]any{"name": "a", "type": "openai"}, "model is required"},
		{"openai with url", map[string]any{"name": "a", "type": "openai", "model": "m", "url": "https://x.example"}, "url does not apply to a openai agent"},
		{"openai bad base_url", map[string]any{"name": "a", "type": "openai", "model": "m", "base_url": "x.example"}, "base_url must be an absolute URL"},
		{"openai key with space", map[string]any{"name": "a", "type": "openai", "model": "m", "api_key": "sk 1"}, "api_key must be"},
		{"openai long system", map[string]any{"name": "a", "type": "openai", "model": "m", "system": long}, "system must be at most 32768 bytes"},
		{"openai control in system", map[string]any{"name": "a", "type": "openai", "model": "m", "system": "a\u0007b"}, "system must be"},
		{"openai history", map[string]any{"name": "a", "type": "openai", "model": "m", "max_history": 201}, "max_history must be"},
		{"timeout", map[string]any{"name": "a", "type": "webhook", "url": "https://x.example", "timeout_seconds": 61}, "timeout_seconds must be"},
		{"unknown field", map[string]any{"name": "a", "type": "echo", "colour": "red"}, "unknown field"},
		{"wrong type", map[string]any{"name": "a", "type": "openai", "model": 7}, "model must be a string"},
	} {
		r := e.must(400, call{route: "POST /v1/agents", key: adminKey, body: tc.body})
		if !strings.Contains(r.body, tc.want) || !strings.Contains(r.body, "invalid_request") {
			t.Errorf("%s: %s, want a 400 saying %q", tc.name, r.body, tc.want)
		}
	}
	// A system prompt of the full 32 KB, with new lines, is taken.
	sys := strings.Repeat("Be kind.\n", MaxAgentSystemBytes/9)
	r := e.must(201, call{route: "POST /v1/agents", key: adminKey, body: map[string]any{"name": "long", "type": "openai", "model": "m", "system": sys, "api_key": "sk-secret-key-0123456789"}})
	e.secrets = append(e.secrets, "sk-secret-key-0123456789")
	if strings.Contains(r.body, "sk-secret-key") || !strings.Contains(r.body, `"has_secret":true`) {
		t.Fatalf("created: %s", r.body)
	}
	// PATCH changes only what it names, never the type or a secret.
	e.must(400, call{route: "PATCH /v1/agents/{name}", params: map[string]string{"name": "long"}, key: adminKey, body: map[string]any{"type": "webhook"}})
	e.must(400, call{route: "PATCH /v1/agents/{name}", params: map[string]string{"name": "long"}, key: adminKey, body: map[string]any{"api_key": "sk-other-0123456789"}})
	r = e.must(200, call{route: "PATCH /v1/agents/{name}", params: map[string]string{"name": "long"}, key: adminKey, body: map[string]any{"model": "m2"}})
	if !strings.Contains(r.body, `"model":"m2"`) || !strings.Contains(r.body, `"has_secret":true`) {
		t.Fatalf("patched: %s", r.body)
	}
	e.must(404, call{route: "GET /v1/agents/{name}", params: map[string]string{"name": "long"}, key: adminKey, query: map[string]string{"workspace_id": "other"}})
}

func TestAdapterValidation(t *testing.T) {
	t.Parallel()
	e := newAgentsEnv(t)
	e.must(201, call{route: "POST /v1/agents", key: adminKey, body: map[string]any{"name": "mine", "type": "echo"}})
	e.must(201, call{route: "POST /v1/agents", key: adminKey, query: nil, body: map[string]any{"name": "theirs", "type": "echo", "workspace_id": "other"}})
	for _, tc := range []struct {
		name string
		body any
		want string
	}{
		{"bad name", map[string]any{"name": "-x"}, "name must be"},
		{"short secret", map[string]any{"name": "a", "secret": "short"}, "secret must be 16"},
		{"secret with space", map[string]any{"name": "a", "secret": "a secret with spaces"}, "secret must be 16"},
		{"url as host", map[string]any{"name": "a", "reply_hosts": []string{"https://x.example"}}, "reply_hosts[0]"},
		{"wildcard host", map[string]any{"name": "a", "reply_hosts": []string{"*.example.com"}}, "reply_hosts[0]"},
		{"body too small", map[string]any{"name": "a", "max_body_bytes": 10}, "max_body_bytes must be"},
		{"no in-flight", map[string]any{"name": "a", "max_in_flight": 0}, "max_in_flight must be"},
		{"blank approver", map[string]any{"name": "a", "approvers": []string{" "}}, "approvers[0]"},
		{"unknown agent", map[string]any{"name": "a", "agent": "nosuch"}, "nosuch\\\" is not an agent of this workspace"},
		{"another workspace's agent", map[string]any{"name": "a", "agent": "theirs"}, "is not an agent of this workspace"},
	} {
		r := e.must(400, call{route: "POST /v1/adapters", key: adminKey, body: tc.body})
		if !strings.Contains(r.body, tc.want) {
			t.Errorf("%s: %s, want a 400 saying %q", tc.name, r.body, tc.want)
		}
	}
	r := e.must(201, call{route: "POST /v1/adapters", key: adminKey, body: map[string]any{"name": "ops", "agent": "mine", "secret": "given-secret-0123456789"}})
	e.secrets = append(e.secrets, "given-secret-0123456789")
	if !strings.Contains(r.body, `"secret":"given-secret-0123456789"`) {
		t.Fatalf("created: %s", r.body)
	}
	e.must(409, call{route: "POST /v1/adapters", key: adminKey, body: map[string]any{"name": "ops", "workspace_id": "other"}})
	l := e.must(200, call{route: "GET /v1/adapters", key: adminKey})
	if strings.Contains(l.body, "given-secret") || !strings.Contains(l.body, `"active_secret_count":1`) {
		t.Fatalf("list: %s", l.body)
	}
	e.must(400, call{route: "PATCH /v1/adapters/{name}", params: map[string]string{"name": "ops"}, key: adminKey, body: map[string]any{"agent": "theirs"}})
	e.must(400, call{route: "PATCH /v1/adapters/{name}", params: map[string]string{"name": "ops"}, key: adminKey, body: map[string]any{"secret": "another-secret-0123456789"}})
	e.must(404, call{route: "PATCH /v1/adapters/{name}", params: map[string]string{"name": "ops"}, key: adminKey, query: map[string]string{"workspace_id": "other"}, body: map[string]any{"max_in_flight": 2}})
	e.must(400, call{route: "POST /v1/adapters/{name}/rotate", params: map[string]string{"name": "ops"}, key: adminKey, body: map[string]any{"overlap_seconds": -1}})
	rot := e.must(200, call{route: "POST /v1/adapters/{name}/rotate", params: map[string]string{"name": "ops"}, key: adminKey, body: map[string]any{"overlap_seconds": 60}})
	if !strings.Contains(rot.body, `"active_secret_count":2`) || !strings.Contains(rot.body, `"previous_expires_at"`) {
		t.Fatalf("rotated: %s", rot.body)
	}
	// Role routes name only the workspace's agents.
	e.must(200, call{route: "PUT /v1/routes", key: adminKey, body: map[string]any{"routes": []map[string]string{{"pattern": "*", "agent": "mine"}, {"pattern": "webhook.*", "agent": "echo"}}}})
	rr := e.must(400, call{route: "PUT /v1/routes", key: adminKey, body: map[string]any{"routes": []map[string]string{{"pattern": "*", "agent": "theirs"}}}})
	if !strings.Contains(rr.body, "routes[0].agent") {
		t.Fatalf("route to another workspace's agent: %s", rr.body)
	}
}

// A seeded agent is the operator's: it may dial private addresses, and an openai one holds the
// stack's OpenAIApiKey. A workspace key must not point it elsewhere (the key would go with it).
func TestSeededAgentCannotBePointedElsewhere(t *testing.T) {
	t.Parallel()
	e := newAgentsEnv(t)
	ctx := context.Background()
	const operatorKey = "sk-operator-key-0123456789"
	e.secrets = append(e.secrets, operatorKey)
	seeds := []store.Agent{
		{WorkspaceID: "default", Name: "gpt", Type: "openai", Model: "m", BaseURL: "http://10.0.0.5/v1", Secret: operatorKey, Operator: true},
		{WorkspaceID: "default", Name: "hook", Type: "webhook", URL: "http://10.0.0.6/agent", Secret: "whsec_" + strings.Repeat("a", 32), Operator: true},
	}
	for _, a := range seeds {
		if err := e.st.PutAgent(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	key := e.key("default")
	for _, c := range []struct{ name, field string }{{"gpt", "base_url"}, {"hook", "url"}} {
		r := e.must(400, call{route: "PATCH /v1/agents/{name}", params: map[string]string{"name": c.name}, key: key,
			body: map[string]any{c.field: "https://attacker.example/v1"}})
		if !strings.Contains(r.body, "Agents parameter") {
			t.Errorf("%s: %s", c.name, r.body)
		}
	}
	for _, want := range seeds {
		got, err := e.st.GetAgent(ctx, "default", want.Name)
		if err != nil || got.URL != want.URL || got.BaseURL != want.BaseURL || !got.Operator {
			t.Fatalf("%s after the PATCH: %v %v", want.Name, got, err)
		}
	}
	// Other fields of a seeded agent still change.
	e.must(200, call{route: "PATCH /v1/agents/{name}", params: map[string]string{"name": "gpt"}, key: key, body: map[string]any{"model": "m2"}})
}
