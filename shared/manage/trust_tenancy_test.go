package manage

import (
	"context"
	"testing"

	"github.com/hookgate/hookgate/shared/store"
)

// An agent seeded from the stack's Agents parameter is the operator's: the worker lets it dial
// private addresses (a model server beside the stack). A workspace key of the default workspace
// that points it somewhere else must not keep that privilege: the new URL is the key holder's
// choice, not the operator's, so the agent stops being the operator's.
func TestAttackSeededAgentURLChangeDropsOperator(t *testing.T) {
	t.Parallel()
	e := newAgentsEnv(t)
	ctx := context.Background()
	for _, a := range []store.Agent{
		{WorkspaceID: "default", Name: "model", Type: "webhook", URL: "https://model.internal.example/hook", Secret: "whsec_" + "0123456789abcdef0123456789abcdef", Operator: true},
		{WorkspaceID: "default", Name: "llm", Type: "openai", Model: "m", BaseURL: "https://llm.internal.example/v1", Secret: "sk-operator-0123456789", Operator: true},
	} {
		if err := e.st.PutAgent(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	e.secrets = append(e.secrets, "whsec_0123456789abcdef0123456789abcdef", "sk-operator-0123456789")
	key := e.key("default")
	e.must(200, call{route: "PATCH /v1/agents/{name}", params: map[string]string{"name": "model"}, key: key, body: map[string]any{"url": "https://169.254.169.254/latest/meta-data"}})
	e.must(200, call{route: "PATCH /v1/agents/{name}", params: map[string]string{"name": "llm"}, key: key, body: map[string]any{"base_url": "https://10.0.0.5/v1"}})
	for _, name := range []string{"model", "llm"} {
		a, err := e.st.GetAgent(ctx, "default", name)
		if err != nil {
			t.Fatal(err)
		}
		if a.Operator {
			t.Errorf("agent %s points where a workspace key chose (%s%s) and is still the operator's: the worker would dial it with private addresses allowed", name, a.URL, a.BaseURL)
		}
	}
	// A change that leaves the address alone keeps the seeded agent the operator's.
	if err := e.st.PutAgent(ctx, store.Agent{WorkspaceID: "default", Name: "kept", Type: "openai", Model: "m", BaseURL: "https://llm.internal.example/v1", Secret: "sk-operator-0123456789", Operator: true}); err != nil {
		t.Fatal(err)
	}
	e.must(200, call{route: "PATCH /v1/agents/{name}", params: map[string]string{"name": "kept"}, key: key, body: map[string]any{"model": "m2", "base_url": "https://llm.internal.example/v1"}})
	if a, err := e.st.GetAgent(ctx, "default", "kept"); err != nil || !a.Operator {
		t.Errorf("kept: %v %v, want still the operator's", a.Operator, err)
	}
}
