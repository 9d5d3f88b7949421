package manage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// fakeQueue records the delivery messages the routes queue; with err set it refuses them.
type fakeQueue struct {
	mu      sync.Mutex
	err     error
	sent    []queue.Delivery
	batches int // SendDeliveries requests to SQS (ten messages each)
}

func (q *fakeQueue) SendDeliveries(_ context.Context, ms []queue.Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.batches += (len(ms) + 9) / 10
	q.sent = append(q.sent, ms...)
	return nil
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

func (q *fakeQueue) reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sent = nil
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
	h := New(Config{DefaultWorkspace: "default", AdminKey: adminKey}, e.st, e.clk.now, log).WithDeliveries(e.st, q).WithSources(e.st)
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

// Replay re-queues exactly the subscription's failed deliveries created in [since, until]: not
// those before or after, not succeeded or pending ones, not another subscription's.
func TestReplayTimeRange(t *testing.T) {
	t.Parallel()
	e, q := newDeliveryEnv(t)
	key := e.key("ws")
	sub := e.createWebhook(key, map[string]any{"url": "https://example.com/a", "events": []string{"*"}})
	other := e.createWebhook(key, map[string]any{"url": "https://example.com/b", "events": []string{"*"}})
	t0 := e.clk.now().Truncate(time.Hour).Add(time.Hour)
	at := func(d time.Duration) { e.clk.set(t0.Add(d)) }

	at(-time.Minute)
	before := e.failedDelivery("ws", sub.ID)
	at(0)
	first := e.failedDelivery("ws", sub.ID)
	at(30 * time.Minute)
	succeeded := e.delivery("ws", sub.ID)
	e.st.ClaimAttempt(context.Background(), "ws", succeeded.ID, 0, time.Minute)
	if err := e.st.RecordAttempt(context.Background(), "ws", succeeded.ID, store.Attempt{At: e.clk.now(), StatusCode: 200}, store.DeliverySucceeded, nil); err != nil {
		t.Fatal(err)
	}
	at(40 * time.Minute)
	pending := e.delivery("ws", sub.ID)
	othersFailed := e.failedDelivery("ws", other.ID)
	at(time.Hour)
	last := e.failedDelivery("ws", sub.ID)
	at(time.Hour + time.Second)
	after := e.failedDelivery("ws", sub.ID)
	at(2 * time.Hour)

	var out struct{ Replayed int }
	e.must(202, call{route: "POST /v1/webhooks/{id}/replay", params: map[string]string{"id": sub.ID}, key: key, body: map[string]string{
		"since": t0.Format(time.RFC3339), "until": t0.Add(time.Hour).Format(time.RFC3339),
	}}).decode(t, &out)
	if out.Replayed != 2 || !slices.Equal(q.queued(), []string{last.ID, first.ID}) {
		t.Fatalf("replayed %d, queued %v; want %s and %s, newest first", out.Replayed, q.queued(), last.ID, first.ID)
	}
	for _, c := range []struct {
		d              store.Delivery
		status         string
		series, before int
	}{
		{first, store.DeliveryPending, 1, 0}, {last, store.DeliveryPending, 1, 0},
		{before, store.DeliveryFailed, 0, 0}, {after, store.DeliveryFailed, 0, 0}, {othersFailed, store.DeliveryFailed, 0, 0},
		{succeeded, store.DeliverySucceeded, 0, 0}, {pending, store.DeliveryPending, 0, 0},
	} {
		got, err := e.st.GetDelivery(context.Background(), "ws", c.d.ID)
		if err != nil || got.Status != c.status || got.Series != c.series || got.Attempts != 0 && c.status == store.DeliveryPending {
			t.Errorf("delivery %s: %+v %v; want %s in series %d", c.d.ID, got, err, c.status, c.series)
		}
	}

	// Without until the range is open: the failed ones from since on, those just replayed excepted.
	q.reset()
	e.must(202, call{route: "POST /v1/webhooks/{id}/replay", params: map[string]string{"id": sub.ID}, key: key, body: map[string]string{
		"since": t0.Format(time.RFC3339),
	}}).decode(t, &out)
	if out.Replayed != 1 || !slices.Equal(q.queued(), []string{after.ID}) {
		t.Fatalf("open range: replayed %d, queued %v; want %s", out.Replayed, q.queued(), after.ID)
	}
}

// The replay body is read as every body is (base64 from API Gateway, the size cap), and a bad
// time says which field it is in.
func TestReplayBody(t *testing.T) {
	t.Parallel()
	e, q := newDeliveryEnv(t)
	key := e.key("ws")
	sub := e.createWebhook(key, map[string]any{"url": "https://example.com/a", "events": []string{"*"}})
	e.clk.add(-time.Hour)
	failed := e.failedDelivery("ws", sub.ID)
	e.clk.add(time.Hour)
	replay := func(body string, b64 bool) call {
		return call{route: "POST /v1/webhooks/{id}/replay", params: map[string]string{"id": sub.ID}, key: key, body: body, base64: b64}
	}
	for _, c := range []struct{ body, message string }{
		{`{"since":"yesterday"}`, "since must be an RFC 3339 time"},
		{`{"since":"2026-11-25"}`, "since must be an RFC 3339 time"},
		{`{"since":"2026-11-25T08:00:00Z","until":"soon"}`, "until must be an RFC 3339 time"},
		{`{"since":1764057600}`, "since must be a string"},
		{`{}`, "since is required (RFC 3339)"},
		{``, "since is required (RFC 3339)"},
		{`{"since":"2026-11-25T08:00:00Z","until":"2026-11-25T07:00:00Z"}`, "until must not be before since"},
		{`{"since":"2026-11-25T08:00:00Z","status":"failed"}`, `unknown field "status"`},
	} {
		r := e.must(400, replay(c.body, false))
		if code, msg := r.errorCode(t); code != "invalid_request" || msg != c.message {
			t.Errorf("%s: %s, want %q", c.body, r.body, c.message)
		}
	}
	e.must(413, replay(`{"since":"2026-11-25T08:00:00Z","x":"`+strings.Repeat("x", MaxBodyBytes)+`"}`, false))
	e.must(413, replay(`{"since":"2026-11-25T08:00:00Z","x":"`+strings.Repeat("x", MaxBodyBytes)+`"}`, true))
	if len(q.queued()) != 0 {
		t.Fatalf("refused replays queued %v", q.queued())
	}
	var out struct{ Replayed int }
	e.must(202, replay(`{"since":"`+e.clk.now().Add(-2*time.Hour).Format(time.RFC3339)+`"}`, true)).decode(t, &out)
	if out.Replayed != 1 || !slices.Equal(q.queued(), []string{failed.ID}) {
		t.Fatalf("base64 body: replayed %d, queued %v", out.Replayed, q.queued())
	}
}

// replayStore serves a replay from memory: n failed deliveries, newest first, some of which
// another caller retries between the listing and the replay's retry.
type replayStore struct {
	DeliveryStore // not called
	sub           store.Subscription
	failed        []store.Delivery
	raced         map[string]bool
	mu            sync.Mutex
	reset         []string
	lists         int
	inFlight      int // RetryDelivery calls running now, and the most at once
	peak          int
}

func (s *replayStore) GetSubscription(_ context.Context, ws, id string) (store.Subscription, error) {
	return s.sub, nil
}

func (s *replayStore) ListDeliveries(_ context.Context, ws, sub string, f store.DeliveryFilter) ([]store.Delivery, string, error) {
	s.mu.Lock()
	s.lists++
	s.mu.Unlock()
	from := 0
	if f.Cursor != "" {
		from, _ = strconv.Atoi(f.Cursor)
	}
	to := min(from+f.Limit, len(s.failed))
	if to == len(s.failed) {
		return s.failed[from:to], "", nil
	}
	return s.failed[from:to], strconv.Itoa(to), nil
}

func (s *replayStore) RetryDelivery(_ context.Context, ws, id string) (store.Delivery, error) {
	if s.raced[id] {
		return store.Delivery{}, apierr.New(apierr.Conflict, "the delivery is being attempted")
	}
	s.mu.Lock()
	s.inFlight++
	s.peak = max(s.peak, s.inFlight)
	s.reset = append(s.reset, id)
	s.mu.Unlock()
	time.Sleep(time.Millisecond) // a round trip, so calls overlap when they may
	s.mu.Lock()
	s.inFlight--
	s.mu.Unlock()
	return store.Delivery{ID: id, WorkspaceID: ws, Status: store.DeliveryPending}, nil
}

// A replay re-queues MaxReplay deliveries at most, exactly, however many of a page were retried
// meanwhile, and resets none it does not queue.
func TestReplayCapIsExact(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	key := e.key("ws")
	st := &replayStore{sub: store.Subscription{ID: ids.New("sub", e.clk.now()), WorkspaceID: "ws", Status: store.SubscriptionActive}, raced: map[string]bool{}}
	for i := range MaxReplay + 150 {
		d := store.Delivery{ID: ids.Derive("dlv", strconv.Itoa(i)), WorkspaceID: "ws", Status: store.DeliveryFailed}
		st.failed = append(st.failed, d)
		if i%10 == 3 {
			st.raced[d.ID] = true // retried by someone else meanwhile
		}
	}
	q := &fakeQueue{}
	h := New(Config{DefaultWorkspace: "default", AdminKey: adminKey}, e.st, e.clk.now, slog.New(slog.DiscardHandler)).WithDeliveries(st, q)
	e.invoke = lambda.NewHandler(h.Handle).Invoke
	var out struct{ Replayed int }
	e.must(202, call{route: "POST /v1/webhooks/{id}/replay", params: map[string]string{"id": st.sub.ID}, key: key, body: `{"since":"2026-01-01T00:00:00Z"}`}).decode(t, &out)
	if out.Replayed != MaxReplay || len(q.queued()) != MaxReplay || len(st.reset) != MaxReplay {
		t.Fatalf("replayed %d, queued %d, reset %d; want %d each", out.Replayed, len(q.queued()), len(st.reset), MaxReplay)
	}
}

// A replay of MaxReplay (1,000) deliveries fits ManagementFunction's 15 s: it queues them ten per
// SQS request (100 requests, not 1,000), reads them a page of 100 at a time, and resets up to
// replayParallel at once, so its calls in sequence are about 1,000/10 + 100 + 10, not 2,000.
func TestReplayOfAThousandFitsTheFunctionTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	key := e.key("ws")
	st := &replayStore{sub: store.Subscription{ID: ids.New("sub", e.clk.now()), WorkspaceID: "ws", Status: store.SubscriptionActive}, raced: map[string]bool{}}
	for i := range MaxReplay {
		st.failed = append(st.failed, store.Delivery{ID: ids.Derive("dlv", strconv.Itoa(i)), WorkspaceID: "ws", Status: store.DeliveryFailed})
	}
	q := &fakeQueue{}
	h := New(Config{DefaultWorkspace: "default", AdminKey: adminKey}, e.st, e.clk.now, slog.New(slog.DiscardHandler)).WithDeliveries(st, q)
	e.invoke = lambda.NewHandler(h.Handle).Invoke
	var out struct{ Replayed int }
	e.must(202, call{route: "POST /v1/webhooks/{id}/replay", params: map[string]string{"id": st.sub.ID}, key: key, body: `{"since":"2026-01-01T00:00:00Z"}`}).decode(t, &out)
	got := q.queued()
	if out.Replayed != MaxReplay || len(got) != MaxReplay {
		t.Fatalf("replayed %d, queued %d; want %d", out.Replayed, len(got), MaxReplay)
	}
	for i, id := range got { // newest first, as listed
		if id != st.failed[i].ID {
			t.Fatalf("queued #%d is %s, want %s", i, id, st.failed[i].ID)
		}
	}
	if q.batches != MaxReplay/10 {
		t.Errorf("%d SQS requests, want %d (ten messages each)", q.batches, MaxReplay/10)
	}
	if st.lists != MaxReplay/replayPage {
		t.Errorf("%d listings, want %d", st.lists, MaxReplay/replayPage)
	}
	if st.peak < 2 || st.peak > replayParallel {
		t.Errorf("at most %d resets ran at once, want 2 to %d", st.peak, replayParallel)
	}
}

// A test send is one webhook.test delivery to this subscription only, queued at once.
func TestWebhookTestSend(t *testing.T) {
	t.Parallel()
	e, q := newDeliveryEnv(t)
	key, otherKey := e.key("ws"), e.key("ws-other")
	sub := e.createWebhook(key, map[string]any{"url": "https://example.com/a", "events": []string{"run.*"}})
	sibling := e.createWebhook(key, map[string]any{"url": "https://example.com/b", "events": []string{"*"}})
	foreign := e.createWebhook(otherKey, map[string]any{"url": "https://example.com/c", "events": []string{"*"}})

	var out struct {
		DeliveryID string `json:"delivery_id"`
		EventID    string `json:"event_id"`
	}
	e.must(202, call{route: "POST /v1/webhooks/{id}/test", params: map[string]string{"id": sub.ID}, key: key}).decode(t, &out)
	if !ids.Valid("dlv", out.DeliveryID) || !ids.Valid("evt", out.EventID) || !slices.Equal(q.queued(), []string{out.DeliveryID}) {
		t.Fatalf("reply %+v, queued %v", out, q.queued())
	}
	if m := q.sent[0]; m.WorkspaceID != "ws" || m.Attempt != 0 || !m.NotBefore.IsZero() {
		t.Fatalf("message %+v", m)
	}
	d, err := e.st.GetDelivery(context.Background(), "ws", out.DeliveryID)
	if err != nil || d.SubscriptionID != sub.ID || d.EventType != EventWebhookTest || d.EventID != out.EventID || d.Status != store.DeliveryPending {
		t.Fatalf("delivery %+v %v", d, err)
	}
	var payload struct {
		ID          string            `json:"id"`
		Type        string            `json:"type"`
		WorkspaceID string            `json:"workspace_id"`
		CreatedAt   time.Time         `json:"created_at"`
		Data        map[string]string `json:"data"`
	}
	if err := json.Unmarshal(d.Payload, &payload); err != nil || payload.ID != out.EventID || payload.Type != "webhook.test" ||
		payload.WorkspaceID != "ws" || !payload.CreatedAt.Equal(e.clk.now()) || payload.Data["subscription_id"] != sub.ID {
		t.Fatalf("payload %s: %+v %v", d.Payload, payload, err)
	}
	// Only this subscription: its sibling (which matches every event) and other workspaces get nothing.
	for _, s := range []struct{ ws, id string }{{"ws", sibling.ID}, {"ws-other", foreign.ID}} {
		if ds, _, err := e.st.ListDeliveries(context.Background(), s.ws, s.id, store.DeliveryFilter{Limit: 10}); err != nil || len(ds) != 0 {
			t.Fatalf("%s got %d deliveries (%v)", s.id, len(ds), err)
		}
	}
	// Another workspace's key cannot test this subscription; a queue outage is a 503.
	e.must(404, call{route: "POST /v1/webhooks/{id}/test", params: map[string]string{"id": sub.ID}, key: otherKey})
	q.fail(errQueueDown)
	if r := e.must(503, call{route: "POST /v1/webhooks/{id}/test", params: map[string]string{"id": sub.ID}, key: key}); strings.Contains(r.body, "arn:") {
		t.Fatalf("the error shows its cause: %s", r.body)
	}
	if len(q.queued()) != 1 {
		t.Fatalf("queued %v", q.queued())
	}
}
