// Package manage serves the management API (ManagementFunction): API keys, subscriptions, sources, role
// routes, bindings, deliveries; it also holds the event filter (MatchEvent) the fan-out applies.
package manage

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/apigw"
	"github.com/hookgate/hookgate/shared/loop"
	"github.com/hookgate/hookgate/shared/store"
)

// Store is the part of the store the management API uses.
type Store interface {
	CreateAPIKey(ctx context.Context, ws, name string) (store.APIKey, string, error)
	LookupAPIKey(ctx context.Context, plaintext string) (store.APIKey, error)
	ListAPIKeys(ctx context.Context, ws string) ([]store.APIKey, error)
	RevokeAPIKey(ctx context.Context, ws, keyID string) error

	CreateSubscription(ctx context.Context, sub store.Subscription) (store.Subscription, error)
	GetSubscription(ctx context.Context, ws, id string) (store.Subscription, error)
	ListSubscriptions(ctx context.Context, ws string, limit int, cursor string) ([]store.Subscription, string, error)
	UpdateSubscription(ctx context.Context, ws, id string, patch store.SubscriptionPatch) (store.Subscription, error)
	DeleteSubscription(ctx context.Context, ws, id string) error
	RotateSecret(ctx context.Context, ws, id, newSecret string, overlap time.Duration) (store.Subscription, error)
	LimitsStore
}

// Config is the management API's configuration.
type Config struct {
	// DefaultWorkspace is the admin key's workspace.
	DefaultWorkspace string
	// AdminKey authenticates as the admin of every workspace. It is kept only as a SHA-256 digest
	// and compared in constant time.
	AdminKey string
	// AdminKeyPrevious is the admin key being rotated out: accepted too until it is removed.
	AdminKeyPrevious string
	// AllowHTTPURLs admits http:// destinations (local development); otherwise only https://.
	AllowHTTPURLs bool
	// OwnHosts are the gateway's own API hosts (custom domains), which no subscription URL may
	// name; so may it not name the host a request came in through, nor any execute-api host.
	OwnHosts loop.Hosts
}

// MinAdminKeyLen is the shortest admin key (HOOKGATE_ADMIN_API_KEY) a function accepts.
const MinAdminKeyLen = 16

// Request headers that carry an API key (Authorization: Bearer <key> works too).
const HeaderAPIKey = "x-api-key"

// Caller is who made a request, as authentication found it.
type Caller struct {
	Workspace string // the workspace the request acts on
	Admin     bool   // the admin key: may manage API keys of any workspace
	KeyID     string // the stored key's id; empty for the admin key
}

// route serves one route key once the caller is authenticated.
type route func(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Handler handles the management routes.
type Handler struct {
	cfg    Config
	auth   *Authenticator
	store  Store
	now    func() time.Time
	log    *slog.Logger
	routes map[string]route
	agents AgentsStore // set by WithAgents: role routes then name only the workspace's agents
}

// New returns a Handler.
func New(cfg Config, st Store, now func() time.Time, log *slog.Logger) *Handler {
	h := &Handler{cfg: cfg, auth: NewAuthenticator(cfg.DefaultWorkspace, cfg.AdminKey, st, cfg.AdminKeyPrevious), store: st, now: now, log: log}
	// API Gateway route key → handler. Add a route here and declare it on the function in template.yaml.
	h.routes = map[string]route{
		"POST /v1/api-keys":        h.createAPIKey,
		"GET /v1/api-keys":         h.listAPIKeys,
		"DELETE /v1/api-keys/{id}": h.revokeAPIKey,

		"POST /v1/webhooks":                    h.createWebhook,
		"GET /v1/webhooks":                     h.listWebhooks,
		"GET /v1/webhooks/{id}":                h.getWebhook,
		"PATCH /v1/webhooks/{id}":              h.patchWebhook,
		"DELETE /v1/webhooks/{id}":             h.deleteWebhook,
		"POST /v1/webhooks/{id}/rotate-secret": h.rotateSecret,

		"GET /v1/event-types": h.listEventTypes,
	}
	return h
}

// RouteKeys returns the route keys the handler serves, sorted (for a test against template.yaml).
func (h *Handler) RouteKeys() []string { return slices.Sorted(maps.Keys(h.routes)) }

// Handle is the Lambda handler: authenticate, then dispatch on the route key.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	c, err := h.authenticate(ctx, &req)
	if err != nil {
		return h.fail(ctx, h.log, err), nil
	}
	log := h.log.With("workspace_id", c.Workspace, "key_id", c.logID())
	r, ok := h.routes[req.RouteKey]
	if !ok {
		return h.fail(ctx, log, apierr.New(apierr.NotFound, "no such route")), nil
	}
	resp, err := r(ctx, c, &req)
	if err != nil {
		return h.fail(ctx, log, err), nil
	}
	return resp, nil
}

// authenticate finds the caller (see Authenticator).
func (h *Handler) authenticate(ctx context.Context, req *events.APIGatewayV2HTTPRequest) (Caller, error) {
	return h.auth.Authenticate(ctx, req)
}

func presentedKey(req *events.APIGatewayV2HTTPRequest) string {
	if k := strings.TrimSpace(apigw.Header(req, HeaderAPIKey)); k != "" {
		return k
	}
	if auth := apigw.Header(req, "authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		return strings.TrimSpace(auth[7:])
	}
	return ""
}

func (c Caller) logID() string {
	if c.Admin {
		return "admin"
	}
	return c.KeyID
}

// workspaceFor returns the workspace a request about API keys acts on: the caller's own, or, for
// the admin key only, the one it names.
func (c Caller) workspaceFor(requested string) (string, error) {
	if requested == "" || requested == c.Workspace {
		return c.Workspace, nil
	}
	if err := checkWorkspace("workspace_id", requested); err != nil {
		return "", err
	}
	if !c.Admin {
		return "", apierr.New(apierr.Forbidden, "only the admin key may act on another workspace")
	}
	return requested, nil
}

func (h *Handler) fail(ctx context.Context, log *slog.Logger, err error) events.APIGatewayV2HTTPResponse {
	resp := apigw.Error(ctx, log, err)
	resp.Headers["cache-control"] = "no-store"
	return resp
}

// audit logs a change with who made it. Never pass a key or a secret.
func (h *Handler) audit(ctx context.Context, c Caller, msg string, attrs ...any) {
	h.log.InfoContext(ctx, msg, append([]any{"workspace_id", c.Workspace, "key_id", c.logID()}, attrs...)...)
}

// body reads a request body within MaxBodyBytes and decodes it strictly into v.
func body(req *events.APIGatewayV2HTTPRequest, v any, optional bool) error {
	b, err := apigw.Body(req, MaxBodyBytes)
	if err != nil {
		return err
	}
	return decodeBody(b, v, optional)
}

// respond returns v as JSON; management responses are never cached (some carry secrets).
func respond(status int, v any) events.APIGatewayV2HTTPResponse {
	resp := apigw.JSON(status, v)
	resp.Headers["cache-control"] = "no-store"
	return resp
}

func noContent() events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusNoContent, Headers: map[string]string{"cache-control": "no-store"}}
}

// list is the shape of every list response.
type list[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}
