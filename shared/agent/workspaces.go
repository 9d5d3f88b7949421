package agent

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/store"
)

// WorkspaceDefault is the name of the agent a workspace's runs call when nothing names one (the
// generic door, Telegram, the widget), when the workspace has an agent of that name.
const WorkspaceDefault = "default"

// Limits of a stored agent's texts.
const (
	MaxSystemBytes = 32 << 10 // a system prompt; the Lambda environment (4 KB) no longer bounds it
)

// StoredAgents reads a workspace's agents (store.Store.GetAgent).
type StoredAgents interface {
	GetAgent(ctx context.Context, ws, name string) (store.Agent, error)
}

// Workspaces finds the agent a run calls among its own workspace's agents, and nowhere else:
// there are no stack-wide agents (the stack's Agents parameter is seeded into the default
// workspace). Built agents are cached for ttl, at most maxCachedAgents of them, with the secrets
// the store opened (in this process's memory only; the table keeps them sealed). Safe for
// concurrent use.
type Workspaces struct {
	st           StoredAgents
	ttl          time.Duration
	now          func() time.Time
	defaultWS    string
	defaultAgent string  // the stack's Agent parameter: the default workspace's unnamed agent
	tenant       Options // agents of any workspace: a client that dials public addresses only (unless configured)
	operator     Options // agents the stack's parameters seeded: the operator's, private addresses allowed

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	agent   Agent
	history int
	err     error
	expires time.Time
}

const maxCachedAgents = 1000

// NewWorkspaces returns a Workspaces. tenant configures the agents the management API created
// (its Client must refuse private addresses unless the stack allows them); operator the agents
// seeded from the stack's parameters.
func NewWorkspaces(st StoredAgents, ttl time.Duration, now func() time.Time, defaultWS, defaultAgent string, tenant, operator Options) *Workspaces {
	return &Workspaces{st: st, ttl: ttl, now: now, defaultWS: defaultWS, defaultAgent: defaultAgent,
		tenant: tenant, operator: operator, cache: map[string]cached{}}
}

// Get returns the agent named name of workspace ws and how many earlier turns it takes. "" is
// the workspace's agent named "default", else (default workspace only) the stack's Agent, else
// echo. A name the workspace has no agent for is a NotFound error (the run fails); a store
// outage is returned as it is (the run is retried).
func (w *Workspaces) Get(ctx context.Context, ws, name string) (Agent, int, error) {
	if name == "" {
		a, h, err := w.get(ctx, ws, WorkspaceDefault)
		if apierr.CodeOf(err) != apierr.NotFound {
			return a, h, err
		}
		if ws != w.defaultWS || w.defaultAgent == "" {
			return Echo{}, 0, nil
		}
		name = w.defaultAgent
	}
	if name == TypeEcho {
		return Echo{}, 0, nil
	}
	return w.get(ctx, ws, name)
}

func (w *Workspaces) get(ctx context.Context, ws, name string) (Agent, int, error) {
	now := w.now()
	k := ws + "\x00" + name
	w.mu.Lock()
	e, ok := w.cache[k]
	w.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.agent, e.history, e.err
	}
	e = cached{expires: now.Add(w.ttl)}
	sa, err := w.st.GetAgent(ctx, ws, name)
	switch {
	case apierr.CodeOf(err) == apierr.NotFound:
		e.err = apierr.New(apierr.NotFound, "agent %s is not an agent of this workspace", quote(name, maxNameLen))
	case err != nil:
		return nil, 0, err // never cache an outage
	default:
		e.agent, e.history, e.err = w.build(sa)
	}
	w.mu.Lock()
	if len(w.cache) >= maxCachedAgents {
		clear(w.cache)
	}
	w.cache[k] = e
	w.mu.Unlock()
	return e.agent, e.history, e.err
}

// build makes the agent of a stored spec, with the checks of the Agents parameter.
func (w *Workspaces) build(a store.Agent) (Agent, int, error) {
	o := w.tenant
	if a.Operator && a.WorkspaceID == w.defaultWS {
		o = w.operator
	}
	o.OpenAIAPIKey = "" // a stored agent holds its own key or none: never the operator's
	spec := map[string]any{"type": a.Type}
	switch a.Type {
	case TypeWebhook:
		spec["url"], spec["secret"] = a.URL, a.Secret
	case TypeOpenAI:
		spec["model"] = a.Model
		for k, v := range map[string]string{"baseUrl": a.BaseURL, "apiKey": a.Secret, "system": a.System} {
			if v != "" {
				spec[k] = v
			}
		}
		if a.MaxHistory != 0 {
			spec["maxHistory"] = a.MaxHistory
		}
	}
	if a.TimeoutSeconds != 0 && a.Type != TypeEcho {
		spec["timeoutSeconds"] = a.TimeoutSeconds
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, 0, err
	}
	ag, hist, err := build(a.Name, raw, o)
	if err != nil {
		// A stored agent the registry cannot build (it was validated when stored): the run fails.
		return nil, 0, apierr.Wrap(apierr.Invalid, err, "agent "+quote(a.Name, maxNameLen)+" cannot be used")
	}
	return ag, hist, nil
}

// Seeds returns the agents of the stack's Agents parameter (agentsJSON, checked as ParseRegistry
// checks it) as stored agents of workspace ws, marked as the operator's. An openai agent without
// an API key takes openAIKey (the stack's OpenAIApiKey), as it did from the parameter.
func Seeds(agentsJSON, ws, openAIKey string) ([]store.Agent, error) {
	if _, err := ParseRegistry(agentsJSON, Options{OpenAIAPIKey: openAIKey}); err != nil {
		return nil, err
	}
	if strings.TrimSpace(agentsJSON) == "" {
		return nil, nil
	}
	entries, err := decodeEntries(agentsJSON)
	if err != nil {
		return nil, err
	}
	out := make([]store.Agent, 0, len(entries))
	for _, e := range entries {
		s, _, _, _ := decodeSpec(e.raw)
		a := store.Agent{WorkspaceID: ws, Name: e.name, Type: s.Type, URL: s.URL, BaseURL: s.BaseURL, Model: s.Model,
			System: s.System, MaxHistory: s.MaxHistory, TimeoutSeconds: s.TimeoutSeconds, Secret: s.Secret, Operator: true}
		if s.Type == TypeOpenAI {
			a.Secret = cmp.Or(s.APIKey, openAIKey)
		}
		out = append(out, a)
	}
	return out, nil
}

// PutSeeds writes the stack's agents (Seeds) with put.
func PutSeeds(ctx context.Context, put func(context.Context, store.Agent) error, seeds []store.Agent) error {
	for _, a := range seeds {
		if err := put(ctx, a); err != nil {
			return fmt.Errorf("seed agent %s: %w", a.Name, err)
		}
	}
	return nil
}
