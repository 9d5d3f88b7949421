package widget

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/apigw"
	"github.com/hookgate/hookgate/shared/fields"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/limit"
	"github.com/hookgate/hookgate/shared/loop"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/trace"
	"github.com/hookgate/hookgate/shared/verify"
)

// Config is the widget's configuration.
type Config struct {
	Workspace  string          // the workspace widget sessions belong to
	Origins    Origins         // the sites allowed to open sessions
	Keys       *verify.Secrets // signs tokens (the first) and verifies them (all)
	SessionTTL time.Duration   // how long a token holds
}

// Limits bound what anyone who can set an Origin header can make the widget cost: every message
// is a paid agent run. The buckets live in the table, so they hold across every instance.
type Limits struct {
	Sessions        limit.Rule    // new sessions of the workspace
	Messages        limit.Rule    // messages of the workspace, all sessions together
	SessionMessages limit.Rule    // messages of one session
	MaxLifetime     time.Duration // no session outlives this from when it was opened (default 24 h)
}

// DefaultMaxLifetime is how long a session may be renewed for unless configured.
const DefaultMaxLifetime = 24 * time.Hour

// Limits of a widget message.
const (
	MaxTextBytes  = 4000
	maxBodyBytes  = 16 << 10
	maxClientID   = 64
	bearerPrefix  = "bearer "
	sessionPrefix = "wss"
)

// Queue takes the messages a session sends.
type Queue interface {
	SendInbound(ctx context.Context, m *queue.Inbound) error
}

// Handler serves POST /v1/web/session, POST /v1/web/messages and the routes' CORS preflights.
type Handler struct {
	cfg     Config
	queue   Queue
	limits  Limits
	lim     *limit.Limiter // nil: no rate limits
	gate    *limit.Gate    // nil admits everything
	metrics *metrics.Emitter
	log     *slog.Logger
	now     func() time.Time
	routes  map[string]func(ctx context.Context, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, map[string]string, error)
}

// New returns the widget's Handler.
func New(cfg Config, q Queue, log *slog.Logger, now func() time.Time) *Handler {
	h := &Handler{cfg: cfg, queue: q, log: log, now: now}
	h.routes = map[string]func(ctx context.Context, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, map[string]string, error){
		"POST /v1/web/session":     h.session,
		routeMessages:              h.message,
		"OPTIONS /v1/web/{proxy+}": h.preflight,
	}
	return h
}

// WithLimits makes the handler enforce l with buckets kept by lim, and admit every message
// through gate (the workspace's inbound rate and daily run budget).
func (h *Handler) WithLimits(l Limits, lim *limit.Limiter, gate *limit.Gate) *Handler {
	h.limits, h.lim, h.gate = l, lim, gate
	return h
}

// take takes a token from the bucket key under r; a refusal is a 429 with Retry-After.
func (h *Handler) take(ctx context.Context, key string, r limit.Rule, what string) error {
	if h.lim == nil {
		return nil
	}
	d, err := h.lim.Take(ctx, key, r)
	if err != nil {
		return apierr.Wrap(apierr.Unavailable, err, "the request could not be admitted; retry later")
	}
	if !d.OK {
		return limit.Refused(d, what)
	}
	return nil
}

// RouteKeys returns the route keys the handler serves, sorted (for a test against template.yaml).
func (h *Handler) RouteKeys() []string { return slices.Sorted(maps.Keys(h.routes)) }

// routeMessages is the route that queues a visitor's message; DoorWidget is its Door in metrics.
const (
	routeMessages = "POST /v1/web/messages"
	DoorWidget    = "widget"
)

// WithMetrics makes the widget count the messages it accepts and refuses, flushed after each.
func (h *Handler) WithMetrics(m *metrics.Emitter) *Handler {
	h.metrics = m
	return h
}

// Handle is the Lambda handler.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ctx = trace.NewContext(ctx, trace.From(apigw.Header(&req, trace.Header))) // goes with the queued message
	r, ok := h.routes[req.RouteKey]
	if !ok {
		return fail(ctx, h.log, apierr.New(apierr.NotFound, "no such route"), nil), nil
	}
	resp, headers, err := r(ctx, &req)
	if req.RouteKey == routeMessages { // the widget's door, counted like the inbound doors'
		defer h.metrics.Flush()
		if err != nil {
			h.metrics.Count(metrics.InboundRefused, 1, "Door", DoorWidget, "Reason", string(apierr.CodeOf(err)))
		} else {
			h.metrics.Count(metrics.InboundAccepted, 1, "Door", DoorWidget)
		}
	}
	if err != nil {
		return fail(ctx, h.log, err, headers), nil
	}
	for k, v := range headers {
		resp.Headers[k] = v
	}
	resp.Headers["cache-control"] = "no-store"
	return resp, nil
}

// fail is the JSON error response, with the CORS headers of an allowed origin so the widget can
// read it.
func fail(ctx context.Context, log *slog.Logger, err error, headers map[string]string) events.APIGatewayV2HTTPResponse {
	resp := apigw.Error(ctx, log, err)
	for k, v := range headers {
		resp.Headers[k] = v
	}
	resp.Headers["cache-control"] = "no-store"
	return resp
}

// OPTIONS /v1/web/{proxy+}: a preflight from an allowed origin gets 204 with what it may send.
func (h *Handler) preflight(_ context.Context, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, map[string]string, error) {
	headers, err := h.cfg.Origins.check(req, true)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, nil, err
	}
	headers["access-control-allow-methods"] = allowMethods
	headers["access-control-allow-headers"] = allowHeaders
	headers["access-control-max-age"] = preflightAge
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusNoContent, Headers: map[string]string{}}, headers, nil
}

// SessionView is the response to opening or renewing a session.
type SessionView struct {
	Token     string    `json:"token"`
	SessionID string    `json:"session_id"`
	ThreadID  string    `json:"thread_id"`
	ExpiresAt time.Time `json:"expires_at"`
	ExpiresIn int       `json:"expires_in"` // seconds
}

// POST /v1/web/session from an allowed origin → 201 with a new session and its token. With a
// valid token (Authorization: Bearer), the same session gets a fresh token instead (renewal),
// never one that holds past MaxLifetime from when the session was opened: then 401, and the
// widget opens a new session. New sessions are rate-limited per workspace.
func (h *Handler) session(ctx context.Context, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, map[string]string, error) {
	headers, err := h.cfg.Origins.check(req, true)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, nil, err
	}
	if _, err := apigw.Body(req, maxBodyBytes); err != nil {
		return events.APIGatewayV2HTTPResponse{}, headers, err
	}
	now := h.now().UTC()
	origin := strings.ToLower(originOf(req))
	s := Session{Workspace: h.cfg.Workspace, ID: ids.New(sessionPrefix, now), Origin: origin, Issued: now.Truncate(time.Second)}
	status := http.StatusCreated
	if tok := bearer(req); tok != "" {
		old, err := h.verify(req, tok)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, headers, err
		}
		if old.Issued.IsZero() {
			old.Issued = old.Expires.Add(-h.cfg.SessionTTL) // signed before tokens carried it: its last issue
		}
		s, status = old, http.StatusOK
	} else if err := h.take(ctx, "WS#"+s.Workspace+"#WIDGET#SESSIONS", h.limits.Sessions, "too many new widget sessions"); err != nil {
		return events.APIGatewayV2HTTPResponse{}, headers, err
	}
	end := s.Issued.Add(cmp.Or(h.limits.MaxLifetime, DefaultMaxLifetime))
	s.Expires = now.Add(h.cfg.SessionTTL)
	if end.Before(s.Expires) {
		s.Expires = end
	}
	s.Expires = s.Expires.Truncate(time.Second)
	if !now.Before(s.Expires) {
		return events.APIGatewayV2HTTPResponse{}, headers, apierr.New(apierr.Unauthorized, "session lifetime is over: open a new session")
	}
	view := SessionView{Token: Sign(h.cfg.Keys, s), SessionID: s.ID, ThreadID: s.ThreadID(), ExpiresAt: s.Expires, ExpiresIn: int(s.Expires.Sub(now) / time.Second)}
	h.log.Info("widget session", "session_id", s.ID, "renewed", status == http.StatusOK, "origin", origin)
	return apigw.JSON(status, view), headers, nil
}

// Accepted is the 202 response to a message: queued for the agent.
type Accepted struct {
	ThreadID  string `json:"thread_id"`
	MessageID string `json:"message_id"`
	RunID     string `json:"run_id"`
}

// POST /v1/web/messages {text, client_id?} with the session's token → 202 once queued. client_id
// (the widget's own id for the message) makes a retried send the same message.
func (h *Handler) message(ctx context.Context, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, map[string]string, error) {
	headers, err := h.cfg.Origins.check(req, false)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, nil, err
	}
	if err := loop.Refuse(req.Headers); err != nil { // the gateway's own request, come back
		return events.APIGatewayV2HTTPResponse{}, headers, err
	}
	s, err := h.verify(req, bearer(req))
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, headers, err
	}
	raw, err := apigw.Body(req, maxBodyBytes)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, headers, err
	}
	var in struct {
		Text     string `json:"text"`
		ClientID string `json:"client_id"`
	}
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &in) != nil {
		return events.APIGatewayV2HTTPResponse{}, headers, apierr.New(apierr.Invalid, "body must be a JSON object {\"text\": …}")
	}
	if err := fields.CheckJSON(raw); err != nil {
		return events.APIGatewayV2HTTPResponse{}, headers, err
	}
	text := strings.TrimSpace(in.Text)
	switch {
	case text == "":
		return events.APIGatewayV2HTTPResponse{}, headers, apierr.New(apierr.Invalid, "text is required")
	case len(text) > MaxTextBytes:
		return events.APIGatewayV2HTTPResponse{}, headers, apierr.New(apierr.TooLarge, "text must be at most %d bytes", MaxTextBytes)
	case !chatText(text):
		return events.APIGatewayV2HTTPResponse{}, headers, apierr.New(apierr.Invalid, "text must be printable (line breaks and tabs are fine)")
	case len(in.ClientID) > maxClientID || !fields.Printable(in.ClientID):
		return events.APIGatewayV2HTTPResponse{}, headers, apierr.New(apierr.Invalid, "client_id must be at most %d printable characters", maxClientID)
	}
	now := h.now().UTC()
	m := queue.Inbound{
		Version: queue.InboundVersion, WorkspaceID: s.Workspace, ThreadID: s.ThreadID(), Source: Channel,
		Channel: Channel, ExternalID: s.ID, Text: text, ReceivedAt: now,
	}
	if in.ClientID != "" {
		m.MessageID, m.RunID = ids.Derive("msg", s.Workspace, Channel, s.ID, in.ClientID), ids.Derive("run", s.Workspace, Channel, s.ID, in.ClientID)
	} else {
		m.MessageID, m.RunID = ids.New("msg", now), ids.New("run", now)
	}
	// The session's own bucket first, so that one flooding session spends its own tokens only.
	if err := h.take(ctx, "WS#"+s.Workspace+"#WIDGET#SESSION#"+s.ID, h.limits.SessionMessages, "too many messages in this session"); err != nil {
		return events.APIGatewayV2HTTPResponse{}, headers, err
	}
	if err := h.take(ctx, "WS#"+s.Workspace+"#WIDGET#MESSAGES", h.limits.Messages, "too many widget messages"); err != nil {
		return events.APIGatewayV2HTTPResponse{}, headers, err
	}
	adm, err := h.gate.Admit(ctx, s.Workspace, true)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, headers, err
	}
	if err := h.queue.SendInbound(ctx, &m); err != nil {
		adm.Refund(ctx, h.log)
		return events.APIGatewayV2HTTPResponse{}, headers, queue.SendFailure(err)
	}
	h.log.InfoContext(ctx, "widget message queued", "session_id", s.ID, "thread_id", m.ThreadID, "message_id", m.MessageID, "run_id", m.RunID)
	return apigw.JSON(http.StatusAccepted, Accepted{ThreadID: m.ThreadID, MessageID: m.MessageID, RunID: m.RunID}), headers, nil
}

// verify checks a token and that a request with an Origin comes from the site the session was
// opened on.
func (h *Handler) verify(req *events.APIGatewayV2HTTPRequest, token string) (Session, error) {
	return verifyFor(h.cfg, req, token, h.now())
}

func verifyFor(cfg Config, req *events.APIGatewayV2HTTPRequest, token string, now time.Time) (Session, error) {
	if token == "" {
		return Session{}, apierr.New(apierr.Unauthorized, "missing session token: open a session with POST /v1/web/session")
	}
	s, err := Verify(cfg.Keys, token, now)
	if err != nil {
		return Session{}, err
	}
	if s.Workspace != cfg.Workspace {
		return Session{}, apierr.New(apierr.Unauthorized, "invalid session token")
	}
	if o := originOf(req); o != "" && !strings.EqualFold(o, s.Origin) {
		return Session{}, apierr.New(apierr.Forbidden, "origin not allowed for this session")
	}
	return s, nil
}

// bearer returns the Authorization: Bearer token.
func bearer(req *events.APIGatewayV2HTTPRequest) string {
	if auth := apigw.Header(req, "authorization"); len(auth) > len(bearerPrefix) && strings.EqualFold(auth[:len(bearerPrefix)], bearerPrefix) {
		return strings.TrimSpace(auth[len(bearerPrefix):])
	}
	return ""
}

// chatText reports whether s is valid UTF-8 with printable characters, line breaks and tabs only.
func chatText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if !unicode.IsPrint(c) && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}
