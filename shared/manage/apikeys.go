package manage

import (
	"context"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/store"
)

// APIKeyView is an API key as the API shows it: never the key itself, nor its hash.
type APIKeyView struct {
	ID          string     `json:"id"`
	Prefix      string     `json:"prefix"`
	WorkspaceID string     `json:"workspace_id"`
	Name        string     `json:"name"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

// CreatedAPIKey is the response to creating a key: the only time the key is shown.
type CreatedAPIKey struct {
	APIKeyView
	Key string `json:"key"`
}

func apiKeyView(k store.APIKey) APIKeyView {
	return APIKeyView{ID: k.ID, Prefix: k.Prefix, WorkspaceID: k.WorkspaceID, Name: k.Name, CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt}
}

// POST /v1/api-keys {name, workspace_id?} → 201 with the key, shown only here.
func (h *Handler) createAPIKey(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var in struct {
		Name        string `json:"name"`
		WorkspaceID string `json:"workspace_id"`
	}
	if err := body(req, &in, false); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	in.Name = strings.TrimSpace(in.Name)
	switch {
	case in.Name == "":
		return events.APIGatewayV2HTTPResponse{}, invalid("name is required")
	case utf8.RuneCountInString(in.Name) > MaxKeyNameLen:
		return events.APIGatewayV2HTTPResponse{}, invalid("name must be at most %d characters", MaxKeyNameLen)
	}
	ws, err := c.workspaceFor(in.WorkspaceID)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	k, plaintext, err := h.store.CreateAPIKey(ctx, ws, in.Name)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	h.audit(ctx, c, "api key created", "new_key_id", k.ID, "new_key_prefix", k.Prefix, "target_workspace_id", ws)
	return respond(http.StatusCreated, CreatedAPIKey{APIKeyView: apiKeyView(k), Key: plaintext}), nil
}

// GET /v1/api-keys[?workspace_id=] → the workspace's keys, revoked ones with revoked_at.
func (h *Handler) listAPIKeys(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, err := c.workspaceFor(req.QueryStringParameters["workspace_id"])
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	keys, err := h.store.ListAPIKeys(ctx, ws)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	out := list[APIKeyView]{Data: make([]APIKeyView, 0, len(keys))}
	for _, k := range keys {
		out.Data = append(out.Data, apiKeyView(k))
	}
	return respond(http.StatusOK, out), nil
}

// DELETE /v1/api-keys/{id}[?workspace_id=] → 204; the key authenticates nothing from then on.
func (h *Handler) revokeAPIKey(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, err := c.workspaceFor(req.QueryStringParameters["workspace_id"])
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	id := req.PathParameters["id"]
	if !ids.Valid("key", id) {
		return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.NotFound, "api key not found")
	}
	if err := h.store.RevokeAPIKey(ctx, ws, id); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	h.audit(ctx, c, "api key revoked", "revoked_key_id", id, "target_workspace_id", ws)
	return noContent(), nil
}
