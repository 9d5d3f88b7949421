package manage

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/agent"
	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/apigw"
	"github.com/hookgate/hookgate/shared/fields"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/store"
)

// AgentsStore is the part of the store the agent and adapter routes use.
type AgentsStore interface {
	CreateAgent(ctx context.Context, a store.Agent) (store.Agent, error)
	GetAgent(ctx context.Context, ws, name string) (store.Agent, error)
	ListAgents(ctx context.Context, ws string) ([]store.Agent, error)
	UpdateAgent(ctx context.Context, ws, name string, change func(*store.Agent) error) (store.Agent, error)
	DeleteAgent(ctx context.Context, ws, name string) error

	CreateAdapter(ctx context.Context, a store.Adapter) (store.Adapter, error)
	GetAdapter(ctx context.Context, ws, name string) (store.Adapter, error)
	ListAdapters(ctx context.Context, ws string) ([]store.Adapter, error)
	UpdateAdapter(ctx context.Context, ws, name string, change func(*store.Adapter, time.Time) error) (store.Adapter, error)
	RotateAdapterSecret(ctx context.Context, ws, name, newSecret string, overlap time.Duration) (store.Adapter, error)
	DeleteAdapter(ctx context.Context, ws, name string) error
}

// Limits of agents.
const (
	MaxAgentsPerWorkspace = 100
	MaxAgentSystemBytes   = agent.MaxSystemBytes // 32 KB: a system prompt
	MaxAgentModelLen      = 256
	MaxAgentAPIKeyLen     = 1024
	// MaxAgentBodyBytes bounds an agent's create and update bodies (a long system prompt, JSON
	// escaped); other management bodies keep MaxBodyBytes.
	MaxAgentBodyBytes = 256 << 10
)

// WithAgents adds the routes of the workspace's agents and adapters, and makes role routes and
// adapters name only agents their workspace has.
func (h *Handler) WithAgents(st AgentsStore) *Handler {
	h.agents = st
	in := &agentRoutes{h: h, store: st}
	h.routes["POST /v1/agents"] = in.createAgent
	h.routes["GET /v1/agents"] = in.listAgents
	h.routes["GET /v1/agents/{name}"] = in.getAgent
	h.routes["PATCH /v1/agents/{name}"] = in.patchAgent
	h.routes["POST /v1/agents/{name}/rotate"] = in.rotateAgent
	h.routes["DELETE /v1/agents/{name}"] = in.deleteAgent
	h.routes["POST /v1/adapters"] = in.createAdapter
	h.routes["GET /v1/adapters"] = in.listAdapters
	h.routes["GET /v1/adapters/{name}"] = in.getAdapter
	h.routes["PATCH /v1/adapters/{name}"] = in.patchAdapter
	h.routes["POST /v1/adapters/{name}/rotate"] = in.rotateAdapter
	h.routes["DELETE /v1/adapters/{name}"] = in.deleteAdapter
	return h
}

type agentRoutes struct {
	h     *Handler
	store AgentsStore
}

// AgentView is an agent as the API shows it: never its secret or API key, only whether it has one.
type AgentView struct {
	WorkspaceID    string    `json:"workspace_id"`
	Name           string    `json:"name"`
	Type           string    `json:"type"`
	URL            string    `json:"url,omitempty"`
	BaseURL        string    `json:"base_url,omitempty"`
	Model          string    `json:"model,omitempty"`
	System         string    `json:"system,omitempty"`
	MaxHistory     int       `json:"max_history,omitempty"`
	TimeoutSeconds int       `json:"timeout_seconds,omitempty"`
	HasSecret      bool      `json:"has_secret"`
	Seeded         bool      `json:"seeded,omitempty"` // from the stack's Agents parameter
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// SecretShown is the answer to creating or rotating a webhook agent: its signing secret, shown
// only here.
type SecretShown struct {
	AgentView
	Secret string `json:"secret,omitempty"`
}

func agentView(a store.Agent) AgentView {
	return AgentView{
		WorkspaceID: a.WorkspaceID, Name: a.Name, Type: a.Type, URL: a.URL, BaseURL: a.BaseURL, Model: a.Model,
		System: a.System, MaxHistory: a.MaxHistory, TimeoutSeconds: a.TimeoutSeconds, HasSecret: a.HasSecret,
		Seeded: a.Operator, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
	}
}

// agentBody is the body of POST and PATCH /v1/agents: every field a pointer, so that a PATCH
// changes only what it names.
type agentBody struct {
	Name           *string `json:"name"`
	Type           *string `json:"type"`
	URL            *string `json:"url"`
	Secret         *string `json:"secret"`
	BaseURL        *string `json:"base_url"`
	Model          *string `json:"model"`
	APIKey         *string `json:"api_key"`
	System         *string `json:"system"`
	MaxHistory     *int    `json:"max_history"`
	TimeoutSeconds *int    `json:"timeout_seconds"`
	WorkspaceID    string  `json:"workspace_id"`
}

func agentBodyOf(req *events.APIGatewayV2HTTPRequest, optional bool) (agentBody, error) {
	var b agentBody
	raw, err := apigw.Body(req, MaxAgentBodyBytes)
	if err != nil {
		return b, err
	}
	if err := fields.CheckJSON(raw); err != nil {
		return b, err
	}
	return b, decodeBody(raw, &b, optional)
}

// applyAgent applies the body's fields to a and checks the result as a whole: each field must
// apply to the agent's type, and the agent must build. Secrets (secret, api_key) are set only
// at creation and by a rotation; allowSecret says which.
func (in *agentRoutes) applyAgent(a *store.Agent, b agentBody, allowSecret bool) error {
	// A seeded agent is the operator's: it may dial private addresses and an openai one holds the
	// stack's OpenAIApiKey, so where it calls changes with the Agents parameter only.
	if a.Operator && (b.URL != nil && *b.URL != a.URL || b.BaseURL != nil && *b.BaseURL != a.BaseURL) {
		return invalid("url and base_url of an agent seeded from the stack's Agents parameter change with that parameter")
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&a.URL, b.URL)
	set(&a.BaseURL, b.BaseURL)
	set(&a.Model, b.Model)
	set(&a.System, b.System)
	if b.MaxHistory != nil {
		a.MaxHistory = *b.MaxHistory
	}
	if b.TimeoutSeconds != nil {
		a.TimeoutSeconds = *b.TimeoutSeconds
	}
	only := map[string][]string{ // field → the types it applies to
		"url": {agent.TypeWebhook}, "secret": {agent.TypeWebhook},
		"base_url": {agent.TypeOpenAI}, "model": {agent.TypeOpenAI}, "api_key": {agent.TypeOpenAI},
		"system": {agent.TypeOpenAI}, "max_history": {agent.TypeOpenAI},
		"timeout_seconds": {agent.TypeWebhook, agent.TypeOpenAI},
	}
	given := map[string]bool{"url": b.URL != nil, "secret": b.Secret != nil, "base_url": b.BaseURL != nil, "model": b.Model != nil,
		"api_key": b.APIKey != nil, "system": b.System != nil, "max_history": b.MaxHistory != nil, "timeout_seconds": b.TimeoutSeconds != nil}
	for _, f := range []string{"url", "secret", "base_url", "model", "api_key", "system", "max_history", "timeout_seconds"} {
		if given[f] && !slices.Contains(only[f], a.Type) {
			return invalid("%s does not apply to a %s agent", f, a.Type)
		}
	}
	if !allowSecret && (b.Secret != nil || b.APIKey != nil) {
		return invalid("secrets change by POST /v1/agents/{name}/rotate only")
	}
	switch a.Type {
	case agent.TypeWebhook:
		if err := checkURL(a.URL, in.h.cfg.AllowHTTPURLs, in.h.cfg.OwnHosts); err != nil {
			return err
		}
		if b.Secret != nil {
			if err := checkSecret(*b.Secret); err != nil {
				return err
			}
			a.Secret = *b.Secret
		}
	case agent.TypeOpenAI:
		if strings.TrimSpace(a.Model) == "" || len(a.Model) > MaxAgentModelLen || !fields.Printable(a.Model) {
			return invalid("model is required: 1 to %d printable characters", MaxAgentModelLen)
		}
		if a.BaseURL != "" {
			if err := checkURL(a.BaseURL, in.h.cfg.AllowHTTPURLs, in.h.cfg.OwnHosts); err != nil {
				return invalid("base_url%s", strings.TrimPrefix(apierr.MessageOf(err), "url"))
			}
		}
		if len(a.System) > MaxAgentSystemBytes || !fields.Printable(strings.NewReplacer("\n", "", "\t", "", "\r", "").Replace(a.System)) {
			return invalid("system must be at most %d bytes of printable text (new lines and tabs allowed)", MaxAgentSystemBytes)
		}
		if a.MaxHistory < 0 || a.MaxHistory > agent.MaxHistoryLimit {
			return invalid("max_history must be from 0 (the default, %d) to %d", agent.DefaultMaxHistory, agent.MaxHistoryLimit)
		}
		if b.APIKey != nil {
			if err := checkAPIKey(*b.APIKey); err != nil {
				return err
			}
			a.Secret = *b.APIKey
		}
	}
	if a.TimeoutSeconds < 0 || a.TimeoutSeconds > agent.MaxTimeoutSeconds {
		return invalid("timeout_seconds must be from 0 (the default, %d) to %d", agent.DefaultTimeoutSeconds, agent.MaxTimeoutSeconds)
	}
	return nil
}

// checkAPIKey: a bearer token as providers issue them, printable ASCII without white space.
func checkAPIKey(k string) error {
	ok := k != "" && len(k) <= MaxAgentAPIKeyLen
	for _, c := range []byte(k) {
		ok = ok && c > ' ' && c < 0x7f
	}
	if !ok {
		return invalid("api_key must be 1 to %d printable ASCII characters without white space", MaxAgentAPIKeyLen)
	}
	return nil
}

// POST /v1/agents {name, type, url?, secret?, base_url?, model?, api_key?, system?, max_history?,
// timeout_seconds?, workspace_id?} → 201; a webhook agent's signing secret (generated when not
// given) is shown only here.
func (in *agentRoutes) createAgent(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	b, err := agentBodyOf(req, false)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	a := store.Agent{}
	if b.Name != nil {
		a.Name = *b.Name
	}
	if b.Type != nil {
		a.Type = *b.Type
	}
	switch {
	case !validAgentName(a.Name):
		return events.APIGatewayV2HTTPResponse{}, invalid("name must be 1 to %d of a-z, 0-9, _ and -, starting with a letter or digit", MaxAgentNameLen)
	case a.Name == agent.TypeEcho:
		return events.APIGatewayV2HTTPResponse{}, invalid("name echo is the built-in agent")
	}
	switch a.Type {
	case agent.TypeWebhook, agent.TypeOpenAI, agent.TypeEcho:
	case "":
		return events.APIGatewayV2HTTPResponse{}, invalid("type is required: webhook, openai or echo")
	default:
		return events.APIGatewayV2HTTPResponse{}, invalid("type must be webhook, openai or echo")
	}
	shown := ""
	if a.Type == agent.TypeWebhook && b.Secret == nil {
		shown = outbound.NewSecret()
		a.Secret = shown
	}
	if err := in.applyAgent(&a, b, true); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if a.Type == agent.TypeWebhook && b.Secret != nil {
		shown = *b.Secret
	}
	ws, err := c.workspaceFor(b.WorkspaceID)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	a.WorkspaceID = ws
	if all, err := in.store.ListAgents(ctx, ws); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	} else if len(all) >= MaxAgentsPerWorkspace {
		return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Conflict, "a workspace has at most %d agents", MaxAgentsPerWorkspace)
	}
	created, err := in.store.CreateAgent(ctx, a)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	in.h.audit(ctx, c, "agent created", "agent", a.Name, "type", a.Type, "target_workspace_id", ws)
	resp := respond(http.StatusCreated, SecretShown{AgentView: agentView(created), Secret: shown})
	resp.Headers["location"] = "/v1/agents/" + a.Name
	return resp, nil
}

// GET /v1/agents[?workspace_id=] → {data, next_cursor}: the workspace's agents by name.
func (in *agentRoutes) listAgents(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, err := c.workspaceFor(req.QueryStringParameters["workspace_id"])
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	as, err := in.store.ListAgents(ctx, ws)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	out := list[AgentView]{Data: make([]AgentView, 0, len(as))}
	for _, a := range as {
		out.Data = append(out.Data, agentView(a))
	}
	return respond(http.StatusOK, out), nil
}

// agentRef is the workspace and the {name} of a request about one agent; a name no agent can
// have is not found without asking the store.
func agentRef(c Caller, req *events.APIGatewayV2HTTPRequest) (string, string, error) {
	ws, err := c.workspaceFor(req.QueryStringParameters["workspace_id"])
	if err != nil {
		return "", "", err
	}
	name := req.PathParameters["name"]
	if !validAgentName(name) {
		return "", "", apierr.New(apierr.NotFound, "agent not found")
	}
	return ws, name, nil
}

// GET /v1/agents/{name}[?workspace_id=]. Another workspace's agent is not found.
func (in *agentRoutes) getAgent(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, name, err := agentRef(c, req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	a, err := in.store.GetAgent(ctx, ws, name)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return respond(http.StatusOK, agentView(a)), nil
}

// PATCH /v1/agents/{name}[?workspace_id=] {url?, base_url?, model?, system?, max_history?,
// timeout_seconds?} → the agent. Name, type and secrets do not change here, nor where a seeded
// agent points (url, base_url).
func (in *agentRoutes) patchAgent(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, name, err := agentRef(c, req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	b, err := agentBodyOf(req, false)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if b.Name != nil || b.Type != nil || b.WorkspaceID != "" {
		return events.APIGatewayV2HTTPResponse{}, invalid("name, type and workspace_id cannot change: create another agent")
	}
	a, err := in.store.UpdateAgent(ctx, ws, name, func(a *store.Agent) error {
		return in.applyAgent(a, b, false) // which refuses to move a seeded agent
	})
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	in.h.audit(ctx, c, "agent updated", "agent", name, "target_workspace_id", ws)
	return respond(http.StatusOK, agentView(a)), nil
}

// POST /v1/agents/{name}/rotate[?workspace_id=] → the agent. A webhook agent takes {secret?}
// (generated when not given; shown only in the answer), an openai agent {api_key} (required).
// The new secret is used from the next call on (within the worker's cache time): there is no
// overlap, as Hookgate holds the only copy it signs or authenticates with.
func (in *agentRoutes) rotateAgent(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, name, err := agentRef(c, req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	var b struct {
		Secret *string `json:"secret"`
		APIKey *string `json:"api_key"`
	}
	if err := body(req, &b, true); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	shown := ""
	a, err := in.store.UpdateAgent(ctx, ws, name, func(a *store.Agent) error {
		switch a.Type {
		case agent.TypeWebhook:
			if b.APIKey != nil {
				return invalid("api_key does not apply to a webhook agent")
			}
			if b.Secret == nil {
				shown = outbound.NewSecret()
				b.Secret = &shown
			} else {
				shown = *b.Secret
			}
		case agent.TypeOpenAI:
			if b.Secret != nil {
				return invalid("secret does not apply to an openai agent: give api_key")
			}
			if b.APIKey == nil {
				return invalid("api_key is required: the provider issues it")
			}
		default:
			return invalid("an echo agent has no secret")
		}
		return in.applyAgent(a, agentBody{Secret: b.Secret, APIKey: b.APIKey}, true)
	})
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	in.h.audit(ctx, c, "agent secret rotated", "agent", name, "target_workspace_id", ws)
	return respond(http.StatusOK, SecretShown{AgentView: agentView(a), Secret: shown}), nil
}

// DELETE /v1/agents/{name}[?workspace_id=] → 204. Runs that name it afterwards fail; routes and
// adapters that name it are refused until they name another.
func (in *agentRoutes) deleteAgent(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, name, err := agentRef(c, req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if err := in.store.DeleteAgent(ctx, ws, name); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	in.h.audit(ctx, c, "agent deleted", "agent", name, "target_workspace_id", ws)
	return noContent(), nil
}

// checkWorkspaceAgent refuses an agent name the workspace has no agent for ("echo" always is).
func checkWorkspaceAgent(ctx context.Context, st AgentsStore, ws, field, name string) error {
	if name == agent.TypeEcho {
		return nil
	}
	if !validAgentName(name) {
		return invalid("%s must be 1 to %d of a-z, 0-9, _ and -, starting with a letter or digit", field, MaxAgentNameLen)
	}
	_, err := st.GetAgent(ctx, ws, name)
	if apierr.CodeOf(err) == apierr.NotFound {
		return invalid("%s %q is not an agent of this workspace (create it with POST /v1/agents)", field, name)
	}
	return err
}
