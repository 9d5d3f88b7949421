package doors

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

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

// Headers the sender proves itself with: the shared secret itself, or an HMAC of the raw body.
const (
	HeaderSecret      = "x-hookgate-inbound-secret"
	HeaderSignature   = "x-hookgate-signature"
	HeaderIdempotency = "idempotency-key"
)

// Field limits.
const (
	maxChannel    = 64
	maxExternalID = 256
	maxUser       = 256
	maxKey        = 255
	// maxStored bounds text (JSON-encoded, as the queue message and the message.received event
	// hold it) plus data: the event is one DynamoDB item (400 KB at most).
	maxStored = 350_000
)

// GenericConfig is the inbound route's configuration.
type GenericConfig struct {
	Workspace    string
	MaxBodyBytes int
	Secrets      *verify.Secrets
	Source       string // the messages' source: generic (the default) or trigger
	// Authenticate, when set, replaces the check of Secrets: it verifies the raw body and returns
	// the workspace the message belongs to and the workspace's source that proved it (the
	// Zapier/Make trigger checks a workspace's source); idempotency keys are scoped to that source.
	Authenticate func(ctx context.Context, req *events.APIGatewayV2HTTPRequest, body []byte) (ws, source string, err error)
	// IDs derives thread, run and message ids under the stack's id key.
	IDs ids.Keyed
	// Gate admits each message (the workspace's inbound rate and daily run budget); nil admits all.
	Gate *limit.Gate
}

// Generic handles POST /v1/inbound/generic.
type Generic struct {
	cfg     GenericConfig
	queue   Queue
	metrics *metrics.Emitter
	log     *slog.Logger
	now     func() time.Time
}

// WithMetrics makes the door count what it accepts and refuses, flushed after each request.
func (h *Generic) WithMetrics(m *metrics.Emitter) *Generic {
	h.metrics = m
	return h
}

// New returns a Generic.
func NewGeneric(cfg GenericConfig, q Queue, log *slog.Logger, now func() time.Time) *Generic {
	return &Generic{cfg: cfg, queue: q, log: log, now: now}
}

// Queued is the 202 response body.
type Queued struct {
	ThreadID  string `json:"thread_id"`
	MessageID string `json:"message_id"`
	RunID     string `json:"run_id"`
}

type genericRequest struct {
	Channel    string          `json:"channel"`
	ExternalID string          `json:"external_id"`
	Text       string          `json:"text"`
	User       string          `json:"user"`
	Data       json.RawMessage `json:"data"`
	EventID    string          `json:"event_id"`
}

// door is the door's name in metrics: its source, generic or trigger.
func (h *Generic) door() string {
	if h.cfg.Source == doorTrigger {
		return doorTrigger
	}
	return doorGeneric
}

// Handle is the Lambda handler.
func (h *Generic) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ctx = trace.NewContext(ctx, trace.From(apigw.Header(&req, trace.Header)))
	defer h.metrics.Flush()
	acc, err := h.accept(ctx, &req)
	if err != nil {
		CountRefused(h.metrics, h.door(), err)
		return apigw.Error(ctx, h.log, err), nil
	}
	h.metrics.Count(metrics.InboundAccepted, 1, "Door", h.door())
	h.log.InfoContext(ctx, "inbound message queued", "thread_id", acc.ThreadID, "message_id", acc.MessageID, "run_id", acc.RunID)
	return apigw.JSON(http.StatusAccepted, acc), nil
}

func (h *Generic) accept(ctx context.Context, req *events.APIGatewayV2HTTPRequest) (Queued, error) {
	if err := loop.Refuse(req.Headers); err != nil { // the gateway's own request, come back
		return Queued{}, err
	}
	body, err := apigw.Body(req, h.cfg.MaxBodyBytes)
	if err != nil {
		return Queued{}, err
	}
	ws, source := h.cfg.Workspace, ""
	if h.cfg.Authenticate != nil {
		ws, source, err = h.cfg.Authenticate(ctx, req, body)
	} else {
		err = h.authenticate(req, body)
	}
	if err != nil {
		return Queued{}, err
	}
	r, err := parseGeneric(body)
	if err != nil {
		return Queued{}, err
	}
	// The body's event_id wins over the Idempotency-Key header: a signature covers the body, not
	// the headers, so a replayer could change the header to make a signed genericRequest new again.
	key := r.EventID
	if key == "" {
		key = apigw.Header(req, HeaderIdempotency)
	}
	if len(key) > maxKey {
		return Queued{}, apierr.New(apierr.Invalid, "idempotency key is longer than %d characters", maxKey)
	}

	now := h.now().UTC()
	m := queue.Inbound{
		Version:     queue.InboundVersion,
		WorkspaceID: ws,
		ThreadID:    h.cfg.IDs.Thread(ws, r.Channel, r.ExternalID),
		Source:      cmp.Or(h.cfg.Source, "generic"),
		Channel:     r.Channel,
		ExternalID:  r.ExternalID,
		Text:        r.Text,
		User:        r.User,
		Data:        r.Data,
		ReceivedAt:  now,
	}
	if key != "" {
		// The same key always yields the same ids: a retried post returns the first post's ids,
		// SQS drops the duplicate within its window and the worker's conditional writes after it.
		// Another route's or another source's key never collides with this one's.
		parts := []string{ws, m.Source, source, key}
		m.MessageID, m.RunID = h.cfg.IDs.Derive("msg", parts...), h.cfg.IDs.Derive("run", parts...)
	} else {
		m.MessageID, m.RunID = ids.New("msg", now), ids.New("run", now)
	}
	// Every message starts a run. A repost with the same key is admitted again (this door keeps
	// no record of keys): a retry spends one more unit of the budget than it needs.
	adm, err := h.cfg.Gate.Admit(ctx, ws, true)
	if err != nil {
		return Queued{}, err
	}
	if err := h.queue.SendInbound(ctx, &m); err != nil {
		adm.Refund(ctx, h.log)
		return Queued{}, queue.SendFailure(err)
	}
	return Queued{ThreadID: m.ThreadID, MessageID: m.MessageID, RunID: m.RunID}, nil
}

func (h *Generic) authenticate(req *events.APIGatewayV2HTTPRequest, body []byte) error {
	if sig := apigw.Header(req, HeaderSignature); sig != "" {
		if !h.cfg.Secrets.VerifyHMAC(body, sig) {
			return apierr.New(apierr.Unauthorized, "invalid signature")
		}
		return nil
	}
	if sec := apigw.Header(req, HeaderSecret); sec != "" {
		if !h.cfg.Secrets.Equal(sec) {
			return apierr.New(apierr.Unauthorized, "invalid secret")
		}
		return nil
	}
	return apierr.New(apierr.Unauthorized, "missing credentials: send X-Hookgate-Signature or X-Hookgate-Inbound-Secret")
}

// ReservedChannel reports whether channel stands for another door's destination or threads
// (telegram, web, adapter.*, webhook.*, in any case), which only that door may create: a message
// on such a channel could make the stack's bot write to any chat, or join another door's thread
// and its agent's history.
func ReservedChannel(channel string) bool {
	c := strings.ToLower(channel)
	for _, door := range []string{"telegram", "web", "adapter", "webhook"} {
		if c == door || strings.HasPrefix(c, door+".") {
			return true
		}
	}
	return false
}

func parseGeneric(body []byte) (genericRequest, error) {
	var r genericRequest
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return r, apierr.New(apierr.Invalid, "body must be a JSON object")
	}
	if err := json.Unmarshal(trimmed, &r); err != nil {
		return r, apierr.New(apierr.Invalid, "body is not valid JSON or a field has the wrong type")
	}
	if err := fields.CheckJSON(trimmed); err != nil {
		return r, err
	}
	r.Channel = strings.TrimSpace(r.Channel)
	r.ExternalID = strings.TrimSpace(r.ExternalID)
	switch {
	case r.Channel == "":
		return r, apierr.New(apierr.Invalid, "channel is required")
	case len(r.Channel) > maxChannel || !fields.Printable(r.Channel):
		return r, apierr.New(apierr.Invalid, "channel must be at most %d printable characters", maxChannel)
	case ReservedChannel(r.Channel):
		return r, apierr.New(apierr.Invalid, "channel %q is reserved: telegram, web, adapter.* and webhook.* belong to their own doors", r.Channel)
	case r.ExternalID == "":
		return r, apierr.New(apierr.Invalid, "external_id is required")
	case len(r.ExternalID) > maxExternalID || !fields.Printable(r.ExternalID):
		return r, apierr.New(apierr.Invalid, "external_id must be at most %d printable characters", maxExternalID)
	case strings.TrimSpace(r.Text) == "":
		return r, apierr.New(apierr.Invalid, "text is required")
	case queue.JSONLen(r.Text)+len(r.Data) > maxStored:
		return r, apierr.New(apierr.TooLarge, "text and data together must be at most %d bytes (JSON-encoded)", maxStored)
	case len(r.User) > maxUser || !fields.Printable(r.User):
		return r, apierr.New(apierr.Invalid, "user must be at most %d printable characters", maxUser)
	}
	if string(r.Data) == "null" {
		r.Data = nil
	}
	if len(r.Data) > 0 && r.Data[0] != '{' {
		return r, apierr.New(apierr.Invalid, "data must be a JSON object")
	}
	return r, nil
}
