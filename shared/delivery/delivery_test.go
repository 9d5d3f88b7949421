package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/telegram"
	"github.com/hookgate/hookgate/shared/trace"
)

// fakeStore keeps one delivery and one subscription: enough for the scheduling logic. The real
// store's conditions are tested on DynamoDB Local (shared/store) and end to end (local/e2e).
type fakeStore struct {
	mu       sync.Mutex
	d        store.Delivery
	sub      store.Subscription
	events   []store.Event
	failures int
	claims   int
	// appendFails makes that many AppendEvent calls fail first (a throttled table).
	appendFails int
	scheduled   []store.ScheduledDelivery // the retry schedule
	lim         fakeLimits                // the Limiter's state (limiter_test.go)
	// leased says another receive of the delivery's message holds its attempt's lease.
	leased bool
	// absent says no item holds the delivery yet: its first message carries it (ClaimNewDelivery).
	absent bool
}

func (f *fakeStore) ClaimAttempt(_ context.Context, _, _ string, attempt int, _ time.Duration) (store.Delivery, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.d.Status != store.DeliveryPending || f.d.Attempts != attempt || f.leased {
		return f.d, false, nil
	}
	f.claims++
	return f.d, true, nil
}

// ClaimNewDelivery creates the delivery, claimed, when it is absent; else it is ClaimAttempt's
// claim of attempt 0.
func (f *fakeStore) ClaimNewDelivery(ctx context.Context, d store.Delivery, lease time.Duration) (store.Delivery, bool, error) {
	f.mu.Lock()
	if f.absent {
		d.Status, f.absent = store.DeliveryPending, false
		f.d = d
		f.claims++
		f.mu.Unlock()
		return d, true, nil
	}
	f.mu.Unlock()
	return f.ClaimAttempt(ctx, d.WorkspaceID, d.ID, 0, lease)
}

func (f *fakeStore) RecordAttempt(_ context.Context, _, _ string, a store.Attempt, status string, next *time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.d.Status, f.d.Attempts, f.d.NextAttemptAt, f.d.LastStatusCode, f.d.RetryScheduled = status, a.Number+1, next, a.StatusCode, false
	return nil
}

func (f *fakeStore) RecordAttemptScheduled(ctx context.Context, ws, id string, a store.Attempt, next time.Time, _ string) error {
	_ = f.RecordAttempt(ctx, ws, id, a, store.DeliveryPending, &next)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.d.RetryScheduled = true
	f.scheduled = append(f.scheduled, store.ScheduledDelivery{WorkspaceID: ws, DeliveryID: id, Series: a.Series, Attempt: a.Number + 1, Due: next})
	return nil
}

func (f *fakeStore) ScheduleDelivery(_ context.Context, e store.ScheduledDelivery) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scheduled = append(f.scheduled, e)
	return nil
}

func (f *fakeStore) GetSubscription(context.Context, string, string) (store.Subscription, error) {
	if f.sub.ID == "" {
		return store.Subscription{}, apierr.New(apierr.NotFound, "subscription not found")
	}
	return f.sub, nil
}

func (f *fakeStore) DisableSubscription(_ context.Context, _, _, reason string) (bool, error) {
	changed := f.sub.Status == "active"
	f.sub.Status, f.sub.DisabledReason = "disabled", reason
	return changed, nil
}

func (f *fakeStore) RecordDeliveryOutcome(_ context.Context, _, _ string, ok bool) (int, error) {
	if ok {
		f.failures = 0
	} else {
		f.failures++
	}
	return f.failures, nil
}

func (f *fakeStore) AppendEvent(_ context.Context, e store.Event) (store.Event, error) {
	if f.appendFails > 0 {
		f.appendFails--
		return store.Event{}, errors.New("throttled")
	}
	f.events = append(f.events, e)
	return e, nil
}

type sent struct {
	m     queue.Delivery
	delay time.Duration
}

type fakeQueue struct{ sent []sent }

func (q *fakeQueue) SendDelivery(_ context.Context, m queue.Delivery, delay time.Duration) error {
	q.sent = append(q.sent, sent{m, min(delay, queue.MaxDelay)})
	return nil
}

type rig struct {
	st    *fakeStore
	q     *fakeQueue
	now   time.Time
	h     *Handler
	posts int
	// longestChain is the most invocations one chain of messages made (Lambda's recursion rule
	// stops a chain at 16); a chain starts with a message the fan-out or the sweep sent.
	longestChain int
}

func newRig(t *testing.T, schedule string, disableAfter int, respond func(n int) outbound.Result) *rig {
	return newRigRequeues(t, schedule, disableAfter, 4, respond)
}

func newRigRequeues(t *testing.T, schedule string, disableAfter, maxRequeues int, respond func(n int) outbound.Result) *rig {
	t.Helper()
	s, err := outbound.ParseSchedule(schedule)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{
		st: &fakeStore{
			d:   store.Delivery{ID: "dlv_1", WorkspaceID: "ws", SubscriptionID: "sub_1", EventID: "evt_1", EventType: "run.completed", Payload: json.RawMessage(`{}`), Status: store.DeliveryPending},
			sub: store.Subscription{ID: "sub_1", WorkspaceID: "ws", URL: "https://example.com:8443/h/tok_path?token=tok_query", Status: "active", Secrets: []store.SigningSecret{{Value: outbound.NewSecret()}}},
		},
		q:   &fakeQueue{},
		now: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
	}
	post := func(_ context.Context, req outbound.Request) outbound.Result {
		r.posts++
		if req.MsgID != "evt_1" || req.Signer == nil {
			t.Fatalf("request %+v", req)
		}
		return respond(r.posts)
	}
	cfg := Config{Schedule: s, MaxRetryAfter: time.Hour, Lease: time.Minute, DisableAfter: disableAfter, MaxRequeues: maxRequeues}
	cfg.Rand = func() float64 { return 0.5 } // no jitter: the schedule's own times
	cfg.Sleep = func(_ context.Context, d time.Duration) error { r.now = r.now.Add(d); return nil }
	r.h = New(cfg, r.st, r.q, post,
		slog.New(slog.DiscardHandler), func() time.Time { return r.now })
	return r
}

// deliver hands the handler one queue message and reports whether it was a batch item failure.
func (r *rig) deliver(t *testing.T, m queue.Delivery) {
	t.Helper()
	r.deliverIn(t, context.Background(), m)
}

// invocation is the context of the invocation at place lineage in its chain of requests, with
// the trace header aws-lambda-go puts there.
func invocation(lineage int) context.Context {
	//lint:ignore SA1029 aws-lambda-go's own key for the invocation's trace header
	return context.WithValue(context.Background(), "x-amzn-trace-id",
		fmt.Sprintf("Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=1:0badf00d:%d", lineage))
}

// deliverIn is deliver in an invocation's context ctx (its trace header).
func (r *rig) deliverIn(t *testing.T, ctx context.Context, m queue.Delivery) {
	t.Helper()
	m.Version, m.WorkspaceID, m.DeliveryID = queue.DeliveryVersion, "ws", "dlv_1"
	b, _ := json.Marshal(m)
	resp, _ := r.h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m", Body: string(b)}}})
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("batch item failure for %+v", m)
	}
}

// run follows the queue as SQS would: each sent message arrives after its delay, on the fake clock;
// with nothing in the queue, the sweep queues the first due entry of the retry schedule at its time.
func (r *rig) run(t *testing.T) {
	t.Helper()
	r.deliverIn(t, invocation(1), queue.Delivery{})
	r.longestChain = 1
	for len(r.q.sent) > 0 || len(r.st.scheduled) > 0 {
		if len(r.q.sent) == 0 {
			e := r.st.scheduled[0]
			r.st.scheduled = r.st.scheduled[1:]
			r.now = e.Due
			r.q.sent = append(r.q.sent, sent{m: queue.Delivery{Attempt: e.Attempt, NotBefore: e.Due}})
		}
		next := r.q.sent[0]
		r.q.sent = r.q.sent[1:]
		r.now = r.now.Add(next.delay)
		// Each message the function sent itself counts in Requeues: its chain is one longer.
		r.deliverIn(t, invocation(next.m.Requeues+1), next.m)
		r.longestChain = max(r.longestChain, next.m.Requeues+1)
	}
}

// The default schedule's retries never make a chain Lambda would stop: long waits go on the
// retry schedule. With requeues unbounded, the invocation's own chain still keeps every chain
// within Lambda's 16.
func TestDefaultScheduleStaysUnderTheRecursionRule(t *testing.T) {
	fail := func(int) outbound.Result { return outbound.Result{StatusCode: 500} }
	r := newRig(t, "default", 0, fail)
	start := r.now
	r.run(t)
	if r.posts != 8 || r.st.d.Status != store.DeliveryFailed || len(r.st.events) != 1 || r.st.events[0].Type != EventDeliveryExhausted {
		t.Fatalf("posts %d, status %s, events %+v", r.posts, r.st.d.Status, r.st.events)
	}
	want, _ := outbound.ParseSchedule(outbound.ScheduleDefault)
	if got := r.now.Sub(start); got != want.Total() {
		t.Fatalf("last attempt after %v, want %v", got, want.Total())
	}
	if r.longestChain > 5 {
		t.Fatalf("a chain of %d invocations", r.longestChain)
	}
	old := newRigRequeues(t, "default", 0, 1<<20, fail)
	old.run(t)
	if old.posts != 8 || old.st.d.Status != store.DeliveryFailed || old.longestChain > trace.LambdaChainLimit || old.longestChain <= 5 {
		t.Fatalf("requeues unbounded: posts %d, status %s, longest chain %d", old.posts, old.st.d.Status, old.longestChain)
	}
}

// A batch's invocation continues one message's chain of requests, and everything it sends
// continues that chain: a retry the invocation's chain could not make through the queue without
// Lambda stopping it goes on the retry schedule, however few times its own delivery was requeued.
func TestRetriesStayUnderTheInvocationsChain(t *testing.T) {
	fail := func(int) outbound.Result { return outbound.Result{StatusCode: 500} }
	for _, c := range []struct {
		lineage int
		queued  bool
	}{{0, true}, {3, true}, {13, true}, {14, false}, {16, false}, {40, false}} {
		// A failed attempt's retry.
		r := newRig(t, "0s,5s", 0, fail)
		r.deliverIn(t, invocation(c.lineage), queue.Delivery{})
		if queued := len(r.q.sent) == 1 && len(r.st.scheduled) == 0; queued != c.queued || len(r.q.sent)+len(r.st.scheduled) != 1 {
			t.Errorf("retry in invocation %d of its chain: queued %v, scheduled %v; want queued %v", c.lineage, r.q.sent, r.st.scheduled, c.queued)
		}
		// A message that came early (a hop of a longer wait).
		r = newRig(t, "0s,5s", 0, fail)
		r.deliverIn(t, invocation(c.lineage), queue.Delivery{NotBefore: r.now.Add(10 * time.Minute)})
		if queued := len(r.q.sent) == 1 && len(r.st.scheduled) == 0; queued != c.queued || len(r.q.sent)+len(r.st.scheduled) != 1 || r.posts != 0 {
			t.Errorf("early message in invocation %d of its chain: queued %v, scheduled %v; want queued %v", c.lineage, r.q.sent, r.st.scheduled, c.queued)
		}
		// An attempt deferred by its endpoint's rate limit (an open circuit waits the same way):
		// a rate slot is reserved ahead only when the wait can be made in the queue.
		r = newRig(t, "0s,5s", 0, fail)
		r.st.sub.RateLimit = &store.RateLimit{PerSecond: 0.1, Burst: 1}
		ahead := r.now.Add(30 * time.Second)
		r.st.lim.tat = map[string]time.Time{"RATE": ahead}
		r.deliverIn(t, invocation(c.lineage), queue.Delivery{})
		queued := len(r.q.sent) == 1 && len(r.st.scheduled) == 0 && r.q.sent[0].m.Paced
		reserved := !r.st.lim.tat["RATE"].Equal(ahead)
		if queued != c.queued || reserved != c.queued || len(r.q.sent)+len(r.st.scheduled) != 1 || r.posts != 0 {
			t.Errorf("deferred attempt in invocation %d of its chain: queued %v, scheduled %v, slot reserved %v; want queued %v",
				c.lineage, r.q.sent, r.st.scheduled, reserved, c.queued)
		}
	}
}

func TestRetriesFollowTheScheduleAcrossLongWaits(t *testing.T) {
	r := newRig(t, "0s,5s,2h", 0, func(n int) outbound.Result {
		if n < 3 {
			return outbound.Result{StatusCode: 500}
		}
		return outbound.Result{StatusCode: 204}
	})
	start := r.now
	r.run(t)
	if r.posts != 3 || r.st.d.Status != store.DeliverySucceeded {
		t.Fatalf("posts %d, status %s", r.posts, r.st.d.Status)
	}
	// 5 s in the queue, then 2 h (eight 15-minute hops, past MaxRequeues) on the retry schedule:
	// the third attempt happens 2h5s after the first.
	if got := r.now.Sub(start); got != 2*time.Hour+5*time.Second {
		t.Fatalf("third attempt after %v", got)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	r := newRig(t, "0s,1s", 0, func(n int) outbound.Result {
		if n == 1 {
			return outbound.Result{StatusCode: 429, RetryAfter: 90 * time.Second}
		}
		return outbound.Result{StatusCode: 200}
	})
	start := r.now
	r.run(t)
	// At least the 90 s asked, stretched by the jitter's upper half (the rig draws 0.5: +10%).
	if r.now.Sub(start) != 99*time.Second || r.st.d.Status != store.DeliverySucceeded {
		t.Fatalf("second attempt after %v, status %s", r.now.Sub(start), r.st.d.Status)
	}
}

func TestExhaustedIsReportedAndDisablesAfterN(t *testing.T) {
	r := newRig(t, "simple", 1, func(int) outbound.Result { return outbound.Result{StatusCode: 502, Err: ""} })
	r.run(t)
	if r.posts != 3 || r.st.d.Status != store.DeliveryFailed {
		t.Fatalf("posts %d status %s", r.posts, r.st.d.Status)
	}
	if len(r.st.events) != 2 || r.st.events[0].Type != EventDeliveryExhausted || r.st.events[1].Type != EventSubscriptionDisabled {
		t.Fatalf("events %+v", r.st.events)
	}
	var data map[string]any
	_ = json.Unmarshal(r.st.events[0].Data, &data)
	if data["subscription_id"] != "sub_1" || data["delivery_id"] != "dlv_1" || data["attempts"] != float64(3) {
		t.Fatalf("exhausted data %v", data)
	}
	if r.st.sub.Status != "disabled" {
		t.Fatal("subscription still active")
	}
	// Every "*" subscriber reads subscription.disabled: it shows the URL's origin, not its tokens.
	data = nil
	_ = json.Unmarshal(r.st.events[1].Data, &data)
	if data["subscription_id"] != "sub_1" || data["origin"] != "https://example.com:8443" || strings.Contains(string(r.st.events[1].Data), "tok_") {
		t.Fatalf("subscription.disabled data %s", r.st.events[1].Data)
	}
}

func TestOrigin(t *testing.T) {
	for raw, want := range map[string]string{
		"https://example.com/h/secret?token=x":     "https://example.com",
		"http://127.0.0.1:9000/hook#frag":          "http://127.0.0.1:9000",
		"https://user:pass@example.com:8443/h?a=1": "https://example.com:8443",
		"https://[2001:db8::1]:443/x":              "https://[2001:db8::1]:443",
		"not a url":                                "",
		"":                                         "",
	} {
		if got := Origin(raw); got != want {
			t.Errorf("Origin(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestGoneDisablesWithoutRetry(t *testing.T) {
	r := newRig(t, "default", 0, func(int) outbound.Result { return outbound.Result{StatusCode: 410} })
	r.run(t)
	if r.posts != 1 || r.st.d.Status != store.DeliveryFailed || r.st.sub.Status != "disabled" {
		t.Fatalf("posts %d delivery %s sub %s", r.posts, r.st.d.Status, r.st.sub.Status)
	}
}

func TestDuplicateAndStaleMessagesDoNothing(t *testing.T) {
	r := newRig(t, "0s,1s", 0, func(int) outbound.Result { return outbound.Result{StatusCode: 200} })
	r.deliver(t, queue.Delivery{})
	r.deliver(t, queue.Delivery{}) // SQS delivered the first message twice
	if r.posts != 1 || len(r.q.sent) != 0 {
		t.Fatalf("posts %d, queued %d", r.posts, len(r.q.sent))
	}
}

// A redelivered message after its retry was recorded but not queued (a crash in between) queues it.
func TestRedeliveryRequeuesALostRetry(t *testing.T) {
	r := newRig(t, "0s,1m", 0, func(int) outbound.Result { return outbound.Result{StatusCode: 500} })
	r.deliver(t, queue.Delivery{})
	if len(r.q.sent) != 1 {
		t.Fatalf("queued %d", len(r.q.sent))
	}
	r.q.sent = nil // lost
	r.deliver(t, queue.Delivery{})
	if len(r.q.sent) != 1 || r.q.sent[0].m.Attempt != 1 || r.posts != 1 {
		t.Fatalf("requeued %+v after %d posts", r.q.sent, r.posts)
	}
}

func TestDeletedSubscriptionFailsTheDelivery(t *testing.T) {
	r := newRig(t, "default", 0, func(int) outbound.Result { return outbound.Result{StatusCode: 200} })
	r.st.sub = store.Subscription{}
	r.run(t)
	if r.posts != 0 || r.st.d.Status != store.DeliveryFailed {
		t.Fatalf("posts %d status %s", r.posts, r.st.d.Status)
	}
}

// A callback goes to the run's replyUrl signed with its adapter's signer; it touches no
// subscription and is retried like any delivery.
func TestCallbackIsSignedByItsAdapter(t *testing.T) {
	r := newRig(t, "0s,1s", 0, func(n int) outbound.Result {
		if n == 1 {
			return outbound.Result{StatusCode: 503}
		}
		return outbound.Result{StatusCode: 200}
	})
	signer, err := outbound.NewSharedSigner("adapter-secret-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	r.h.cfg.Callbacks = map[string]*outbound.Signer{CallbackKey(r.st.d.WorkspaceID, "ops"): signer}
	r.st.d.SubscriptionID, r.st.d.Target, r.st.d.Destination, r.st.d.Adapter = "", store.TargetCallback, "https://hooks.example.com/cb", "ops"
	r.st.sub = store.Subscription{} // no subscription exists: a callback must not need one
	var urls []string
	var signers []*outbound.Signer
	inner := r.h.post
	r.h.post = func(ctx context.Context, req outbound.Request) outbound.Result {
		urls, signers = append(urls, req.URL), append(signers, req.Signer)
		return inner(ctx, req)
	}
	r.run(t)
	if r.posts != 2 || r.st.d.Status != store.DeliverySucceeded || urls[1] != "https://hooks.example.com/cb" || signers[0] != signer {
		t.Fatalf("posts %d status %s urls %v", r.posts, r.st.d.Status, urls)
	}

	// An adapter that is no longer configured fails the callback without a request.
	r2 := newRig(t, "0s,1s", 0, func(int) outbound.Result { return outbound.Result{StatusCode: 200} })
	r2.st.d.SubscriptionID, r2.st.d.Target, r2.st.d.Destination, r2.st.d.Adapter = "", store.TargetCallback, "https://hooks.example.com/cb", "gone"
	r2.run(t)
	if r2.posts != 0 || r2.st.d.Status != store.DeliveryFailed {
		t.Fatalf("unknown adapter: posts %d status %s", r2.posts, r2.st.d.Status)
	}
}

// A reply to an inline button's press answers its callback query, and is sent even when the
// answer fails.
func TestTelegramReplyAnswersTheCallbackQuery(t *testing.T) {
	r := newRig(t, "0s,1s", 0, func(int) outbound.Result { t.Fatal("posted over HTTP"); return outbound.Result{} })
	r.st.d.SubscriptionID, r.st.d.Target, r.st.d.Destination = "", store.TargetTelegram, "42"
	r.st.d.Payload = json.RawMessage(`{"chat_id":"42","text":"yes","callback_query_id":"cbq-7"}`)
	bot := &fakeBot{errs: []error{nil}}
	r.h.cfg.Telegram = TelegramSender(oneBot{bot})
	r.run(t)
	if bot.sends != 1 || bot.text != "yes" || len(bot.answered) != 1 || bot.answered[0] != "cbq-7" || r.st.d.Status != store.DeliverySucceeded {
		t.Fatalf("sends %d text %q answered %v status %s", bot.sends, bot.text, bot.answered, r.st.d.Status)
	}
}

// Telegram replies go through the Bot API sender: a refused message (chat not found, bot blocked)
// fails at once and is reported, a throttled one is retried after Telegram's retry_after.
func TestTelegramRepliesRetryOnlyWhatCanSucceed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		errs     []error
		sends    int
		status   string
		reported bool
		waited   time.Duration
	}{
		{"throttled then sent", []error{&telegram.Error{Retryable: true, Reason: "telegram answered 429", RetryAfter: 30 * time.Second}, nil}, 2, store.DeliverySucceeded, false, 33 * time.Second},
		{"chat not found", []error{&telegram.Error{Reason: "telegram answered 400: Bad Request: chat not found"}}, 1, store.DeliveryFailed, true, 0},
		{"down then exhausted", []error{&telegram.Error{Retryable: true, Reason: "telegram answered 502"}}, 3, store.DeliveryFailed, true, 2 * time.Second},
		{"a long text's later part throttled", []error{&telegram.Error{Retryable: true, Reason: "telegram answered 429 (part 2 of 2)", Sent: 1}}, 1, store.DeliveryFailed, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "0s,1s,1s", 0, func(int) outbound.Result { t.Fatal("posted over HTTP"); return outbound.Result{} })
			r.st.d.SubscriptionID, r.st.d.Target, r.st.d.Destination = "", store.TargetTelegram, "42"
			r.st.d.Payload = json.RawMessage(`{"chat_id":"42","text":"hi"}`)
			bot := &fakeBot{errs: tc.errs}
			r.h.cfg.Telegram = TelegramSender(oneBot{bot})
			start := r.now
			r.run(t)
			if bot.sends != tc.sends || r.st.d.Status != tc.status || (len(r.st.events) == 1) != tc.reported || r.now.Sub(start) != tc.waited {
				t.Fatalf("sends %d status %s events %d waited %v", bot.sends, r.st.d.Status, len(r.st.events), r.now.Sub(start))
			}
			if bot.chat != "42" || bot.text != "hi" || len(bot.answered) != 0 {
				t.Fatalf("sent %q to %q, answered %v", bot.text, bot.chat, bot.answered)
			}
			if tc.reported && r.st.events[0].Type != EventDeliveryExhausted {
				t.Fatalf("event %s", r.st.events[0].Type)
			}
		})
	}
	// Without a bot token a Telegram reply fails at once, recorded, with no send.
	r := newRig(t, "0s,1s", 0, func(int) outbound.Result { return outbound.Result{StatusCode: 200} })
	r.st.d.SubscriptionID, r.st.d.Target = "", store.TargetTelegram
	r.run(t)
	if r.posts != 0 || r.st.d.Status != store.DeliveryFailed {
		t.Fatalf("no token: posts %d status %s", r.posts, r.st.d.Status)
	}
}

// oneBot finds the same bot for every source.
type oneBot struct{ b Bot }

func (o oneBot) Bot(context.Context, string, string) (Bot, error) { return o.b, nil }

type fakeSources map[string]store.Source

func (f fakeSources) GetSource(_ context.Context, ws, name string) (store.Source, error) {
	if s, ok := f[ws+"/"+name]; ok {
		return s, nil
	}
	return store.Source{}, apierr.New(apierr.NotFound, "source not found")
}

// A reply goes through the bot of the source that received the update: the source's own token,
// else, in the default workspace only, the stack's; another workspace's source without a token
// sends nothing (the stack's bot is not theirs).
func TestTelegramReplyUsesTheSourcesBot(t *testing.T) {
	stack, own := &fakeBot{errs: []error{nil}}, &fakeBot{errs: []error{nil}}
	var made []string
	bots := NewBots(fakeSources{
		"acme/telegram":    {Name: "telegram", BotToken: "111:own-token-aaaaaaaaaaaaaaaaaaaa"},
		"default/telegram": {Name: "telegram"},
		"other/telegram":   {Name: "telegram"},
	}, "default", stack, func(token string) (Bot, error) { made = append(made, token); return own, nil })
	send := TelegramSender(bots)
	payload := []byte(`{"chat_id":"42","text":"hi","source":"telegram"}`)
	if res := send(context.Background(), "acme", payload); !res.Success() || own.sends != 1 || stack.sends != 0 {
		t.Fatalf("acme: %+v own %d stack %d", res, own.sends, stack.sends)
	}
	if res := send(context.Background(), "acme", payload); !res.Success() || len(made) != 1 {
		t.Fatalf("the client is not reused: %d made", len(made))
	}
	if res := send(context.Background(), "default", payload); !res.Success() || stack.sends != 1 {
		t.Fatalf("default: %+v stack %d", res, stack.sends)
	}
	for _, ws := range []string{"other", "unknown"} {
		if res := send(context.Background(), ws, payload); res.Success() || !res.Permanent || res.Err != ErrNoBot || stack.sends != 1 {
			t.Fatalf("%s: %+v stack %d", ws, res, stack.sends)
		}
	}
}

type fakeBot struct {
	errs       []error
	sends      int
	chat, text string
	answered   []string
}

func (b *fakeBot) AnswerCallbackQuery(_ context.Context, id string) error {
	b.answered = append(b.answered, id)
	return errors.New("query is too old") // best effort: the reply goes out all the same
}

func (b *fakeBot) SendMessage(_ context.Context, chat, text string) error {
	b.sends++
	b.chat, b.text = chat, text
	return b.errs[min(b.sends, len(b.errs))-1]
}
