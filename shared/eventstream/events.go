package eventstream

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/apigw"
	"github.com/hookgate/hookgate/shared/manage"
	"github.com/hookgate/hookgate/shared/store"
)

// Log is the part of the store the event stream reads: the head of every shard of a workspace's
// log, and a shard's events.
type Log interface {
	LogHead(ctx context.Context, ws string) ([]int64, error)
	ListShard(ctx context.Context, ws string, shard int, after int64, limit int) ([]store.Event, bool, error)
}

// Authenticator finds the caller of an API-key route (manage.Authenticator).
type Authenticator interface {
	Authenticate(ctx context.Context, req *events.APIGatewayV2HTTPRequest) (manage.Caller, error)
}

// Envelope is an event as the stream sends it: the JSON body subscribers' webhooks receive
// (fanout.Envelope).
type Envelope struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	CreatedAt   string          `json:"created_at"`
	WorkspaceID string          `json:"workspace_id"`
	Data        json.RawMessage `json:"data"`
}

// EnvelopeOf returns e's envelope.
func EnvelopeOf(e store.Event) Envelope {
	return Envelope{ID: e.ID, Type: e.Type, CreatedAt: e.CreatedAt.UTC().Format(time.RFC3339Nano), WorkspaceID: e.WorkspaceID, Data: e.Data}
}

// maxPatterns bounds the ?types= filter.
const maxPatterns = 20

// Handler serves GET /v1/events/stream: the caller's workspace's log as SSE, in windows.
type Handler struct {
	cfg  Config
	auth Authenticator
	log  Log
	now  func() time.Time
	lg   *slog.Logger
}

// NewEvents returns the event stream's handler.
func NewEvents(cfg Config, auth Authenticator, log Log, now func() time.Time, lg *slog.Logger) *Handler {
	return &Handler{cfg: cfg, auth: auth, log: log, now: now, lg: lg}
}

// Handle is the Lambda handler. Query: since=<cursor>|now (Last-Event-ID wins), types=<patterns>
// (comma-separated: exact types, <family>.*, webhook.<source>.*, *).
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	resp, err := h.handle(ctx, &req)
	if err != nil {
		r := apigw.Error(ctx, h.lg, err)
		r.Headers["cache-control"] = "no-store"
		return r, nil
	}
	return resp, nil
}

func (h *Handler) handle(ctx context.Context, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	caller, err := h.auth.Authenticate(ctx, req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	start, err := StartOf(apigw.Header(req, "last-event-id"), req.QueryStringParameters["since"])
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	patterns, err := parsePatterns(req.QueryStringParameters["types"])
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	ws := caller.Workspace
	head, err := h.log.LogHead(ctx, ws)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, apierr.Wrap(apierr.Unavailable, err, "the event log could not be read; retry")
	}
	pos, err := start.Resolve(head)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	src := Source{
		Shards: len(head),
		Read: func(ctx context.Context, shard int, after int64, limit int) ([]store.Event, bool, error) {
			return h.log.ListShard(ctx, ws, shard, after, limit)
		},
		Dense: true,
		Render: func(e store.Event) (string, []byte, bool) {
			if patterns != nil && !manage.MatchEvent(patterns, e.Type) {
				return "", nil, false
			}
			b, err := json.Marshal(EnvelopeOf(e))
			return e.Type, b, err == nil
		},
	}
	res, err := h.cfg.Serve(ctx, src, pos, h.now, h.lg)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	h.lg.InfoContext(ctx, "event stream window", "workspace_id", ws, "from", Token(pos), "to", Token(res.Pos), "events", res.Events)
	return Response(res.Body, nil), nil
}

// parsePatterns reads the types filter; empty means every event.
func parsePatterns(v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !manage.ValidPattern(p) {
			return nil, apierr.New(apierr.Invalid, "types: %q is not an event type or pattern (run.completed, run.*, webhook.github.*, *)", p)
		}
		out = append(out, p)
	}
	if len(out) > maxPatterns {
		return nil, apierr.New(apierr.Invalid, "types: at most %d patterns", maxPatterns)
	}
	return out, nil
}

// Response is a window's SSE response, with extra headers (CORS) added.
func Response(body []byte, extra map[string]string) events.APIGatewayV2HTTPResponse {
	h := map[string]string{
		"content-type":  "text/event-stream; charset=utf-8",
		"cache-control": "no-cache, no-store",
	}
	for k, v := range extra {
		h[k] = v
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK, Headers: h, Body: string(body)}
}
