package widget

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/apigw"
	"github.com/hookgate/hookgate/shared/eventstream"
	"github.com/hookgate/hookgate/shared/store"
)

// ThreadLog is the part of the store the widget's stream reads: the session's thread's own index,
// never the workspace's whole log (a busy workspace would cost every open widget a scan of it).
type ThreadLog interface {
	ListThreadEvents(ctx context.Context, ws, thread string, after int64, limit int) ([]store.Event, error)
	ThreadHead(ctx context.Context, ws, thread string) (int64, error)
}

// Stream serves GET /v1/web/stream?token=…[&since=…]: the session's thread as SSE, in windows.
type Stream struct {
	cfg    Config
	window eventstream.Config
	log    ThreadLog
	now    func() time.Time
	lg     *slog.Logger
}

// NewStream returns the widget stream's handler.
func NewStream(cfg Config, window eventstream.Config, log ThreadLog, now func() time.Time, lg *slog.Logger) *Stream {
	return &Stream{cfg: cfg, window: window, log: log, now: now, lg: lg}
}

// Message is a "message" event of the widget stream: the visitor's message or the agent's reply.
type Message struct {
	ID        string `json:"id"`
	Role      string `json:"role"` // user or assistant
	Text      string `json:"text"`
	RunID     string `json:"run_id,omitempty"`
	CreatedAt string `json:"created_at"`
}

// RunStatus is a "run" event: a run of the thread changed status (queued, completed, failed,
// waiting_approval, cancelled, denied). Failure reasons stay server-side.
type RunStatus struct {
	RunID     string `json:"run_id"`
	Status    string `json:"status"`
	CreatedAt string `json:"created_at"`
}

// Handle is the Lambda handler. EventSource cannot send headers, so the token comes as ?token=
// (Authorization: Bearer works too); a reconnect sends Last-Event-ID.
func (h *Stream) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	resp, headers, err := h.handle(ctx, &req)
	if err != nil {
		return fail(ctx, h.lg, err, headers), nil
	}
	return resp, nil
}

func (h *Stream) handle(ctx context.Context, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, map[string]string, error) {
	headers, err := h.cfg.Origins.check(req, false)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, nil, err
	}
	token := req.QueryStringParameters["token"]
	if token == "" {
		token = bearer(req)
	}
	s, err := verifyFor(h.cfg, req, token, h.now())
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, headers, err
	}
	start, err := eventstream.StartOf(apigw.Header(req, "last-event-id"), req.QueryStringParameters["since"])
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, headers, err
	}
	last, err := h.log.ThreadHead(ctx, s.Workspace, s.ThreadID())
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, headers, apierr.Wrap(apierr.Unavailable, err, "the conversation could not be read; retry")
	}
	pos, err := start.Resolve([]int64{last})
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, headers, err
	}
	thread := s.ThreadID()
	src := eventstream.Source{
		Read: func(ctx context.Context, _ int, after int64, limit int) ([]store.Event, bool, error) {
			evs, err := h.log.ListThreadEvents(ctx, s.Workspace, thread, after, limit)
			return evs, false, err
		},
		Render: Render,
	}
	window := h.window
	if remaining := s.Expires.Sub(h.now()); remaining < window.Window {
		window.Window = max(remaining, 0) // the next window asks again with the renewed token
	}
	res, err := window.Serve(ctx, src, pos, h.now, h.lg)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, headers, err
	}
	h.lg.InfoContext(ctx, "widget stream window", "session_id", s.ID, "from", pos[0], "to", res.Pos[0], "events", res.Events)
	return eventstream.Response(res.Body, headers), nil, nil
}

// Render turns a thread event into what the widget shows: messages and run statuses. Other
// events of the thread are skipped.
func Render(e store.Event) (string, []byte, bool) {
	var d struct {
		MessageID string `json:"message_id"`
		RunID     string `json:"run_id"`
		Text      string `json:"text"`
		Status    string `json:"status"`
	}
	if json.Unmarshal(e.Data, &d) != nil {
		return "", nil, false
	}
	at := e.CreatedAt.UTC().Format(time.RFC3339Nano)
	var v any
	name := "message"
	switch {
	case e.Type == "message.received":
		v = Message{ID: d.MessageID, Role: "user", Text: d.Text, CreatedAt: at}
	case e.Type == "message.sent":
		v = Message{ID: d.MessageID, Role: "assistant", Text: d.Text, RunID: d.RunID, CreatedAt: at}
	case strings.HasPrefix(e.Type, "run.") && d.RunID != "" && d.Status != "":
		name, v = "run", RunStatus{RunID: d.RunID, Status: d.Status, CreatedAt: at}
	default:
		return "", nil, false
	}
	b, err := json.Marshal(v)
	return name, b, err == nil
}
