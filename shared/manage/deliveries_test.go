package manage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// fakeQueue records the delivery messages the routes queue; with err set it refuses them.
type fakeQueue struct {
	mu   sync.Mutex
	err  error
	sent []queue.Delivery
}

func (q *fakeQueue) SendDelivery(_ context.Context, m queue.Delivery, _ time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.sent = append(q.sent, m)
	return nil
}

func (q *fakeQueue) fail(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.err = err
}

// queued returns the ids of the deliveries queued so far, in order.
func (q *fakeQueue) queued() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]string, len(q.sent))
	for i, m := range q.sent {
		out[i] = m.DeliveryID
	}
	return out
}

// newDeliveryEnv is newEnv with the delivery routes added over the store and a fake queue, as
// functions/management wires them.
func newDeliveryEnv(t *testing.T) (*env, *fakeQueue) {
	t.Helper()
	e := newEnv(t, false)
	q := &fakeQueue{}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := New(Config{DefaultWorkspace: "default", AdminKey: adminKey}, e.st, e.clk.now, log).WithDeliveries(e.st, q)
	e.invoke = lambda.NewHandler(h.Handle).Invoke
	return e, q
}

// delivery stores a delivery of sub made at the clock's time, as the fan-out makes one.
func (e *env) delivery(ws, sub string) store.Delivery {
	e.t.Helper()
	now := e.clk.now()
	d, _, err := e.st.CreateDelivery(context.Background(), store.Delivery{
		ID: ids.New("dlv", now), WorkspaceID: ws, SubscriptionID: sub, EventID: ids.New("evt", now), EventType: "run.completed",
		Payload: json.RawMessage(`{"type":"run.completed"}`),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// failedDelivery stores a delivery of sub whose one attempt failed for good.
func (e *env) failedDelivery(ws, sub string) store.Delivery {
	e.t.Helper()
	ctx := context.Background()
	d := e.delivery(ws, sub)
	if _, ok, err := e.st.ClaimAttempt(ctx, ws, d.ID, 0, time.Minute); err != nil || !ok {
		e.t.Fatalf("claim %s: %v %v", d.ID, ok, err)
	}
	if err := e.st.RecordAttempt(ctx, ws, d.ID, store.Attempt{At: e.clk.now(), StatusCode: 500}, store.DeliveryFailed, nil); err != nil {
		e.t.Fatal(err)
	}
	return d
}

// A cursor the list did not make for this subscription is a 400, never a 500.
func TestDeliveryListRefusesForeignCursors(t *testing.T) {
	t.Parallel()
	e, _ := newDeliveryEnv(t)
	key := e.key("ws")
	sub, other := e.createWebhook(key, map[string]any{"url": "https://example.com/a", "events": []string{"*"}}), e.createWebhook(key, map[string]any{"url": "https://example.com/b", "events": []string{"*"}})
	for range 2 {
		e.clk.add(time.Second)
		e.delivery("ws", sub.ID)
		e.delivery("ws", other.ID)
	}
	var page struct {
		Data       []store.Delivery `json:"data"`
		NextCursor *string          `json:"next_cursor"`
	}
	e.must(200, call{route: "GET /v1/webhooks/{id}/deliveries", params: map[string]string{"id": other.ID}, key: key, query: map[string]string{"limit": "1"}}).decode(t, &page)
	if page.NextCursor == nil {
		t.Fatal("no next page")
	}
	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"x":"y"}`))
	for name, c := range map[string]string{"forged": forged, "another subscription's": *page.NextCursor} {
		r := e.must(400, call{route: "GET /v1/webhooks/{id}/deliveries", params: map[string]string{"id": sub.ID}, key: key, query: map[string]string{"cursor": c}})
		if code, msg := r.errorCode(t); code != "invalid_request" || msg != "cursor is not valid" {
			t.Errorf("%s cursor: %s", name, r.body)
		}
	}
}

// newFullEnv is newEnv with every route, as functions/management wires them.
func newFullEnv(t *testing.T) (*env, *fakeQueue) {
	t.Helper()
	e := newEnv(t, false)
	q := &fakeQueue{}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := New(Config{DefaultWorkspace: "default", AdminKey: adminKey}, e.st, e.clk.now, log).WithDeliveries(e.st, q).WithIngress(e.st)
	e.invoke = lambda.NewHandler(h.Handle).Invoke
	return e, q
}

// An id or name no resource can have (over DynamoDB's key size, of another kind, with other
// characters) is the route's usual 404, never a 500, and never reaches the table.
func TestMalformedPathIDsAreNotFound(t *testing.T) {
	t.Parallel()
	e, q := newFullEnv(t)
	key := e.key("ws")
	sub := e.createWebhook(key, map[string]any{"url": "https://example.com/a", "events": []string{"*"}})
	dlv := e.failedDelivery("ws", sub.ID)
	long := strings.Repeat("a", 3000) // over the key size limits: 1 KB for a sort key, 2 KB for a partition key
	bad := map[string][]string{
		"sub": {"sub_" + long, long, dlv.ID, strings.ToUpper(sub.ID), sub.ID + "0", "sub_" + strings.Repeat("u", 26)},
		"dlv": {"dlv_" + long, long, sub.ID, strings.ToUpper(dlv.ID), dlv.ID[:len(dlv.ID)-1]},
		"key": {"key_" + long, long, sub.ID, "key_" + strings.Repeat("l", 26)},
		"src": {strings.Repeat("s", 2000), "Stripe", "-stripe", "a/b", "stripe\x00"},
	}
	for _, c := range []struct {
		route, param, kind, message, body string
	}{
		{"GET /v1/webhooks/{id}", "id", "sub", "subscription not found", ""},
		{"PATCH /v1/webhooks/{id}", "id", "sub", "subscription not found", `{"description":"x"}`},
		{"DELETE /v1/webhooks/{id}", "id", "sub", "subscription not found", ""},
		{"POST /v1/webhooks/{id}/rotate-secret", "id", "sub", "subscription not found", ""},
		{"POST /v1/webhooks/{id}/test", "id", "sub", "subscription not found", ""},
		{"POST /v1/webhooks/{id}/replay", "id", "sub", "subscription not found", `{"since":"2026-01-01T00:00:00Z"}`},
		{"GET /v1/webhooks/{id}/deliveries", "id", "sub", "subscription not found", ""},
		{"GET /v1/deliveries/{id}", "id", "dlv", "delivery not found", ""},
		{"POST /v1/deliveries/{id}/retry", "id", "dlv", "delivery not found", ""},
		{"DELETE /v1/api-keys/{id}", "id", "key", "api key not found", ""},
		{"GET /v1/sources/{name}", "name", "src", "source not found", ""},
		{"DELETE /v1/sources/{name}", "name", "src", "source not found", ""},
		{"POST /v1/sources/{name}/rotate", "name", "src", "source not found", ""},
		{"POST /v1/sources/{name}/retire", "name", "src", "source not found", ""},
	} {
		for _, id := range bad[c.kind] {
			var body any
			if c.body != "" {
				body = c.body
			}
			r := e.do(call{route: c.route, params: map[string]string{c.param: id}, key: key, body: body})
			if code, msg := r.errorCode(t); r.status != 404 || code != "not_found" || msg != c.message {
				t.Errorf("%s with %s %.30q: %d %s", c.route, c.param, id, r.status, r.body)
			}
		}
	}
	if got := q.queued(); len(got) != 0 {
		t.Fatalf("queued %v", got)
	}
	if d, err := e.st.GetDelivery(context.Background(), "ws", dlv.ID); err != nil || d.Status != store.DeliveryFailed {
		t.Fatalf("delivery changed: %+v %v", d, err)
	}
}

var errQueueDown = errors.New("AWS.SimpleQueueService.NonExistentQueue: arn:aws:sqs:us-east-1:000000000000:DeliveryQueue")

// A retry whose message cannot be queued is a 503 that tells nothing of the cause; the delivery,
// reset but never attempted, can be retried again and is queued then. One being attempted is 409.
func TestRetryAfterAQueueFailureQueuesAgain(t *testing.T) {
	t.Parallel()
	e, q := newDeliveryEnv(t)
	key := e.key("ws")
	sub := e.createWebhook(key, map[string]any{"url": "https://example.com/a", "events": []string{"*"}})
	dl := e.failedDelivery("ws", sub.ID)
	retry := call{route: "POST /v1/deliveries/{id}/retry", params: map[string]string{"id": dl.ID}, key: key}

	q.fail(errQueueDown)
	r := e.must(503, retry)
	if code, _ := r.errorCode(t); code != "unavailable" || strings.Contains(r.body, "arn:") || strings.Contains(r.body, "NonExistent") {
		t.Fatalf("queue down: %s", r.body)
	}
	if got, _ := e.st.GetDelivery(context.Background(), "ws", dl.ID); got.Status != store.DeliveryPending || got.Attempts != 0 {
		t.Fatalf("after the failed retry: %+v", got)
	}
	q.fail(nil)
	var again store.Delivery
	e.must(202, retry).decode(t, &again)
	if again.Status != store.DeliveryPending || again.Attempts != 0 || !slices.Equal(q.queued(), []string{dl.ID}) {
		t.Fatalf("second retry: %+v, queued %v", again, q.queued())
	}
	// The delivery function claims attempt 0: from then on it is being attempted.
	if _, ok, err := e.st.ClaimAttempt(context.Background(), "ws", dl.ID, 0, time.Minute); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	r = e.must(409, retry)
	if code, _ := r.errorCode(t); code != "conflict" || len(q.queued()) != 1 {
		t.Fatalf("retry while attempted: %s, queued %v", r.body, q.queued())
	}
}
