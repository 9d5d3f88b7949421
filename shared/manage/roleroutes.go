package manage

import (
	"context"
	"fmt"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/normalize"
	"github.com/hookgate/hookgate/shared/store"
)

// Limits of role routes.
const (
	MaxRoleRoutes   = 100
	MaxAgentNameLen = 64
)

// RoleRoutesView is the body of GET and PUT /v1/routes.
type RoleRoutesView struct {
	Routes []store.RoleRoute `json:"routes"`
}

// GET /v1/routes[?workspace_id=] → {routes: [{pattern, agent}]}.
func (in *sourceRoutes) getRoutes(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, err := c.workspaceFor(req.QueryStringParameters["workspace_id"])
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	routes, err := in.store.RoleRoutes(ctx, ws)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if routes == nil {
		routes = []store.RoleRoute{}
	}
	return respond(http.StatusOK, RoleRoutesView{Routes: routes}), nil
}

// PUT /v1/routes[?workspace_id=] {routes: [{pattern, agent}]} → the routes: they replace the
// workspace's routes as a whole ([] removes them all).
func (in *sourceRoutes) putRoutes(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, err := c.workspaceFor(req.QueryStringParameters["workspace_id"])
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	var b struct {
		Routes *[]store.RoleRoute `json:"routes"`
	}
	if err := body(req, &b, false); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if b.Routes == nil {
		return events.APIGatewayV2HTTPResponse{}, invalid("routes is required: an array of {pattern, agent} ([] removes every route)")
	}
	routes := *b.Routes
	if err := checkRoleRoutes(routes); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if in.h.agents != nil {
		for i, r := range routes {
			if err := checkWorkspaceAgent(ctx, in.h.agents, ws, fmt.Sprintf("routes[%d].agent", i), r.Agent); err != nil {
				return events.APIGatewayV2HTTPResponse{}, err
			}
		}
	}
	if routes == nil {
		routes = []store.RoleRoute{}
	}
	if err := in.store.PutRoleRoutes(ctx, ws, routes); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	in.h.audit(ctx, c, "role routes replaced", "count", len(routes), "target_workspace_id", ws)
	return respond(http.StatusOK, RoleRoutesView{Routes: routes}), nil
}

// checkRoleRoutes: at most MaxRoleRoutes, each pattern one the router can match ("*", "webhook.*",
// "webhook.<source>.*" or the exact role "webhook.<source>.<slug>") and listed once, each agent a
// name.
func checkRoleRoutes(routes []store.RoleRoute) error {
	if len(routes) > MaxRoleRoutes {
		return invalid("routes must have at most %d entries", MaxRoleRoutes)
	}
	seen := make(map[string]bool, len(routes))
	for i, r := range routes {
		if !normalize.ValidPattern(r.Pattern) {
			return invalid("routes[%d].pattern %q is not *, webhook.*, webhook.<source>.* or a role webhook.<source>.<slug> (slug: a-z, 0-9, _)", i, truncate(r.Pattern, 80))
		}
		if seen[r.Pattern] {
			return invalid("routes[%d].pattern %q is listed twice", i, truncate(r.Pattern, 80))
		}
		seen[r.Pattern] = true
		if !validAgentName(r.Agent) {
			return invalid("routes[%d].agent must be 1 to %d of a-z, 0-9, _ and -, starting with a letter or digit", i, MaxAgentNameLen)
		}
	}
	return nil
}

// validAgentName reports whether s matches ^[a-z0-9][a-z0-9_-]*$ and has at most MaxAgentNameLen bytes.
func validAgentName(s string) bool { return validName(s, MaxAgentNameLen) }

// GET /v1/bindings[?workspace_id=] → {bindings: [...]}: the latest status each connector reported
// for each channel binding.
func (in *sourceRoutes) listBindings(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, err := c.workspaceFor(req.QueryStringParameters["workspace_id"])
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	bs, err := in.store.ListBindings(ctx, ws)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if bs == nil {
		bs = []store.BindingStatus{}
	}
	return respond(http.StatusOK, map[string][]store.BindingStatus{"bindings": bs}), nil
}
