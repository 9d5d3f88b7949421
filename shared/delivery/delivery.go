// Package delivery is DeliveryFunction's handler: one signed attempt per queue message, recorded, then
// the next attempt scheduled (a short wait in the queue, a long one on the table's retry schedule,
// which DeliverySweepFunction queues when due) or the delivery ended.
package delivery

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/trace"
)

// Store is the part of the store the delivery function uses.
type Store interface {
	ClaimAttempt(ctx context.Context, ws, id string, attempt int, lease time.Duration) (store.Delivery, bool, error)
	ClaimNewDelivery(ctx context.Context, d store.Delivery, lease time.Duration) (store.Delivery, bool, error)
	RecordAttempt(ctx context.Context, ws, id string, a store.Attempt, status string, next *time.Time) error
	RecordAttemptScheduled(ctx context.Context, ws, id string, a store.Attempt, next time.Time, trace string) error
	ScheduleDelivery(ctx context.Context, e store.ScheduledDelivery) error
	GetSubscription(ctx context.Context, ws, id string) (store.Subscription, error)
	DisableSubscription(ctx context.Context, ws, id, reason string) (bool, error)
	RecordDeliveryOutcome(ctx context.Context, ws, id string, success bool) (int, error)
	AppendEvent(ctx context.Context, e store.Event) (store.Event, error)
	Limiter
}

// Queue schedules attempts.
type Queue interface {
	SendDelivery(ctx context.Context, m queue.Delivery, delay time.Duration) error
}

// Poster makes one signed HTTP attempt.
type Poster func(ctx context.Context, r outbound.Request) outbound.Result

// Config is the delivery policy.
type Config struct {
	Schedule      outbound.Schedule
	MaxRetryAfter time.Duration // Retry-After is honoured up to this
	// BackoffFloor is the least wait after a timeout, a 429 or a 503 (outbound.BackoffFloor).
	BackoffFloor time.Duration
	// RetrySpacing spaces the retries of one subscription's schedule step across every process;
	// 0 does not space them.
	RetrySpacing time.Duration
	// Circuit is every subscription's circuit breaker; its zero value is off.
	Circuit CircuitConfig
	// Rand draws the jitter of scheduled waits, uniform in [0, 1); nil is math/rand/v2.
	Rand func() float64
	// Sleep waits in the process (the last moments of a wait; see spinWait); nil sleeps on the
	// real clock. Tests give their fake clock's.
	Sleep        func(ctx context.Context, d time.Duration) error
	Lease        time.Duration // how long one attempt may hold a delivery (above the HTTP timeout)
	DisableAfter int           // consecutive exhausted deliveries that disable a subscription; 0 never

	// MaxQueueDelay is the longest wait one queue message makes (SQS's 15 minutes; tests shorten
	// it to compress time). A longer wait through the queue is a chain of hops.
	MaxQueueDelay time.Duration
	// MaxRequeues bounds the messages the function sends for one delivery in a row (hops and
	// retries): a wait that would take the chain past it goes on the retry schedule instead,
	// which the sweep queues when due, in a chain of its own. Lambda stops a chain that invokes
	// one function more than 16 times through SQS, so this stays well under 16.
	MaxRequeues int

	// Callbacks sign the callbacks of the stack's webhook adapters (the Adapters parameter), by
	// CallbackKey(workspace, adapter): with the adapter's callbackSecret, or the derived one.
	Callbacks map[string]*outbound.Signer
	// DeriveCallback signs the callbacks of every other adapter (those the workspaces keep) with
	// the secret derived from the approval signing keys; nil signs none.
	DeriveCallback func(ws, adapter string) (*outbound.Signer, error)
	// Telegram sends a Telegram reply's payload ({"chat_id","text","source"}) of a workspace
	// through the Bot API with the source's bot (TelegramSender); nil sends none.
	Telegram func(ctx context.Context, ws string, payload []byte) outbound.Result
}

// CallbackKey is the key of an adapter's signer in Config.Callbacks.
func CallbackKey(ws, adapter string) string { return ws + "\x00" + adapter }

// UserAgent is sent with every delivery.
const UserAgent = "Hookgate/0.1"

// Outcomes of the Deliveries metric (with Target): delivered, retry (a retry scheduled), exhausted
// (the schedule used up, or refused for good), disabled (410 Gone), dropped (nowhere to go any more).
const (
	OutcomeDelivered = "delivered"
	OutcomeRetry     = "retry"
	OutcomeExhausted = "exhausted"
	OutcomeDisabled  = "disabled"
	OutcomeDropped   = "dropped"
)

// Event types the delivery function records.
const (
	EventDeliveryExhausted    = "delivery.exhausted"
	EventSubscriptionDisabled = "subscription.disabled"
)

// Handler handles batches of the delivery queue.
type Handler struct {
	cfg     Config
	store   Store
	limits  Limiter
	queue   Queue
	post    Poster
	metrics *metrics.Emitter
	// visibility postpones messages of the FIFO delivery queue (ordered.go); nil: none come.
	visibility Visibility
	log        *slog.Logger
	now        func() time.Time
}

// WithMetrics makes the handler count deliveries by outcome, time attempts and count retries
// going into their wait, flushed after each batch.
func (h *Handler) WithMetrics(m *metrics.Emitter) *Handler {
	h.metrics = m
	return h
}

// New returns a Handler.
func New(cfg Config, st Store, q Queue, post Poster, log *slog.Logger, now func() time.Time) *Handler {
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	return &Handler{cfg: cfg, store: st, limits: st, queue: q, post: post, log: log, now: now}
}

func (h *Handler) rand() float64 { return h.cfg.Rand() }

// step is the longest wait one queue message makes.
func (h *Handler) step() time.Duration { return cmp.Or(h.cfg.MaxQueueDelay, queue.MaxDelay) }

// queueDelay is the delay of the message that makes the last hop of a wait: up to spinWait short,
// so that it arrives a little early and waits the rest in its process (SQS counts whole seconds,
// and its polling adds more): a paced send or a spaced retry then goes at its time.
func queueDelay(wait time.Duration) time.Duration {
	return max(0, wait-spinWait)
}

// Handle attempts the batch's deliveries in parallel (a FIFO subscription's in order: ordered.go).
// A message whose bookkeeping failed is reported as a batch item failure, so SQS redelivers it;
// the attempt claim makes that safe.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	defer h.metrics.Flush()
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		failures = []events.SQSBatchItemFailure{}
		inOrder  []events.SQSMessage
	)
	fail := func(rec events.SQSMessage) {
		mu.Lock()
		failures = append(failures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		mu.Unlock()
	}
	subs := &subCache{store: h.store, m: map[string]*subEntry{}}
	for _, rec := range ev.Records {
		if ordered(rec) {
			inOrder = append(inOrder, rec)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.process(ctx, rec, subs); err != nil {
				h.log.ErrorContext(ctx, "delivery message failed; SQS will redeliver it", "sqs_message_id", rec.MessageId, "err", err)
				fail(rec)
			}
		}()
	}
	h.handleOrdered(ctx, inOrder, subs, fail)
	wg.Wait()
	return events.SQSEventResponse{BatchItemFailures: failures}, nil
}

func (h *Handler) process(ctx context.Context, rec events.SQSMessage, subs *subCache) error {
	m, created, err := decode(rec.Body)
	if err != nil {
		return err
	}
	// The trace of the webhook that caused the event, kept on every hop and retry; a message
	// without a valid one starts its own.
	p, ok := trace.Parse(m.Trace)
	if !ok {
		p = trace.New()
	}
	m.Trace, ctx = p.String(), trace.NewContext(ctx, p)
	now := h.now()
	if wait := m.NotBefore.Sub(now); wait > spinWait {
		// Early: one more hop, or the retry schedule. A little early (a message sent to arrive
		// just before its time, see queueDelay) waits the rest right before it is sent.
		return h.requeue(ctx, m, wait)
	}
	var (
		d       store.Delivery
		claimed bool
	)
	if created != nil {
		// The fan-out's message carries the new delivery: the claim creates its item (or, when it
		// exists, is the claim of a message pointing at it).
		d, claimed, err = h.store.ClaimNewDelivery(ctx, *created, h.cfg.Lease)
	} else {
		d, claimed, err = h.store.ClaimAttempt(ctx, m.WorkspaceID, m.DeliveryID, m.Attempt, h.cfg.Lease)
	}
	if err != nil && apierr.CodeOf(err) == apierr.NotFound {
		h.log.WarnContext(ctx, "delivery no longer exists; message dropped", "delivery_id", m.DeliveryID)
		return nil
	}
	if err != nil {
		return err
	}
	if !claimed {
		return h.resume(ctx, m, d)
	}
	_, err = h.attempt(ctx, m, d, subs, false)
	return err
}

// decode reads a message of the delivery queue. One that carries a new delivery (the fan-out's,
// DeliveryNewVersion) is checked (newDelivery) and returned as the delivery to create, with the
// message reduced to what points at it: whatever the attempt sends again (a retry, a deferral)
// points at the item the claim created.
func decode(body string) (queue.Delivery, *store.Delivery, error) {
	var m queue.Delivery
	err := json.Unmarshal([]byte(body), &m)
	switch {
	case err != nil || m.DeliveryID == "":
	case m.Version == queue.DeliveryVersion && m.New == nil:
		return m, nil, nil
	case m.Version == queue.DeliveryNewVersion && m.New != nil:
		d, err := newDelivery(m)
		if err != nil {
			return m, nil, err
		}
		m.New = nil
		return m, &d, nil
	}
	return m, nil, fmt.Errorf("not a delivery message (version %d): %v", m.Version, err)
}

// newDelivery is the delivery that message m of the fan-out carries, checked to be one the
// fan-out makes: to a subscription (never a callback's or a Telegram reply's target, whose
// destination would come from the message), the first attempt, its id derived from its workspace,
// event and subscription (store.DeliveryID), its payload that event's envelope in that workspace.
// The destination is never in the message: the attempt reads the subscription of the message's
// workspace, so a message naming another workspace's subscription finds none and sends nothing.
// A message refused here is an error: SQS redelivers it, then keeps it in the DLQ.
func newDelivery(m queue.Delivery) (store.Delivery, error) {
	n := m.New
	refuse := func(why string) (store.Delivery, error) {
		return store.Delivery{}, fmt.Errorf("delivery message %s refused: %s", m.DeliveryID, why)
	}
	switch {
	case m.Attempt != 0 || !m.NotBefore.IsZero() || m.Requeues != 0 || m.Paced:
		return refuse("a message carrying its delivery is the fan-out's first attempt")
	case m.WorkspaceID == "" || n.SubscriptionID == "" || n.EventID == "" || n.EventType == "":
		return refuse("it lacks its workspace, subscription, event or event type")
	case n.SubscriptionID == store.TargetCallback || n.SubscriptionID == store.TargetTelegram:
		return refuse("it names a target, not a subscription")
	case m.DeliveryID != store.DeliveryID(m.WorkspaceID, n.EventID, n.SubscriptionID):
		return refuse("its id is not the one of its workspace, event and subscription")
	}
	var env struct {
		ID          string `json:"id"`
		Type        string `json:"type"`
		WorkspaceID string `json:"workspace_id"`
	}
	if err := json.Unmarshal([]byte(n.Payload), &env); err != nil || env.ID != n.EventID || env.Type != n.EventType || env.WorkspaceID != m.WorkspaceID {
		return refuse("its payload is not the envelope of its event in its workspace")
	}
	return store.Delivery{
		ID: m.DeliveryID, WorkspaceID: m.WorkspaceID, SubscriptionID: n.SubscriptionID,
		EventID: n.EventID, EventType: n.EventType, Payload: json.RawMessage(n.Payload),
	}, nil
}

// viaQueue reports whether a wait can be made in the queue by the chain of message m: in as many
// hops as it needs without taking the chain past MaxRequeues, nor the invocation's chain of
// requests within chainMargin of what Lambda's recursive loop detection allows. The two differ:
// the invocation continues the trace of one message of its batch, and every message it sends
// continues that chain (seen in the CI-sized chaos run: with a circuit's waits requeued again and
// again, batches passed the longest chain on until Lambda's rule stopped two deliveries' messages).
func (h *Handler) viaQueue(ctx context.Context, m queue.Delivery, wait time.Duration) bool {
	step := h.step()
	hops := max(1, int((wait+step-1)/step))
	return m.Requeues+hops <= h.cfg.MaxRequeues && trace.Lineage(ctx)+hops <= trace.LambdaChainLimit-chainMargin
}

// chainMargin keeps the delivery function's own sends two invocations short of Lambda's limit:
// AWS documents the rule ("more than 16 times"), not how the header counts, and a wait that goes on
// the retry schedule instead costs at most the sweep's minute.
const chainMargin = 2

// requeue makes message m wait until its NotBefore, wait from now: one more message of its chain
// (at most MaxQueueDelay), or an entry on the retry schedule.
func (h *Handler) requeue(ctx context.Context, m queue.Delivery, wait time.Duration) error {
	if !h.viaQueue(ctx, m, wait) {
		return h.store.ScheduleDelivery(ctx, store.ScheduledDelivery{
			WorkspaceID: m.WorkspaceID, DeliveryID: m.DeliveryID, Attempt: m.Attempt, Due: m.NotBefore, Trace: m.Trace,
		})
	}
	m.Requeues++
	if wait > h.step() {
		return h.queue.SendDelivery(ctx, m, h.step())
	}
	return h.queue.SendDelivery(ctx, m, queueDelay(wait))
}

// resume handles a message that could not claim its attempt: a duplicate, a stale message, or a
// redelivery after the next attempt was recorded but before it was queued. Only the last needs work.
func (h *Handler) resume(ctx context.Context, m queue.Delivery, d store.Delivery) error {
	if d.Status == store.DeliveryPending && d.Attempts == m.Attempt+1 && d.NextAttemptAt != nil && !d.RetryScheduled {
		next := queue.Delivery{WorkspaceID: m.WorkspaceID, DeliveryID: d.ID, Attempt: d.Attempts, NotBefore: *d.NextAttemptAt, Requeues: m.Requeues, Trace: m.Trace}
		return h.requeue(ctx, next, max(d.NextAttemptAt.Sub(h.now()), 0))
	}
	return nil
}

// target is where one attempt goes, resolved from the delivery.
type target struct {
	url     string
	signer  *outbound.Signer
	sub     *store.Subscription // nil for a callback or a Telegram reply
	headers map[string]string   // the subscription's custom headers
}

// resolve finds the delivery's destination and signer, or the reason it can no longer be made.
func (h *Handler) resolve(ctx context.Context, d store.Delivery, subs *subCache, now time.Time) (target, string, error) {
	switch d.Target {
	case store.TargetCallback:
		signer := h.cfg.Callbacks[CallbackKey(d.WorkspaceID, d.Adapter)]
		if signer == nil && h.cfg.DeriveCallback != nil && d.Adapter != "" {
			var err error
			if signer, err = h.cfg.DeriveCallback(d.WorkspaceID, d.Adapter); err != nil {
				return target{}, "", err
			}
		}
		if signer == nil {
			return target{}, "adapter " + d.Adapter + " is not configured", nil
		}
		return target{url: d.Destination, signer: signer}, "", nil
	case store.TargetTelegram:
		if h.cfg.Telegram == nil {
			return target{}, ErrNoBot, nil
		}
		return target{}, "", nil
	case "":
	default:
		return target{}, "unknown delivery target " + d.Target, nil
	}
	sub, signer, err := subs.get(ctx, d.WorkspaceID, d.SubscriptionID, now)
	switch {
	case err != nil && apierr.CodeOf(err) == apierr.NotFound:
		return target{}, "subscription deleted", nil
	case err != nil:
		return target{}, "", err
	case sub.Status != "active":
		return target{}, "subscription disabled", nil
	case signer == nil:
		return target{}, "subscription has no usable signing secret", nil
	}
	if len(sub.Headers.Names) > 0 && sub.Headers.Values == nil {
		return target{}, "", fmt.Errorf("subscription %s: its custom headers are sealed and this store cannot open them", sub.ID)
	}
	return target{url: sub.URL, signer: signer, sub: &sub, headers: sub.Headers.Values}, "", nil
}

// attempt makes the claimed attempt of d and records it. A retry or a deferral is queued, or, for
// a message of the FIFO delivery queue (inOrder), returned as the wait before its message's next
// step (ordered.go).
func (h *Handler) attempt(ctx context.Context, m queue.Delivery, d store.Delivery, subs *subCache, inOrder bool) (time.Duration, error) {
	now := h.now()
	att := store.Attempt{At: now, Series: d.Series, Number: d.Attempts}
	t, gone, err := h.resolve(ctx, d, subs, now)
	if err != nil {
		return 0, err
	}
	tgt := metrics.Target(d.Target)
	if gone != "" {
		att.Error = gone
		h.metrics.Count(metrics.Deliveries, 1, "Target", tgt, "Outcome", OutcomeDropped)
		return 0, h.store.RecordAttempt(ctx, d.WorkspaceID, d.ID, att, store.DeliveryFailed, nil)
	}
	var g gate
	if t.sub != nil {
		if g, err = h.admit(ctx, m, d, *t.sub); err != nil {
			return 0, err
		}
		if g.wait > 0 && inOrder {
			h.log.DebugContext(ctx, "ordered attempt deferred by the subscription's limits or circuit; its group waits", "delivery_id", d.ID, "wait", g.wait.String())
			return g.wait, h.limits.ReleaseClaim(ctx, d.WorkspaceID, d.ID, m.Attempt)
		}
		if g.wait > 0 {
			return 0, h.deferAttempt(ctx, m, d, g)
		}
	}
	if wait := m.NotBefore.Sub(h.now()); wait > 0 {
		if err := h.cfg.Sleep(ctx, wait); err != nil {
			h.releaseSlot(ctx, g.slot, d)
			return 0, err
		}
	}
	if t.sub != nil || m.NotBefore.After(now) {
		now = h.now()
		att.At = now
	}
	var res outbound.Result
	if d.Target == store.TargetTelegram {
		res = h.cfg.Telegram(ctx, d.WorkspaceID, d.Payload)
	} else {
		res = h.post(ctx, outbound.Request{URL: t.url, MsgID: d.EventID, Body: d.Payload, Signer: t.signer, Now: now, Trace: trace.Outgoing(ctx), Headers: t.headers})
	}
	if !g.slot.IsZero() {
		// The request is over: its max_in_flight slot is freed alongside the attempt's record.
		released := make(chan struct{})
		go func() { defer close(released); h.releaseSlot(ctx, g.slot, d) }()
		defer func() { <-released }()
	}
	h.metrics.Millis(metrics.AttemptLatency, res.Latency, "Target", tgt)
	att.StatusCode, att.LatencyMS, att.ResponseSnippet, att.Error = res.StatusCode, res.Latency.Milliseconds(), res.ResponseSnippet, res.Err
	if t.sub != nil && !res.Gone() {
		// The request is made: nothing may now stand between it and its record. An error here would
		// hand the message back to SQS, whose redelivery sends the request again (and, with the
		// circuit open by then, still not the event). A count lost only delays the circuit; a probe
		// whose close was lost is probed again when its lease ends.
		if err := h.countOutcome(ctx, *t.sub, g, res); err != nil {
			h.log.WarnContext(ctx, "circuit breaker not updated; the attempt is recorded", "delivery_id", d.ID, "err", err)
		}
	}

	switch {
	case res.Success():
		if err := h.store.RecordAttempt(ctx, d.WorkspaceID, d.ID, att, store.DeliverySucceeded, nil); err != nil {
			return 0, err
		}
		h.metrics.Count(metrics.Deliveries, 1, "Target", tgt, "Outcome", OutcomeDelivered)
		h.logAttempt(ctx, slog.LevelInfo, "delivered", d, res)
		if t.sub == nil || t.sub.ConsecutiveFailures == 0 {
			return 0, nil // nothing to reset: spare the subscription item a write per delivery
		}
		_, err := h.store.RecordDeliveryOutcome(ctx, d.WorkspaceID, t.sub.ID, true)
		return 0, err
	case res.Gone() && t.sub != nil:
		// Disable first: once the attempt is recorded, a redelivered message can no longer claim
		// it, and a disabling that had failed after it would be lost.
		if err := h.disable(ctx, *t.sub, "the endpoint answered 410 Gone"); err != nil {
			return 0, err
		}
		h.metrics.Count(metrics.Deliveries, 1, "Target", tgt, "Outcome", OutcomeDisabled)
		h.logAttempt(ctx, slog.LevelWarn, "endpoint answered 410 Gone: subscription disabled", d, res)
		return 0, h.store.RecordAttempt(ctx, d.WorkspaceID, d.ID, att, store.DeliveryFailed, nil)
	case res.Permanent:
		// The destination refused the message itself (a Telegram chat not found, a bot blocked).
		return 0, h.exhausted(ctx, d, t, att, res)
	}
	if delay, ok := h.cfg.Schedule.Wait(d.Attempts+1, res, outbound.Backoff{Floor: h.cfg.BackoffFloor, MaxRetryAfter: h.cfg.MaxRetryAfter}, h.rand()); ok && !d.OneShot {
		next, err := h.retryAt(ctx, d, now.Add(delay))
		if err != nil {
			return 0, err
		}
		delay = next.Sub(now)
		tp := trace.FromContext(ctx).String()
		if inOrder {
			// The message itself waits, holding its group: nothing is queued or scheduled.
			if err := h.store.RecordAttempt(ctx, d.WorkspaceID, d.ID, att, store.DeliveryPending, &next); err != nil {
				return 0, err
			}
			h.countRetry(tgt)
			h.logAttempt(ctx, slog.LevelInfo, "attempt failed; the ordered delivery and those after it wait for its retry", d, res, slog.String("retry_in", delay.String()))
			return max(delay, time.Second), nil
		}
		if !h.viaQueue(ctx, m, delay) {
			// One transaction: the retry cannot be lost between the record and the schedule.
			if err := h.store.RecordAttemptScheduled(ctx, d.WorkspaceID, d.ID, att, next, tp); err != nil {
				return 0, err
			}
			h.countRetry(tgt)
			h.logAttempt(ctx, slog.LevelInfo, "attempt failed; retry on the schedule", d, res, slog.String("retry_in", delay.String()))
			return 0, nil
		}
		if err := h.store.RecordAttempt(ctx, d.WorkspaceID, d.ID, att, store.DeliveryPending, &next); err != nil {
			return 0, err
		}
		h.countRetry(tgt)
		h.logAttempt(ctx, slog.LevelInfo, "attempt failed; retry queued", d, res, slog.String("retry_in", delay.String()))
		return 0, h.queue.SendDelivery(ctx, queue.Delivery{
			WorkspaceID: d.WorkspaceID, DeliveryID: d.ID, Attempt: d.Attempts + 1, NotBefore: next, Requeues: m.Requeues + 1,
			Trace: tp,
		}, min(h.step(), queueDelay(delay)))
	}
	return 0, h.exhausted(ctx, d, t, att, res)
}

// countRetry counts an attempt that failed and will be retried.
func (h *Handler) countRetry(tgt string) {
	h.metrics.Count(metrics.Deliveries, 1, "Target", tgt, "Outcome", OutcomeRetry)
	h.metrics.Count(metrics.RetriesWaiting, 1, "Target", tgt)
}

// logAttempt logs an attempt's outcome with the delivery's ids, built only when the level is on:
// the hot path of a healthy endpoint pays nothing for a quiet log.
func (h *Handler) logAttempt(ctx context.Context, level slog.Level, msg string, d store.Delivery, res outbound.Result, extra ...slog.Attr) {
	if !h.log.Enabled(ctx, level) {
		return
	}
	attrs := append([]slog.Attr{
		slog.String("delivery_id", d.ID), slog.String("subscription_id", d.SubscriptionID), slog.String("target", d.Target),
		slog.Int("attempt", d.Attempts+1), slog.Int("status_code", res.StatusCode), slog.String("error", res.Err),
	}, extra...)
	h.log.LogAttrs(ctx, level, msg, attrs...)
}

// exhausted ends a delivery as failed, records delivery.exhausted, and counts the failure against
// its subscription, which is disabled after DisableAfter in a row.
//
// The event comes first: it is idempotent, and once the attempt is recorded a redelivered message
// can no longer claim it, so an event that had failed after it would be lost.
func (h *Handler) exhausted(ctx context.Context, d store.Delivery, t target, att store.Attempt, res outbound.Result) error {
	if err := h.appendEvent(ctx, d.WorkspaceID, ids.Derive("evt", d.WorkspaceID, d.ID, fmt.Sprint(d.Series), EventDeliveryExhausted), EventDeliveryExhausted, map[string]any{
		"delivery_id": d.ID, "subscription_id": d.SubscriptionID, "target": d.Target, "event_id": d.EventID, "event_type": d.EventType,
		"attempts": d.Attempts + 1, "last_status_code": res.StatusCode, "last_error": res.Err,
	}); err != nil {
		return err
	}
	if err := h.store.RecordAttempt(ctx, d.WorkspaceID, d.ID, att, store.DeliveryFailed, nil); err != nil {
		return err
	}
	h.metrics.Count(metrics.Deliveries, 1, "Target", metrics.Target(d.Target), "Outcome", OutcomeExhausted)
	h.logAttempt(ctx, slog.LevelWarn, "delivery exhausted its schedule", d, res)
	if t.sub == nil {
		return nil
	}
	failures, err := h.store.RecordDeliveryOutcome(ctx, d.WorkspaceID, t.sub.ID, false)
	if err != nil {
		return err
	}
	if h.cfg.DisableAfter > 0 && failures >= h.cfg.DisableAfter {
		return h.disable(ctx, *t.sub, fmt.Sprintf("%d consecutive deliveries failed", failures))
	}
	return nil
}

func (h *Handler) disable(ctx context.Context, sub store.Subscription, reason string) error {
	changed, err := h.store.DisableSubscription(ctx, sub.WorkspaceID, sub.ID, reason)
	if err != nil || !changed {
		return err
	}
	return h.appendEvent(ctx, sub.WorkspaceID, ids.Derive("evt", sub.WorkspaceID, sub.ID, reason, h.now().Format(time.RFC3339)), EventSubscriptionDisabled,
		map[string]any{"subscription_id": sub.ID, "origin": Origin(sub.URL), "reason": reason})
}

// Origin is what an event may show of a subscription's URL: scheme://host[:port]. Every "*"
// subscriber of the workspace reads the event, and a URL's path and query often hold a token.
func Origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
}

func (h *Handler) appendEvent(ctx context.Context, ws, id, typ string, data map[string]any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return errors.Join(fmt.Errorf("encode %s", typ), err)
	}
	e := store.Event{ID: id, Type: typ, WorkspaceID: ws, Data: b}
	if p := trace.FromContext(ctx); p.Valid() {
		e.Trace = p.String()
	}
	_, err = h.store.AppendEvent(ctx, e)
	return err
}

// subCache reads each subscription, and builds its signer, once per batch: a batch often holds
// several deliveries to the same endpoint.
type subCache struct {
	store Store
	mu    sync.Mutex
	m     map[string]*subEntry
}

type subEntry struct {
	once   sync.Once
	sub    store.Subscription
	signer *outbound.Signer // nil when the subscription has no usable secret
	err    error
}

// get returns the subscription and a signer with the secrets active at now (the batch's first use).
func (c *subCache) get(ctx context.Context, ws, id string, now time.Time) (store.Subscription, *outbound.Signer, error) {
	c.mu.Lock()
	e, ok := c.m[ws+"/"+id]
	if !ok {
		e = &subEntry{}
		c.m[ws+"/"+id] = e
	}
	c.mu.Unlock()
	e.once.Do(func() {
		if e.sub, e.err = c.store.GetSubscription(ctx, ws, id); e.err == nil {
			e.signer, _ = outbound.NewSigner(e.sub.ActiveSecrets(now)...)
		}
	})
	return e.sub, e.signer, e.err
}
