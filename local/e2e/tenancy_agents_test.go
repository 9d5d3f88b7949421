package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/store"
)

// Agents and adapters are workspace resources (issue 12, item 1): each test uses workspaces of
// its own on the shared stack, and adapter names of its own (adapter names are global: they are
// the /webhook/{name} URL).

// countingAgent is a webhook agent that counts the requests it gets, signed or not.
type countingAgent struct {
	srv   *httptest.Server
	calls atomic.Int32
}

func newCountingAgent(t *testing.T) *countingAgent {
	a := &countingAgent{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"type":"speak","text":"the counting agent answered"}`)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// wsKey creates an API key of ws (with the admin key) and returns headers that use it.
func wsKey(t *testing.T, e *env, ws string) map[string]string {
	t.Helper()
	r := do(t, http.MethodPost, e.stack.URL+"/v1/api-keys", adminHeaders(), fmt.Sprintf(`{"name":"tenant","workspace_id":%q}`, ws))
	if r.status != 201 {
		t.Fatalf("create a key of %s: %d %s", ws, r.status, r.raw)
	}
	return map[string]string{"x-api-key": r.body["key"].(string), "content-type": "application/json"}
}

func mustStatus(t *testing.T, what string, r reply, want int) reply {
	t.Helper()
	if r.status != want {
		t.Fatalf("%s: %d %s, want %d", what, r.status, r.raw, want)
	}
	return r
}

// A workspace cannot route its events, or point its adapters, at another workspace's agent, nor
// at one of the default workspace's (where the stack's Agents are seeded): the management API
// refuses the name with 400 and stores nothing. A route written past the API (straight into the
// table) still calls nothing: the worker looks agents up in the run's own workspace only.
func TestWorkspaceCannotUseAnotherWorkspacesAgent(t *testing.T) {
	t.Parallel()
	e := sharedStack(t)
	n := time.Now().UnixNano() % 1e9
	wsA, wsB := fmt.Sprintf("ten-a-%d", n), fmt.Sprintf("ten-b-%d", n)
	victim := newCountingAgent(t)
	keyA, keyB := wsKey(t, e, wsA), wsKey(t, e, wsB)
	secret := "whsec_" + "dGVuYW50LWEtYWdlbnQtc2VjcmV0LTAxMjM0NTY3"
	mustStatus(t, "A creates its agent", do(t, http.MethodPost, e.stack.URL+"/v1/agents", keyA,
		fmt.Sprintf(`{"name":"a-agent","type":"webhook","url":%q,"secret":%q}`, victim.srv.URL, secret)), 201)
	// An agent of the default workspace, as the stack's Agents parameter seeds them.
	stackAgent := fmt.Sprintf("stack-%d", n)
	mustStatus(t, "the default workspace's agent", do(t, http.MethodPost, e.stack.URL+"/v1/agents", adminHeaders(),
		fmt.Sprintf(`{"name":%q,"type":"webhook","url":%q}`, stackAgent, victim.srv.URL)), 201)

	for _, name := range []string{"a-agent", stackAgent} {
		r := do(t, http.MethodPut, e.stack.URL+"/v1/routes", keyB, fmt.Sprintf(`{"routes":[{"pattern":"*","agent":%q}]}`, name))
		if r.status != 400 || !strings.Contains(r.raw, "routes[0].agent") {
			t.Errorf("B routes to %s: %d %s, want 400 naming routes[0].agent", name, r.status, r.raw)
		}
		adp := fmt.Sprintf("ten-b-%s-%d", name[:1], n)
		r = do(t, http.MethodPost, e.stack.URL+"/v1/adapters", keyB, fmt.Sprintf(`{"name":%q,"agent":%q}`, adp, name))
		if r.status != 400 || !strings.Contains(r.raw, "agent") {
			t.Errorf("B's adapter naming %s: %d %s, want 400 naming agent", name, r.status, r.raw)
		}
		if r := do(t, http.MethodGet, e.stack.URL+"/v1/adapters/"+adp, keyB, ""); r.status != 404 {
			t.Errorf("the refused adapter %s was stored: %d %s", adp, r.status, r.raw)
		}
	}
	// B's own adapter cannot be moved onto A's agent either.
	own := fmt.Sprintf("ten-b-own-%d", n)
	mustStatus(t, "B's own adapter", do(t, http.MethodPost, e.stack.URL+"/v1/adapters", keyB, fmt.Sprintf(`{"name":%q}`, own)), 201)
	if r := do(t, http.MethodPatch, e.stack.URL+"/v1/adapters/"+own, keyB, `{"agent":"a-agent"}`); r.status != 400 {
		t.Errorf("B's adapter patched onto A's agent: %d %s, want 400", r.status, r.raw)
	}
	if r := do(t, http.MethodGet, e.stack.URL+"/v1/routes", keyB, ""); r.status != 200 || strings.Contains(r.raw, "a-agent") {
		t.Fatalf("B's routes after the refusals: %d %s", r.status, r.raw)
	}
	// Nor can B read, change or delete A's agent: it does not exist for B.
	for _, m := range []string{http.MethodGet, http.MethodPatch, http.MethodDelete} {
		if r := do(t, m, e.stack.URL+"/v1/agents/a-agent", keyB, `{"timeout_seconds":5}`); r.status != 404 {
			t.Errorf("%s A's agent with B's key: %d %s, want 404", m, r.status, r.raw)
		}
	}

	// Defence in depth: a route naming A's agent written straight into B's routes.
	if err := e.store.PutRoleRoutes(context.Background(), wsB, []store.RoleRoute{{Pattern: "*", Agent: "a-agent"}}); err != nil {
		t.Fatal(err)
	}
	createNoneSource(t, e, wsB, "saas")
	r := postWebhook(t, e, wsB, "source=saas", nil, fmt.Sprintf(`{"type":"probe","id":"probe-%d"}`, n))
	if r.status != 202 || r.body["run_id"] == nil {
		t.Fatalf("B's routed webhook: %d %s", r.status, r.raw)
	}
	var run store.Run
	waitFor(t, "B's routed run to end", 30*time.Second, func() bool {
		var err error
		run, err = e.store.GetRun(context.Background(), wsB, r.body["run_id"].(string))
		return err == nil && (run.Status == store.RunFailed || run.Status == store.RunCompleted)
	})
	if run.Status != store.RunFailed || !strings.Contains(run.Error, "agent") {
		t.Fatalf("B's run on A's agent: %s %q, want failed for an unknown agent", run.Status, run.Error)
	}
	if c := victim.calls.Load(); c != 0 {
		t.Fatalf("A's agent was called %d times for B", c)
	}
}

// Agents and adapters are created, listed (never with a secret), changed, rotated and deleted per
// workspace; a rotated adapter secret stops opening the adapter once its overlap (here none) ends.
func TestAgentsAndAdaptersLifecycle(t *testing.T) {
	t.Parallel()
	e := sharedStack(t)
	n := time.Now().UnixNano() % 1e9
	ws := fmt.Sprintf("ten-life-%d", n)
	key := wsKey(t, e, ws)
	agentSrv := newCountingAgent(t)
	url := e.stack.URL

	// Agents: a webhook agent with a generated secret, an OpenAI-compatible one with an API key.
	created := mustStatus(t, "create webhook agent", do(t, http.MethodPost, url+"/v1/agents", key,
		fmt.Sprintf(`{"name":"helper","type":"webhook","url":%q,"timeout_seconds":10}`, agentSrv.srv.URL)), 201)
	hookSecret, _ := created.body["secret"].(string)
	if !strings.HasPrefix(hookSecret, "whsec_") {
		t.Fatalf("no generated secret in %s", created.raw)
	}
	apiKey := fmt.Sprintf("sk-tenant-api-key-%d-0123456789", n)
	mustStatus(t, "create openai agent", do(t, http.MethodPost, url+"/v1/agents", key,
		fmt.Sprintf(`{"name":"gpt","type":"openai","base_url":"http://127.0.0.1:9/v1","model":"m1","api_key":%q}`, apiKey)), 201)
	for _, bad := range []string{
		`{"name":"echo","type":"webhook","url":"http://127.0.0.1:9"}`,
		`{"name":"x","type":"webhook"}`,
		`{"name":"x","type":"openai","base_url":"http://127.0.0.1:9/v1"}`,
		`{"name":"x","type":"webhook","url":"http://127.0.0.1:9","secret":"short"}`,
		`{"name":"x","type":"openai","model":"m","api_key":"k","url":"http://127.0.0.1:9"}`,
		`{"name":"x","type":"robot"}`,
		`{"name":"x","type":"webhook","url":"http://127.0.0.1:9","bogus":1}`,
	} {
		if r := do(t, http.MethodPost, url+"/v1/agents", key, bad); r.status != 400 || r.errorCode() != "invalid_request" {
			t.Errorf("create agent %s: %d %s, want 400", bad, r.status, r.raw)
		}
	}
	if r := do(t, http.MethodPost, url+"/v1/agents", key, fmt.Sprintf(`{"name":"helper","type":"webhook","url":%q}`, agentSrv.srv.URL)); r.status != 409 {
		t.Errorf("create the agent again: %d %s, want 409", r.status, r.raw)
	}
	noSecrets := func(what string, r reply, secrets ...string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(r.raw, s) {
				t.Fatalf("%s shows a secret: %s", what, r.raw)
			}
		}
	}
	list := mustStatus(t, "list agents", do(t, http.MethodGet, url+"/v1/agents", key, ""), 200)
	noSecrets("the agent list", list, hookSecret, apiKey)
	if !strings.Contains(list.raw, `"helper"`) || !strings.Contains(list.raw, `"gpt"`) || !strings.Contains(list.raw, `"has_secret":true`) {
		t.Fatalf("agent list: %s", list.raw)
	}
	shown := mustStatus(t, "show agent", do(t, http.MethodGet, url+"/v1/agents/gpt", key, ""), 200)
	noSecrets("the agent", shown, apiKey)
	patched := mustStatus(t, "patch agent", do(t, http.MethodPatch, url+"/v1/agents/gpt", key, `{"model":"m2","max_history":5}`), 200)
	if patched.body["model"] != "m2" || patched.body["max_history"] != float64(5) {
		t.Fatalf("patched agent: %s", patched.raw)
	}
	noSecrets("the patched agent", patched, apiKey)
	if r := do(t, http.MethodPatch, url+"/v1/agents/gpt", key, `{"url":"http://127.0.0.1:9"}`); r.status != 400 {
		t.Errorf("patch url onto an openai agent: %d %s, want 400", r.status, r.raw)
	}
	rotated := mustStatus(t, "rotate webhook agent", do(t, http.MethodPost, url+"/v1/agents/helper/rotate", key, ""), 200)
	if s, _ := rotated.body["secret"].(string); !strings.HasPrefix(s, "whsec_") || s == hookSecret {
		t.Fatalf("rotated agent secret: %s", rotated.raw)
	}
	if r := do(t, http.MethodPost, url+"/v1/agents/gpt/rotate", key, ""); r.status != 400 {
		t.Errorf("rotate an openai agent without api_key: %d %s, want 400", r.status, r.raw)
	}

	// Adapters: one calling the webhook agent.
	name := fmt.Sprintf("ten-life-%d", n)
	made := mustStatus(t, "create adapter", do(t, http.MethodPost, url+"/v1/adapters", key,
		fmt.Sprintf(`{"name":%q,"agent":"helper","reply_hosts":["127.0.0.1"],"max_in_flight":4}`, name)), 201)
	oldSecret, _ := made.body["secret"].(string)
	if len(oldSecret) < 16 {
		t.Fatalf("no adapter secret in %s", made.raw)
	}
	if r := do(t, http.MethodPost, url+"/v1/adapters", adminHeaders(), fmt.Sprintf(`{"name":%q}`, name)); r.status != 409 {
		t.Errorf("the same adapter name in another workspace: %d %s, want 409", r.status, r.raw)
	}
	for _, bad := range []string{
		fmt.Sprintf(`{"name":"%s-x","agent":"nosuch"}`, name),
		fmt.Sprintf(`{"name":"%s-x","secret":"short"}`, name),
		fmt.Sprintf(`{"name":"%s-x","reply_hosts":["https://x.example"]}`, name),
		fmt.Sprintf(`{"name":"%s-x","max_in_flight":0}`, name),
		`{"name":"Bad Name"}`,
	} {
		if r := do(t, http.MethodPost, url+"/v1/adapters", key, bad); r.status != 400 {
			t.Errorf("create adapter %s: %d %s, want 400", bad, r.status, r.raw)
		}
	}
	adpList := mustStatus(t, "list adapters", do(t, http.MethodGet, url+"/v1/adapters", key, ""), 200)
	noSecrets("the adapter list", adpList, oldSecret)
	if !strings.Contains(adpList.raw, `"`+name+`"`) || !strings.Contains(adpList.raw, `"active_secret_count":1`) {
		t.Fatalf("adapter list: %s", adpList.raw)
	}
	if r := do(t, http.MethodGet, url+"/v1/adapters/"+name, adminHeaders(), ""); r.status != 404 {
		t.Errorf("the default workspace reads another workspace's adapter: %d %s, want 404", r.status, r.raw)
	}
	post := func(secret, text string) reply {
		return do(t, http.MethodPost, url+"/webhook/"+name, map[string]string{"authorization": "Bearer " + secret, "content-type": "application/json"},
			fmt.Sprintf(`{"text":%q,"sync":true,"timeoutMs":20000}`, text))
	}
	if r := post(oldSecret, "hello"); r.status != 200 || !strings.Contains(r.raw, "the counting agent answered") {
		t.Fatalf("a run through the stored adapter: %d %s", r.status, r.raw)
	}
	if agentSrv.calls.Load() == 0 {
		t.Fatal("the workspace's agent was not called")
	}

	// Rotation without overlap: the new secret opens the adapter, the old one no longer.
	rot := mustStatus(t, "rotate adapter", do(t, http.MethodPost, url+"/v1/adapters/"+name+"/rotate", key, `{"overlap_seconds":0}`), 200)
	newSecret, _ := rot.body["secret"].(string)
	if len(newSecret) < 16 || newSecret == oldSecret {
		t.Fatalf("rotated adapter: %s", rot.raw)
	}
	waitFor(t, "the old adapter secret to stop working", 20*time.Second, func() bool { return post(oldSecret, "old").status == 401 })
	if r := post(newSecret, "new"); r.status != 200 {
		t.Fatalf("the new adapter secret: %d %s", r.status, r.raw)
	}
	// A caller-given secret, with an overlap: both open the adapter meanwhile.
	given := fmt.Sprintf("given-adapter-secret-%d", n)
	rot = mustStatus(t, "rotate adapter to a given secret", do(t, http.MethodPost, url+"/v1/adapters/"+name+"/rotate", key,
		fmt.Sprintf(`{"secret":%q,"overlap_seconds":3600}`, given)), 200)
	noSecrets("the rotation's answer", rot, newSecret)
	waitFor(t, "the given secret to work", 20*time.Second, func() bool { return post(given, "given").status == 200 })
	if r := post(newSecret, "still"); r.status != 200 {
		t.Fatalf("the previous secret within its overlap: %d %s", r.status, r.raw)
	}
	if r := mustStatus(t, "show adapter", do(t, http.MethodGet, url+"/v1/adapters/"+name, key, ""), 200); !strings.Contains(r.raw, `"active_secret_count":2`) {
		t.Fatalf("adapter during the overlap: %s", r.raw)
	}
	noSecrets("the adapter", mustStatus(t, "show adapter", do(t, http.MethodGet, url+"/v1/adapters/"+name, key, ""), 200), given, newSecret)
	mustStatus(t, "patch adapter", do(t, http.MethodPatch, url+"/v1/adapters/"+name, key, `{"max_in_flight":8,"approvers":["boss"]}`), 200)

	// Deleting: the adapter no longer opens, the agent can no longer be named.
	mustStatus(t, "delete adapter", do(t, http.MethodDelete, url+"/v1/adapters/"+name, key, ""), 204)
	waitFor(t, "the deleted adapter to refuse", 20*time.Second, func() bool { return post(given, "gone").status == 401 })
	mustStatus(t, "show deleted adapter", do(t, http.MethodGet, url+"/v1/adapters/"+name, key, ""), 404)
	mustStatus(t, "delete agent", do(t, http.MethodDelete, url+"/v1/agents/helper", key, ""), 204)
	mustStatus(t, "show deleted agent", do(t, http.MethodGet, url+"/v1/agents/helper", key, ""), 404)
	if r := do(t, http.MethodPut, url+"/v1/routes", key, `{"routes":[{"pattern":"*","agent":"helper"}]}`); r.status != 400 {
		t.Errorf("a route to the deleted agent: %d %s, want 400", r.status, r.raw)
	}
	if r := do(t, http.MethodPost, url+"/v1/adapters", key, fmt.Sprintf(`{"name":"%s-y","agent":"helper"}`, name)); r.status != 400 {
		t.Errorf("an adapter on the deleted agent: %d %s, want 400", r.status, r.raw)
	}
}

// A system prompt far beyond Lambda's 4 KB environment works as a stored agent: the OpenAI
// server sees all of it.
func TestLongSystemPromptAgent(t *testing.T) {
	t.Parallel()
	e := sharedStack(t)
	n := time.Now().UnixNano() % 1e9
	ws := fmt.Sprintf("ten-long-%d", n)
	key := wsKey(t, e, ws)
	var seen atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Messages []struct{ Role, Content string } `json:"messages"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		system := ""
		if len(req.Messages) > 0 && req.Messages[0].Role == "system" {
			system = req.Messages[0].Content
		}
		seen.Store(int32(len(system)))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"choices":[{"message":{"role":"assistant","content":"system prompt of %d bytes"}}]}`, len(system))
	}))
	t.Cleanup(srv.Close)
	system := strings.Repeat("You are a careful agent. ", 256)[:6144]
	body, _ := json.Marshal(map[string]any{"name": "long", "type": "openai", "base_url": srv.URL + "/v1", "model": "m", "system": system})
	mustStatus(t, "create the long agent", do(t, http.MethodPost, e.stack.URL+"/v1/agents", key, string(body)), 201)
	tooLong, _ := json.Marshal(map[string]any{"name": "longer", "type": "openai", "base_url": srv.URL + "/v1", "model": "m", "system": strings.Repeat("x", 33*1024)})
	if r := do(t, http.MethodPost, e.stack.URL+"/v1/agents", key, string(tooLong)); r.status != 400 || !strings.Contains(r.raw, "system") {
		t.Errorf("a 33 KB system prompt: %d %s, want 400 naming system", r.status, r.raw)
	}
	adp := fmt.Sprintf("ten-long-%d", n)
	made := mustStatus(t, "create adapter", do(t, http.MethodPost, e.stack.URL+"/v1/adapters", key, fmt.Sprintf(`{"name":%q,"agent":"long"}`, adp)), 201)
	r := do(t, http.MethodPost, e.stack.URL+"/webhook/"+adp, map[string]string{"authorization": "Bearer " + made.body["secret"].(string)},
		`{"text":"hi","sync":true,"timeoutMs":20000}`)
	if r.status != 200 || !strings.Contains(r.raw, "system prompt of 6144 bytes") || seen.Load() != 6144 {
		t.Fatalf("a run on the long agent: %d %s (server saw %d bytes)", r.status, r.raw, seen.Load())
	}
}
