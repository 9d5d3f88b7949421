package manage

import (
	"context"
	"strings"
	"testing"

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
