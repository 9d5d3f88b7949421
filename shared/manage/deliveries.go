package manage

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// DeliveryStore is the part of the store the delivery routes use.
type DeliveryStore interface {
	GetSubscription(ctx context.Context, ws, id string) (store.Subscription, error)
	CreateDelivery(ctx context.Context, d store.Delivery) (store.Delivery, bool, error)
	GetDelivery(ctx context.Context, ws, id string) (store.Delivery, error)
	RetryDelivery(ctx context.Context, ws, id string) (store.Delivery, error)
	RetryDeliveryOnce(ctx context.Context, ws, id string) (store.Delivery, error)
	ListDeliveries(ctx context.Context, ws, sub string, f store.DeliveryFilter) ([]store.Delivery, string, error)
	DeliveryAttempts(ctx context.Context, ws, id string) (store.Delivery, []store.Attempt, error)
}

// DeliveryQueue schedules delivery attempts: one, or many at once (ten per SQS request).
type DeliveryQueue interface {
	SendDelivery(ctx context.Context, m queue.Delivery, delay time.Duration) error
	SendDeliveries(ctx context.Context, ms []queue.Delivery) error
}

// MaxReplay bounds how many failed deliveries one replay call queues again.
const MaxReplay = 1000

// WithDeliveries adds the delivery routes: the attempt log, retry, replay and test sends.
func (h *Handler) WithDeliveries(st DeliveryStore, q DeliveryQueue) *Handler {
	d := &deliveryRoutes{h: h, store: st, queue: q}
	h.routes["GET /v1/webhooks/{id}/deliveries"] = d.list
	h.routes["POST /v1/webhooks/{id}/replay"] = d.replay
	h.routes["POST /v1/webhooks/{id}/test"] = d.test
	h.routes["GET /v1/deliveries/{id}"] = d.get
	h.routes["POST /v1/deliveries/{id}/retry"] = d.retry
	return h
}

type deliveryRoutes struct {
	h     *Handler
	store DeliveryStore
	queue DeliveryQueue
}

// DeliveryView is one delivery with the body it sends and every attempt.
type DeliveryView struct {
	store.Delivery
	Payload    json.RawMessage `json:"payload"`
	AttemptLog []store.Attempt `json:"attempt_log"`
}

// GET /v1/webhooks/{id}/deliveries?status=&since=&until=&limit=&cursor= → {data, next_cursor}.
func (d *deliveryRoutes) list(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	sub, err := d.subscription(ctx, c, req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	f, err := deliveryFilter(req.QueryStringParameters)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	ds, next, err := d.store.ListDeliveries(ctx, c.Workspace, sub.ID, f)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	out := list[store.Delivery]{Data: ds}
	if out.Data == nil {
		out.Data = []store.Delivery{}
	}
	if next != "" {
		out.NextCursor = &next
	}
	return respond(http.StatusOK, out), nil
}

// GET /v1/deliveries/{id} → the delivery with every attempt.
func (d *deliveryRoutes) get(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	id, err := deliveryID(req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	dl, atts, err := d.store.DeliveryAttempts(ctx, c.Workspace, id)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return respond(http.StatusOK, DeliveryView{Delivery: dl, Payload: dl.Payload, AttemptLog: atts}), nil
}

// POST /v1/deliveries/{id}/retry → 202: a failed delivery starts a new series of one attempt. So does
// one reset but never attempted (a retry or replay whose message was not queued): retrying after a
// 503 is safe. A delivery being attempted is 409.
func (d *deliveryRoutes) retry(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	id, err := deliveryID(req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	dl, err := d.store.RetryDeliveryOnce(ctx, c.Workspace, id)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if err := d.enqueue(ctx, dl); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	d.h.audit(ctx, c, "delivery retried", "delivery_id", dl.ID)
	return respond(http.StatusAccepted, dl), nil
}

// POST /v1/webhooks/{id}/replay {since, until?} → 202 {replayed}: the failed deliveries of the
// subscription created in the range are retried, newest first, MaxReplay at most (call again for
// more: the ones retried are no longer failed). A disabled subscription is 409.
func (d *deliveryRoutes) replay(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	sub, err := d.subscription(ctx, c, req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	var b struct {
		Since *string `json:"since"`
		Until *string `json:"until"`
	}
	if err := body(req, &b, true); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if b.Since == nil {
		return events.APIGatewayV2HTTPResponse{}, invalid("since is required (RFC 3339)")
	}
	f := store.DeliveryFilter{Status: store.DeliveryFailed}
	for _, v := range []struct {
		name string
		raw  *string
		dst  *time.Time
	}{{"since", b.Since, &f.Since}, {"until", b.Until, &f.Until}} {
		if v.raw == nil {
			continue
		}
		t, err := windowTime(v.name, *v.raw)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		*v.dst = t
	}
	if err := checkWindow(f); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	// A disabled subscription's deliveries fail at once: replayed, they would only loop through the
	// queue and the delivery function, as often as the caller asks.
	if sub.Status != store.SubscriptionActive {
		return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Conflict, "the subscription is disabled: enable it (PATCH status active) before replaying its deliveries")
	}
	replayed := 0
	for replayed < MaxReplay {
		// A page never holds more than the cap leaves room for, so the cap is never overshot and
		// no delivery is reset without being queued.
		f.Limit = min(replayPage, MaxReplay-replayed)
		ds, next, err := d.store.ListDeliveries(ctx, c.Workspace, sub.ID, f)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		again, err := d.resetAll(ctx, c.Workspace, ds)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		if err := d.enqueueAll(ctx, again); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		replayed += len(again)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	d.h.audit(ctx, c, "deliveries replayed", "subscription_id", sub.ID, "count", replayed)
	return respond(http.StatusAccepted, map[string]int{"replayed": replayed}), nil
}

// A replay reads replayPage failed deliveries at a time, resets them replayParallel at a time (each
// a conditional update of its own) and queues them ten per SQS request: MaxReplay deliveries take
// about MaxReplay/replayParallel + MaxReplay/10 round trips in sequence, a few seconds, well
// inside ManagementFunction's 15 s.
const (
	replayPage     = 100
	replayParallel = 10
)

// resetAll starts a new series of attempts for each of ds, replayParallel at a time, and returns
// those it reset, in the order of ds; one retried meanwhile (a conflict) is left out.
func (d *deliveryRoutes) resetAll(ctx context.Context, ws string, ds []store.Delivery) ([]store.Delivery, error) {
	out := make([]store.Delivery, len(ds))
	errs := make([]error, len(ds))
	slots := make(chan struct{}, replayParallel)
	var wg sync.WaitGroup
	for i, dl := range ds {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			out[i], errs[i] = d.store.RetryDelivery(ctx, ws, dl.ID)
		})
	}
	wg.Wait()
	reset := out[:0]
	for i := range ds {
		switch {
		case apierr.CodeOf(errs[i]) == apierr.Conflict: // retried meanwhile
		case errs[i] != nil:
			return nil, errs[i]
		default:
			reset = append(reset, out[i])
		}
	}
	return reset, nil
}

// enqueueAll queues a first attempt for each of ds, ten per SQS request.
func (d *deliveryRoutes) enqueueAll(ctx context.Context, ds []store.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	ms := make([]queue.Delivery, len(ds))
	for i, dl := range ds {
		ms[i] = queue.Delivery{WorkspaceID: dl.WorkspaceID, DeliveryID: dl.ID}
	}
	if err := d.queue.SendDeliveries(ctx, ms); err != nil {
		return apierr.Wrap(apierr.Unavailable, err, "the deliveries could not be queued; retry later")
	}
	return nil
}

// POST /v1/webhooks/{id}/test → 202 {delivery_id}: a webhook.test event to this subscription only.
func (d *deliveryRoutes) test(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	sub, err := d.subscription(ctx, c, req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	now := d.h.now().UTC()
	evtID := ids.New("evt", now)
	payload, err := json.Marshal(map[string]any{
		"id": evtID, "type": EventWebhookTest, "created_at": now.Format(time.RFC3339Nano), "workspace_id": c.Workspace,
		"data": map[string]string{"subscription_id": sub.ID, "message": "This is a test event from Hookgate."},
	})
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	dl, _, err := d.store.CreateDelivery(ctx, store.Delivery{
		ID: ids.New("dlv", now), WorkspaceID: c.Workspace, SubscriptionID: sub.ID, EventID: evtID, EventType: EventWebhookTest, Payload: payload,
	})
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if err := d.enqueue(ctx, dl); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return respond(http.StatusAccepted, map[string]string{"delivery_id": dl.ID, "event_id": evtID}), nil
}

func (d *deliveryRoutes) subscription(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (store.Subscription, error) {
	id, err := subID(req)
	if err != nil {
		return store.Subscription{}, err
	}
	return d.store.GetSubscription(ctx, c.Workspace, id)
}

// deliveryID is the {id} path parameter; one that is not a delivery id is not found.
func deliveryID(req *events.APIGatewayV2HTTPRequest) (string, error) {
	id := req.PathParameters["id"]
	if !ids.Valid("dlv", id) {
		return "", apierr.New(apierr.NotFound, "delivery not found")
	}
	return id, nil
}

func (d *deliveryRoutes) enqueue(ctx context.Context, dl store.Delivery) error {
	err := d.queue.SendDelivery(ctx, queue.Delivery{WorkspaceID: dl.WorkspaceID, DeliveryID: dl.ID}, 0)
	if err != nil {
		return apierr.Wrap(apierr.Unavailable, err, "the delivery could not be queued; retry later")
	}
	return nil
}

func deliveryFilter(q map[string]string) (store.DeliveryFilter, error) {
	f := store.DeliveryFilter{Limit: DefaultPageSize, Cursor: q["cursor"], Status: q["status"]}
	switch f.Status {
	case "", store.DeliveryPending, store.DeliverySucceeded, store.DeliveryFailed:
	default:
		return f, invalid("status must be pending, succeeded or failed")
	}
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageSize {
			return f, invalid("limit must be an integer from 1 to %d", MaxPageSize)
		}
		f.Limit = n
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v, ok := q[name]; ok {
			t, err := windowTime(name, v)
			if err != nil {
				return f, err
			}
			*dst = t
		}
	}
	return f, checkWindow(f)
}

// windowTime parses a bound of a deliveries window: RFC 3339, in years 1 to 9999 once in UTC (the
// index's keys are UTC times as text: a time outside those years would not sort among them).
func windowTime(name, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, invalid("%s must be an RFC 3339 time", name)
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}, invalid("%s must be in the years 1 to 9999 (UTC)", name)
	}
	return t, nil
}

// checkWindow refuses a window whose end is before its start.
func checkWindow(f store.DeliveryFilter) error {
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return invalid("until must not be before since")
	}
	return nil
}
