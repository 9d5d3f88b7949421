// Package doors serves every inbound route (generic, Telegram, SaaS webhooks, binding reports, the
// Zapier/Make trigger): verify the raw body, dedupe, queue; a 2xx means the message is queued.
package doors

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/apigw"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/limit"
	"github.com/hookgate/hookgate/shared/loop"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/sources"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/trace"
	"github.com/hookgate/hookgate/shared/verify"
)

// Store is the part of the store the doors use.
type Store interface {
	RoleRoutes(ctx context.Context, ws string) ([]store.RoleRoute, error)
	ClaimDedupe(ctx context.Context, ws, scope, key string, window time.Duration) (store.DedupeClaim, error)
	MarkDedupeQueued(ctx context.Context, ws, scope, key string) error
	ReleaseDedupe(ctx context.Context, ws, scope, key string) error
}

// Queue takes accepted messages.
type Queue interface {
	SendInbound(ctx context.Context, m *queue.Inbound) error
}

// Config is the doors' configuration.
type Config struct {
	DefaultWorkspace string
	MaxBodyBytes     int
	DedupeWindow     time.Duration // how long a delivery id is remembered (default 72 h)
	// IDs derives thread, run and message ids from what senders chose (event ids, chat ids,
	// update ids) under the stack's id key, so that nobody can compute them.
	IDs ids.Keyed
}

// DefaultDedupeWindow outlasts Stripe's retries (3 days) and Standard Webhooks senders' schedules.
const DefaultDedupeWindow = 72 * time.Hour

// Doors holds what every door needs.
type Doors struct {
	cfg     Config
	sources *sources.Resolver
	store   Store
	queue   Queue
	gate    *limit.Gate // nil admits everything
	metrics *metrics.Emitter
	log     *slog.Logger
	now     func() time.Time
}

// WithGate makes the doors admit every message through g: the workspace's inbound rate, and its
// daily run budget for a message that starts a run.
func (d *Doors) WithGate(g *limit.Gate) *Doors {
	d.gate = g
	return d
}

// WithMetrics makes the doors count what they accept and refuse, flushed after each request.
func (d *Doors) WithMetrics(m *metrics.Emitter) *Doors {
	d.metrics = m
	return d
}

// New returns the doors.
func New(cfg Config, src *sources.Resolver, st Store, q Queue, log *slog.Logger, now func() time.Time) *Doors {
	if cfg.DedupeWindow <= 0 {
		cfg.DedupeWindow = DefaultDedupeWindow
	}
	return &Doors{cfg: cfg, sources: src, store: st, queue: q, log: log, now: now}
}

// Config returns the doors' configuration, with its defaults applied.
func (d *Doors) Config() Config { return d.cfg }

// Accepted is the body of a door's 2xx: false for a duplicate, acknowledged and not processed.
type Accepted struct {
	Accepted bool   `json:"accepted"`
	Role     string `json:"role,omitempty"`
	ThreadID string `json:"thread_id,omitempty"`
	RunID    string `json:"run_id,omitempty"`
	// Challenge answers Slack's url_verification (with 200, as Slack requires).
	Challenge string `json:"challenge,omitempty"`
}

// serve runs a door and turns its outcome into a response.
// The request's traceparent (the sender's, when valid, else a new one) goes with the message to
// the worker and on to the agent and the deliveries.
func (d *Doors) serve(ctx context.Context, door string, req *events.APIGatewayV2HTTPRequest, accept func(context.Context, *events.APIGatewayV2HTTPRequest) (Accepted, error)) (events.APIGatewayV2HTTPResponse, error) {
	ctx = trace.NewContext(ctx, trace.From(apigw.Header(req, trace.Header)))
	defer d.metrics.Flush()
	if err := loop.Refuse(req.Headers); err != nil { // the gateway's own request, come back
		CountRefused(d.metrics, door, err)
		return apigw.Error(ctx, d.log.With("door", door), err), nil
	}
	acc, err := accept(ctx, req)
	if err != nil {
		CountRefused(d.metrics, door, err)
		return apigw.Error(ctx, d.log, err), nil
	}
	if !acc.Accepted || acc.Challenge != "" {
		d.metrics.Count(metrics.InboundRefused, 1, "Door", door, "Reason", ReasonDuplicate)
		d.log.InfoContext(ctx, "acknowledged without queueing", "door", door, "duplicate", !acc.Accepted)
		return apigw.JSON(http.StatusOK, acc), nil
	}
	d.metrics.Count(metrics.InboundAccepted, 1, "Door", door)
	d.log.InfoContext(ctx, "inbound accepted", "door", door, "role", acc.Role, "run_id", acc.RunID)
	return apigw.JSON(http.StatusAccepted, acc), nil
}

// ReasonDuplicate is the InboundRefused reason of a request acknowledged without being queued (a
// duplicate, Slack's url_verification); other reasons are the error codes of apierr.
const ReasonDuplicate = "duplicate"

// CountRefused counts a door's refusal by its error code: a small, fixed set of values.
func CountRefused(m *metrics.Emitter, door string, err error) {
	m.Count(metrics.InboundRefused, 1, "Door", door, "Reason", string(apierr.CodeOf(err)))
}

// Doors, for the schemes each accepts and for the log.
const (
	doorTelegram = "telegram"
	doorTrigger  = "trigger"
	doorBinding  = "binding"
	doorWebhook  = "webhook"
	doorGeneric  = "generic"
)

// accepts reports whether a source of scheme s opens door. A source serves the doors its scheme
// makes sense for: a Telegram secret token only the Telegram door, an unsigned (none) source only
// the SaaS webhook door, and the doors whose messages start runs or change state a signature or a
// Bearer token only.
func accepts(door string, s verify.Scheme) bool {
	switch door {
	case doorTelegram:
		return s == verify.Telegram
	case doorTrigger:
		return s == verify.HMACSHA256 || s == verify.Bearer
	case doorBinding:
		return s == verify.HMACSHA256 || s == verify.Bearer || s == verify.StandardWebhooks
	case doorWebhook:
		return s != verify.Telegram
	}
	return false
}

// verified reads the body (413 before anything else) and verifies it with the workspace's source.
func (d *Doors) verified(ctx context.Context, req *events.APIGatewayV2HTTPRequest, door, ws, source string) ([]byte, sources.Resolved, verify.Result, error) {
	body, err := apigw.Body(req, d.cfg.MaxBodyBytes)
	if err != nil {
		return nil, sources.Resolved{}, verify.Result{}, err
	}
	src, res, err := d.check(ctx, req, door, ws, source, body)
	return body, src, res, err
}

// unauthorized is every refusal of a sender: a wrong signature, a missing header, a source of a
// scheme that does not open the door, an unknown workspace or source all look the same, so that a
// caller learns neither which workspaces and sources exist nor what they are.
func unauthorized() error { return apierr.New(apierr.Unauthorized, "invalid signature") }

// check verifies body with the workspace's source, by the source's scheme and nothing else (or one
// of its alternates: only the stack-configured sources of the default workspace have any), when
// that scheme opens door. The returned source's Verifier is the one that verified.
func (d *Doors) check(ctx context.Context, req *events.APIGatewayV2HTTPRequest, door, ws, source string, body []byte) (sources.Resolved, verify.Result, error) {
	refuse := func(reason string) (sources.Resolved, verify.Result, error) {
		// The reason class (never a secret or a MAC) goes to the log; the caller learns nothing more.
		d.log.InfoContext(ctx, "sender refused", "door", door, "workspace_id", ws, "source", source, "reason", reason)
		return sources.Resolved{}, verify.Result{}, unauthorized()
	}
	if !validWorkspace.MatchString(ws) || !validSourceName(source) {
		return refuse("malformed workspace or source name")
	}
	src, err := d.sources.Get(ctx, ws, source)
	switch {
	case err == nil:
	case apierr.CodeOf(err) == apierr.NotFound:
		return refuse("unknown workspace or source")
	case apierr.CodeOf(err) == apierr.Unauthorized:
		return refuse("the source has no usable secret")
	default:
		return src, verify.Result{}, err
	}
	header := func(name string) string { return apigw.Header(req, name) }
	tried := false
	for _, v := range append([]*verify.Verifier{src.Verifier}, src.Alternates...) {
		if !accepts(door, v.Scheme()) {
			continue
		}
		tried = true
		res, verr := v.Verify(header, body, d.now())
		if verr == nil {
			src.Verifier, src.Alternates = v, nil
			return src, res, nil
		}
		err = verr
	}
	if !tried {
		return refuse("scheme " + string(src.Verifier.Scheme()) + " does not open this door")
	}
	return refuse(err.Error())
}

// dedupeKey is a key that recognises a delivery seen before, in its scope.
type dedupeKey struct{ scope, key string }

// claim reports whether key is new in scope, and whether this request must queue its message. A
// key seen before is a duplicate, but its message is queued again when the first request may not
// have queued it (it has not said so: it may have died between claim and send) or so recently
// that it may still be on its way; SQS's deduplication (five minutes) and the worker's derived ids
// drop the copy.
//
// admit says whether the send must pass the gate: always, unless the key's message was queued
// already (it was admitted then; this copy is only queued again for SQS to drop). A copy that finds
// the key claimed but not queued is admitted too: the claimant may have been refused by the gate.
func (d *Doors) claim(ctx context.Context, ws, scope, key string) (first, resend, admit bool, err error) {
	if key == "" {
		return true, true, true, nil
	}
	c, err := d.store.ClaimDedupe(ctx, ws, scope, key, d.cfg.DedupeWindow)
	if err != nil {
		return false, false, false, apierr.Wrap(apierr.Unavailable, err, "the message could not be recorded; retry later")
	}
	return c.Won, c.Won || !c.Queued || d.now().Sub(c.FirstAt) < sqsDedupeWindow, c.Won || !c.Queued, nil
}

// claimAll claims every key: the delivery is new when every key is, and is queued (again) only
// when every key says so. It stops at the first key that makes it a duplicate.
func (d *Doors) claimAll(ctx context.Context, ws string, keys []dedupeKey) (first, resend, admit bool, err error) {
	first, resend = true, true
	for _, k := range keys {
		f, r, a, err := d.claim(ctx, ws, k.scope, k.key)
		if err != nil {
			return false, false, false, err
		}
		first, resend, admit = first && f, resend && r, admit || a
		if !r {
			break
		}
	}
	return first, resend, admit, nil
}

// sqsDedupeWindow is how long SQS FIFO drops a message with a deduplication id it has seen.
const sqsDedupeWindow = 4 * time.Minute // five minutes, less a margin

// send admits m through the gate (when admit, see claim), queues it and records that its keys'
// message is queued. When the gate or the queue refuses and this call claimed the keys, the claims
// are released so that the sender's retry is processed, and a run unit taken is given back.
func (d *Doors) send(ctx context.Context, m *queue.Inbound, ws string, claimed, admit bool, keys ...dedupeKey) error {
	release := func() {
		for _, k := range keys {
			if !claimed || k.key == "" {
				continue
			}
			if rerr := d.store.ReleaseDedupe(ctx, ws, k.scope, k.key); rerr != nil {
				d.log.ErrorContext(ctx, "dedupe key not released after a refused send; a later copy will queue it", "err", rerr)
			}
		}
	}
	var adm *limit.Admission
	if admit {
		var err error
		if adm, err = d.gate.Admit(ctx, ws, m.RunID != ""); err != nil {
			release()
			return err
		}
	}
	if err := d.queue.SendInbound(ctx, m); err != nil {
		release()
		adm.Refund(ctx, d.log)
		return queue.SendFailure(err)
	}
	for _, k := range keys {
		if k.key == "" {
			continue
		}
		if err := d.store.MarkDedupeQueued(ctx, ws, k.scope, k.key); err != nil {
			// Queued all the same: a later copy only queues it again, and that is dropped.
			d.log.WarnContext(ctx, "dedupe key not marked queued", "err", err)
		}
	}
	return nil
}

// workspace is the workspace_id query parameter, or the default workspace.
func (d *Doors) workspace(req *events.APIGatewayV2HTTPRequest) string {
	if ws := req.QueryStringParameters["workspace_id"]; ws != "" {
		return ws
	}
	return d.cfg.DefaultWorkspace
}
