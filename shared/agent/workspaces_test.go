package agent

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/store"
)

// storedAgents is a table of agents by workspace and name; down makes the next read fail.
type storedAgents struct {
	mu     sync.Mutex
	agents map[string]store.Agent // "ws/name"
	down   bool
	reads  int
}

func (s *storedAgents) GetAgent(_ context.Context, ws, name string) (store.Agent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.down {
		s.down = false
		return store.Agent{}, errors.New("table throttled")
	}
	a, ok := s.agents[ws+"/"+name]
	if !ok {
		return store.Agent{}, apierr.New(apierr.NotFound, "agent not found")
	}
	return a, nil
}

// dialer records which client made a call (the tenant's or the operator's) and where to.
type dialer struct {
	name  string
	calls *[]string
	mu    *sync.Mutex
}

func (d dialer) RoundTrip(r *http.Request) (*http.Response, error) {
	d.mu.Lock()
	*d.calls = append(*d.calls, d.name+" "+r.URL.Host)
	d.mu.Unlock()
	return &http.Response{StatusCode: http.StatusNoContent, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: r}, nil
}

func hook(ws, name, host string, operator bool) store.Agent {
	return store.Agent{WorkspaceID: ws, Name: name, Type: TypeWebhook, URL: "https://" + host + "/agent", Secret: testSecret, Operator: operator}
}

func TestWorkspacesFindOnlyTheWorkspacesOwnAgents(t *testing.T) {
	st := &storedAgents{agents: map[string]store.Agent{
		"a/hook":       hook("a", "hook", "a.example", false),
		"default/op":   hook("default", "op", "op.internal", true),
		"default/mine": hook("default", "mine", "mine.example", false),
		"a/default":    hook("a", "default", "a-default.example", false),
		// Seeded-looking agent outside the default workspace: still a tenant's.
		"b/op": hook("b", "op", "b-op.internal", true),
	}}
	var mu sync.Mutex
	var calls []string
	tenant := Options{Client: &http.Client{Transport: dialer{"tenant", &calls, &mu}}}
	operator := Options{Client: &http.Client{Transport: dialer{"operator", &calls, &mu}}}
	now := time.Unix(1_750_000_000, 0)
	w := NewWorkspaces(st, time.Minute, func() time.Time { return now }, "default", "op", tenant, operator)
	ctx := context.Background()

	// Another workspace's agent is not found, by name or as a default.
	if _, _, err := w.Get(ctx, "b", "hook"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("b asking for a's agent: %v", err)
	}
	if _, _, err := w.Get(ctx, "b", "mine"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("b asking for the default workspace's agent: %v", err)
	}
	// No name: the workspace's "default" agent, else (default workspace) the stack's Agent, else echo.
	if ag, _, err := w.Get(ctx, "b", ""); err != nil || ag != (Echo{}) {
		t.Fatalf("b's unnamed agent: %T %v", ag, err)
	}
	for _, c := range []struct{ ws, name, want string }{
		{"a", "", "tenant a-default.example"},
		{"a", "hook", "tenant a.example"},
		{"default", "", "operator op.internal"},
		{"default", "mine", "tenant mine.example"},
		{"b", "op", "tenant b-op.internal"},
	} {
		ag, _, err := w.Get(ctx, c.ws, c.name)
		if err != nil {
			t.Fatalf("%s/%q: %v", c.ws, c.name, err)
		}
		calls = nil
		if _, err := ag.Respond(ctx, Request{Kind: KindUserSpeak, RunID: "run_1", Session: testSession, Text: "hi"}); err != nil {
			t.Fatalf("%s/%q: %v", c.ws, c.name, err)
		}
		if len(calls) != 1 || calls[0] != c.want {
			t.Errorf("%s/%q called through %v, want %q", c.ws, c.name, calls, c.want)
		}
	}

	// An outage is returned and not cached; a missing agent is cached for the ttl.
	st.down = true
	if _, _, err := w.Get(ctx, "c", "x"); err == nil || apierr.CodeOf(err) == apierr.NotFound {
		t.Fatalf("outage: %v", err)
	}
	before := st.reads
	for range 3 {
		if _, _, err := w.Get(ctx, "c", "x"); apierr.CodeOf(err) != apierr.NotFound {
			t.Fatalf("after the outage: %v", err)
		}
	}
	if st.reads != before+1 {
		t.Fatalf("%d reads for three lookups of a missing agent, want 1", st.reads-before)
	}
}
