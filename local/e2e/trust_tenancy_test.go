package e2e_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Attacks of a tenant on what the stack's parameters seed (issue 12, item 1), on a stack of its own
// so that nothing has called the adapter function or the worker yet: the seeds are not written.
//
//   - Adapter names are stack-wide. A workspace key claims "default" (always seeded) before the
//     adapter function's first request. The seed must take it back: the stack's AdapterSecret opens
//     /webhook/default and runs land in the default workspace; the tenant's secret opens nothing.
//   - A key of the default workspace re-points a seeded agent (the operator's: it may dial private
//     addresses and holds the stack's OpenAI key). The API refuses and the agent keeps its URL.
func TestAttackTenantOnSeeds(t *testing.T) {
	t.Parallel()
	agentSrv := newCountingAgent(t)
	agents := fmt.Sprintf(`{"model":{"type":"webhook","url":%q,"secret":"whsec_%s"}}`, agentSrv.srv.URL, "c2VlZGVkLWFnZW50LXNlY3JldC0wMTIzNDU2Nzg5")
	e, err := startStack(t, "seeds", time.Second, map[string]string{"Agents": agents}, nil)
	if err != nil {
		t.Fatalf("start local stack: %v", err)
	}
	t.Cleanup(func() { e.stack.Close() })
	url := e.stack.URL
	squatter := "squatter"
	keyS := wsKey(t, e, squatter)
	squatSecret := "squatter-secret-0123456789"
	mustStatus(t, "the tenant claims the default adapter's name before the first seed", do(t, http.MethodPost, url+"/v1/adapters", keyS,
		fmt.Sprintf(`{"name":"default","secret":%q}`, squatSecret)), 201)

	// The first request to the adapter function seeds the stack's adapters.
	r := do(t, http.MethodPost, url+"/webhook/default", map[string]string{"authorization": "Bearer " + adapterSecret, "content-type": "application/json"}, `{"text":"hello"}`)
	if r.status != 202 {
		t.Fatalf("the stack's AdapterSecret on /webhook/default: %d %s, want 202 (the tenant kept the stack's adapter)", r.status, r.raw)
	}
	run := waitRun(t, e, r.body["threadId"].(string), r.body["runId"].(string))
	if run["status"] != "completed" {
		t.Fatalf("run: %v", run)
	}
	if r := do(t, http.MethodPost, url+"/webhook/default", map[string]string{"authorization": "Bearer " + squatSecret, "content-type": "application/json"}, `{"text":"mine now"}`); r.status != 401 {
		t.Errorf("the tenant's secret on /webhook/default: %d %s, want 401", r.status, r.raw)
	}
	if r := do(t, http.MethodGet, url+"/v1/adapters/default", keyS, ""); r.status != 404 {
		t.Errorf("the tenant still reads the default adapter: %d %s", r.status, r.raw)
	}
	if a, err := e.store.LookupAdapter(t.Context(), "default"); err != nil || a.WorkspaceID != "default" {
		t.Errorf("the default adapter belongs to %q (%v)", a.WorkspaceID, err)
	}
	if r := do(t, http.MethodGet, url+"/v1/adapters", keyS, ""); r.status != 200 || strings.Contains(r.raw, `"name"`) {
		t.Errorf("the tenant still lists an adapter: %d %s", r.status, r.raw)
	}

	// The worker's first batch (the run above) seeded the stack's agents.
	keyD := wsKey(t, e, "default")
	for _, body := range []string{`{"url":"http://127.0.0.1:1/metadata"}`, `{"url":"https://attacker.example/hook","timeout_seconds":5}`} {
		r := do(t, http.MethodPatch, url+"/v1/agents/model", keyD, body)
		if r.status != 400 || !strings.Contains(r.raw, "Agents parameter") {
			t.Errorf("re-point the seeded agent (%s): %d %s, want 400", body, r.status, r.raw)
		}
	}
	if a, err := e.store.GetAgent(t.Context(), "default", "model"); err != nil || a.URL != agentSrv.srv.URL || !a.Operator {
		t.Errorf("the seeded agent now: %q operator %v (%v)", a.URL, a.Operator, err)
	}
}
