package manage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/apigw"
	"github.com/hookgate/hookgate/shared/approval"
	"github.com/hookgate/hookgate/shared/fields"
	"github.com/hookgate/hookgate/shared/store"
)

// Limits of adapters (those of the Adapters parameter).
const (
	MaxAdaptersPerWorkspace     = 100
	MaxAdapterReplyHosts        = 20
	MaxAdapterHostLen           = 253
	MinAdapterBodyBytes         = 1024
	MaxAdapterBodyBytes         = 6_000_000
	MaxAdapterInFlight          = 1000
	MaxApproverLen              = 256
	MinAdapterSecretLen         = 16
	MaxAdapterSecretLen         = 256
	DefaultAdapterRotateOverlap = 24 * time.Hour
	MaxAdapterRotateOverlap     = 30 * 24 * time.Hour
)

// hostPattern accepts a DNS name or an IP literal, without port, scheme or wildcard.
var hostPattern = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$|^[0-9a-f:.]+$`)

// AdapterView is an adapter as the API shows it: never a secret, only how many open it now (two
// or more during a rotation's overlap).
type AdapterView struct {
	WorkspaceID     string    `json:"workspace_id"`
	Name            string    `json:"name"`
	Agent           string    `json:"agent,omitempty"`
	ReplyHosts      []string  `json:"reply_hosts"`
	MaxBodyBytes    int       `json:"max_body_bytes,omitempty"`
	MaxInFlight     int       `json:"max_in_flight,omitempty"`
	Approvers       []string  `json:"approvers"`
	LegacyApprovals bool      `json:"legacy_approvals"`
	ReadAllRuns     bool      `json:"read_all_runs"`
	ActiveSecrets   int       `json:"active_secret_count"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// AdapterSecretShown is the answer to creating or rotating an adapter: its new secret, shown only
// here, and (rotation) when the previous ones stop opening it at the latest.
type AdapterSecretShown struct {
	AdapterView
	Secret            string     `json:"secret"`
	PreviousExpiresAt *time.Time `json:"previous_expires_at,omitempty"`
}

func (in *agentRoutes) adapterView(a store.Adapter) AdapterView {
	return AdapterView{
		WorkspaceID: a.WorkspaceID, Name: a.Name, Agent: a.Agent, ReplyHosts: a.ReplyHosts, MaxBodyBytes: a.MaxBodyBytes,
		MaxInFlight: a.MaxInFlight, Approvers: a.Approvers, LegacyApprovals: a.LegacyApprovals, ReadAllRuns: a.ReadAllRuns,
		ActiveSecrets: a.ActiveSecretCount(in.h.now()), CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
	}
}

// adapterBody is the body of POST and PATCH /v1/adapters.
type adapterBody struct {
	Name            *string   `json:"name"`
	Agent           *string   `json:"agent"`
	Secret          *string   `json:"secret"`
	ReplyHosts      *[]string `json:"reply_hosts"`
	MaxBodyBytes    *int      `json:"max_body_bytes"`
	MaxInFlight     *int      `json:"max_in_flight"`
	Approvers       *[]string `json:"approvers"`
	LegacyApprovals *bool     `json:"legacy_approvals"`
	ReadAllRuns     *bool     `json:"read_all_runs"`
	WorkspaceID     string    `json:"workspace_id"`
}

// applyAdapter applies the body to a and checks every field; the agent must be one of the
// workspace's own.
func (in *agentRoutes) applyAdapter(ctx context.Context, a *store.Adapter, b adapterBody) error {
	if b.Agent != nil {
		a.Agent = *b.Agent
	}
	if b.ReplyHosts != nil {
		a.ReplyHosts = make([]string, len(*b.ReplyHosts))
		for i, h := range *b.ReplyHosts {
			a.ReplyHosts[i] = strings.ToLower(h)
		}
	}
	if b.MaxBodyBytes != nil {
		a.MaxBodyBytes = *b.MaxBodyBytes
	}
	if b.MaxInFlight != nil {
		a.MaxInFlight = *b.MaxInFlight
	}
	if b.Approvers != nil {
		a.Approvers = *b.Approvers
	}
	if b.LegacyApprovals != nil {
		a.LegacyApprovals = *b.LegacyApprovals
	}
	if b.ReadAllRuns != nil {
		a.ReadAllRuns = *b.ReadAllRuns
	}
	if a.ReplyHosts == nil {
		a.ReplyHosts = []string{}
	}
	if a.Approvers == nil {
		a.Approvers = []string{}
	}
	if len(a.ReplyHosts) > MaxAdapterReplyHosts {
		return invalid("reply_hosts must have at most %d entries", MaxAdapterReplyHosts)
	}
	for i, h := range a.ReplyHosts {
		if len(h) > MaxAdapterHostLen || !hostPattern.MatchString(h) {
			return invalid("reply_hosts[%d] %q is not a bare host name (no scheme, port or wildcard)", i, truncate(h, 80))
		}
	}
	if a.MaxBodyBytes != 0 && (a.MaxBodyBytes < MinAdapterBodyBytes || a.MaxBodyBytes > MaxAdapterBodyBytes) {
		return invalid("max_body_bytes must be from %d to %d", MinAdapterBodyBytes, MaxAdapterBodyBytes)
	}
	if b.MaxInFlight != nil && (a.MaxInFlight < 1 || a.MaxInFlight > MaxAdapterInFlight) {
		return invalid("max_in_flight must be from 1 to %d", MaxAdapterInFlight)
	}
	if len(a.Approvers) > approval.MaxApprovers {
		return invalid("approvers must have at most %d entries", approval.MaxApprovers)
	}
	for i, u := range a.Approvers {
		if strings.TrimSpace(u) == "" || len(u) > MaxApproverLen || !fields.Printable(u) {
			return invalid("approvers[%d] must be 1 to %d printable characters", i, MaxApproverLen)
		}
	}
	if a.Agent != "" && b.Agent != nil {
		return checkWorkspaceAgent(ctx, in.store, a.WorkspaceID, "agent", a.Agent)
	}
	return nil
}

// checkAdapterSecret: a secret the caller chose must stand alone: 16 to 256 printable ASCII
// characters without white space (Bearer and X-Webhook-Secret carry it).
func checkAdapterSecret(s string) error {
	ok := len(s) >= MinAdapterSecretLen && len(s) <= MaxAdapterSecretLen
	for _, c := range []byte(s) {
		ok = ok && c > ' ' && c < 0x7f
	}
	if !ok {
		return invalid("secret must be %d to %d printable ASCII characters without white space", MinAdapterSecretLen, MaxAdapterSecretLen)
	}
	return nil
}

// checkedBody is body with the byte rule of agent bodies: invalid UTF-8 or an unpaired surrogate
// escape is a 400 naming the field, not a U+FFFD stored in its place.
func checkedBody(req *events.APIGatewayV2HTTPRequest, v any, optional bool) error {
	raw, err := apigw.Body(req, MaxBodyBytes)
	if err != nil {
		return err
	}
	if err := fields.CheckJSON(raw); err != nil {
		return err
	}
	return decodeBody(raw, v, optional)
}

func newAdapterSecret() string {
	var b [32]byte
	rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

// POST /v1/adapters {name, agent?, secret?, reply_hosts?, max_body_bytes?, max_in_flight?,
// approvers?, legacy_approvals?, read_all_runs?, workspace_id?} → 201 with the secret (generated
// when not given), shown only here. Adapter names are unique in the stack: they are the URL.
func (in *agentRoutes) createAdapter(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var b adapterBody
	if err := checkedBody(req, &b, false); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	name := ""
	if b.Name != nil {
		name = *b.Name
	}
	if !validName(name, 63) {
		return events.APIGatewayV2HTTPResponse{}, invalid("name must be 1 to 63 of a-z, 0-9, _ and -, starting with a letter or digit")
	}
	secret := newAdapterSecret()
	if b.Secret != nil {
		if err := checkAdapterSecret(*b.Secret); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		secret = *b.Secret
	}
	ws, err := c.workspaceFor(b.WorkspaceID)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	a := store.Adapter{WorkspaceID: ws, Name: name, Secrets: []store.SigningSecret{{Value: secret}}}
	if err := in.applyAdapter(ctx, &a, b); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if all, err := in.store.ListAdapters(ctx, ws); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	} else if len(all) >= MaxAdaptersPerWorkspace {
		return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Conflict, "a workspace has at most %d adapters", MaxAdaptersPerWorkspace)
	}
	created, err := in.store.CreateAdapter(ctx, a)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	in.h.audit(ctx, c, "adapter created", "adapter", name, "target_workspace_id", ws)
	resp := respond(http.StatusCreated, AdapterSecretShown{AdapterView: in.adapterView(created), Secret: secret})
	resp.Headers["location"] = "/v1/adapters/" + name
	return resp, nil
}

// GET /v1/adapters[?workspace_id=] → {data, next_cursor}: the workspace's adapters by name.
func (in *agentRoutes) listAdapters(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, err := c.workspaceFor(req.QueryStringParameters["workspace_id"])
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	as, err := in.store.ListAdapters(ctx, ws)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	out := list[AdapterView]{Data: make([]AdapterView, 0, len(as))}
	for _, a := range as {
		out.Data = append(out.Data, in.adapterView(a))
	}
	return respond(http.StatusOK, out), nil
}

func adapterRef(c Caller, req *events.APIGatewayV2HTTPRequest) (string, string, error) {
	ws, err := c.workspaceFor(req.QueryStringParameters["workspace_id"])
	if err != nil {
		return "", "", err
	}
	name := req.PathParameters["name"]
	if !validName(name, 63) {
		return "", "", apierr.New(apierr.NotFound, "adapter not found")
	}
	return ws, name, nil
}

// GET /v1/adapters/{name}[?workspace_id=]. Another workspace's adapter is not found.
func (in *agentRoutes) getAdapter(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, name, err := adapterRef(c, req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	a, err := in.store.GetAdapter(ctx, ws, name)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return respond(http.StatusOK, in.adapterView(a)), nil
}

// PATCH /v1/adapters/{name}[?workspace_id=] {agent?, reply_hosts?, max_body_bytes?,
// max_in_flight?, approvers?, legacy_approvals?, read_all_runs?} → the adapter.
func (in *agentRoutes) patchAdapter(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, name, err := adapterRef(c, req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	var b adapterBody
	if err := checkedBody(req, &b, false); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if b.Name != nil || b.Secret != nil || b.WorkspaceID != "" {
		return events.APIGatewayV2HTTPResponse{}, invalid("name and workspace_id cannot change, and secret changes by POST /v1/adapters/{name}/rotate")
	}
	a, err := in.store.UpdateAdapter(ctx, ws, name, func(a *store.Adapter, _ time.Time) error { return in.applyAdapter(ctx, a, b) })
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	in.h.audit(ctx, c, "adapter updated", "adapter", name, "target_workspace_id", ws)
	return respond(http.StatusOK, in.adapterView(a)), nil
}

// POST /v1/adapters/{name}/rotate[?workspace_id=] {secret?, overlap_seconds?} → the adapter with
// its new secret (generated when not given), shown only here. The previous secrets keep opening
// the adapter until previous_expires_at (default overlap 24 hours; 0 ends them now).
func (in *agentRoutes) rotateAdapter(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, name, err := adapterRef(c, req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	var b struct {
		Secret         *string `json:"secret"`
		OverlapSeconds *int64  `json:"overlap_seconds"`
	}
	if err := checkedBody(req, &b, true); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	overlap, err := rotateOverlap(b.OverlapSeconds, DefaultAdapterRotateOverlap, MaxAdapterRotateOverlap)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	secret := newAdapterSecret()
	if b.Secret != nil {
		if err := checkAdapterSecret(*b.Secret); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		secret = *b.Secret
	}
	a, err := in.store.RotateAdapterSecret(ctx, ws, name, secret, overlap)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	in.h.audit(ctx, c, "adapter secret rotated", "adapter", name, "overlap_seconds", int64(overlap/time.Second), "target_workspace_id", ws)
	until := a.UpdatedAt.Add(overlap)
	return respond(http.StatusOK, AdapterSecretShown{AdapterView: in.adapterView(a), Secret: secret, PreviousExpiresAt: &until}), nil
}

// DELETE /v1/adapters/{name}[?workspace_id=] → 204; its routes answer 401 from then on.
func (in *agentRoutes) deleteAdapter(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ws, name, err := adapterRef(c, req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if err := in.store.DeleteAdapter(ctx, ws, name); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	in.h.audit(ctx, c, "adapter deleted", "adapter", name, "target_workspace_id", ws)
	return noContent(), nil
}
