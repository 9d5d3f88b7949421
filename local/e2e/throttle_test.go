package e2e_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
)

// Tests of issue 15's delivery that respects its receivers: per-subscription rate limits and
// max_in_flight, jittered and spaced retries, the circuit breaker. Each starts a stack of its own.

// arrivals records when each distinct event first reached a receiver.
type arrivals struct {
	mu sync.Mutex
	at map[string]time.Time
}

func recordArrivals(t *testing.T, r *receiver) *arrivals {
	a := &arrivals{at: map[string]time.Time{}}
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			select {
			case id := <-r.received:
				now := time.Now()
				a.mu.Lock()
				if _, ok := a.at[id]; !ok {
					a.at[id] = now
				}
				a.mu.Unlock()
			case <-done:
				return
			}
		}
	}()
	return a
}

func (a *arrivals) sorted() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]time.Time, 0, len(a.at))
	for _, t := range a.at {
		out = append(out, t)
	}
	slices.SortFunc(out, func(x, y time.Time) int { return x.Compare(y) })
	return out
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.at)
}

// subscribeLimited creates a subscription with extra fields (a JSON fragment, e.g. its limits) for r
// and returns its id.
func subscribeLimited(t *testing.T, e *env, r *receiver, events, extra string) string {
	t.Helper()
	resp := subscribeWith(t, e, adminHeaders(), r, events, ","+extra)
	if resp.status != 201 {
		t.Fatalf("create subscription: %d %s", resp.status, resp.raw)
	}
	return resp.body["id"].(string)
}

// testSends queues n webhook.test events to subscription sub, 16 at a time, and returns when the
// last was accepted.
func testSends(t *testing.T, e *env, sub string, n int) time.Time {
	t.Helper()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if resp := do(t, http.MethodPost, e.stack.URL+"/v1/webhooks/"+sub+"/test", adminHeaders(), ""); resp.status != 202 {
				t.Errorf("test send %d: %d %s", i, resp.status, resp.raw)
			}
		})
	}
	wg.Wait()
	return time.Now()
}

// A burst of 1,000 events to an endpoint limited to 10 a second (burst 10) arrives at 10/s ± 10%,
// measured at the receiver, each exactly once; meanwhile an endpoint with max_in_flight 2 and a
// slow receiver never has more than 2 requests open. The rate test waits about 100 s (most of it
// idle: the stack's processes sleep between paced sends).
func TestThrottleBurstArrivesAtTheRateLimit(t *testing.T) {
	t.Parallel() // a stack of its own (doc.go)
	// The tests' shared DynamoDB Local: a modest load (tens of writes a second), no JVM of its own.
	o := stackOptions(t, emulatortest.Dynamo(t), "throttle", 30*time.Second, nil, nil)
	keepLogs(t, &o, "throttle")
	// Deliveries the in-flight bound defers spend their re-queues (MaxRequeues) and wait on the
	// retry schedule: its sweep runs every 5 s here instead of each minute (the last of the slow
	// endpoint's 30 took up to 20 s more), which only presses the bound harder.
	o.SchedulePeriod = 5 * time.Second
	e, err := launch(t, o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.stack.Close()

	r := newReceiver(t, func(string, int) int { return http.StatusNoContent })
	got := recordArrivals(t, r)
	sub := subscribeLimited(t, e, r, `["webhook.test"]`, `"rate_limit":{"per_second":10,"burst":10}`)
	view := do(t, http.MethodGet, e.stack.URL+"/v1/webhooks/"+sub, adminHeaders(), "")
	if rl, _ := view.body["rate_limit"].(map[string]any); rl["per_second"] != float64(10) || rl["burst"] != float64(10) || view.body["max_in_flight"] != nil {
		t.Fatalf("view %s", view.raw)
	}

	// The concurrency bound, on a second endpoint that takes 300 ms per request.
	var open, peak atomic.Int32
	slow := newReceiver(t, func(string, int) int { return http.StatusNoContent })
	inner := slow.srv.Config.Handler
	slow.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := open.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(300 * time.Millisecond)
		inner.ServeHTTP(w, req)
		open.Add(-1)
	})
	slowSub := subscribeLimited(t, e, slow, `["webhook.test"]`, `"max_in_flight":2`)
	go testSends(t, e, slowSub, 30)

	const events = 1000
	start := time.Now()
	sent := testSends(t, e, sub, events)
	t.Logf("1,000 test sends accepted in %v", sent.Sub(start).Round(time.Millisecond))
	waitFor(t, "1,000 events at the receiver", 6*time.Minute, func() bool { return got.count() >= events })
	waitFor(t, "30 events at the slow receiver", 2*time.Minute, func() bool {
		slow.mu.Lock()
		defer slow.mu.Unlock()
		return len(slow.byID) >= 30
	})
	time.Sleep(2 * time.Second) // any duplicate would arrive by now

	at := got.sorted()
	// The burst goes at once; from then on, one each 100 ms.
	const burst = 10
	span := at[len(at)-1].Sub(at[burst-1])
	rate := float64(len(at)-burst) / span.Seconds()
	t.Logf("%d events: first %v after the first send, steady rate %.2f/s over %v", len(at), at[0].Sub(start).Round(time.Millisecond), rate, span.Round(time.Millisecond))
	if rate < 9 || rate > 11 {
		t.Fatalf("arrived at %.2f/s, want 10/s ± 10%%", rate)
	}
	// The events came faster than the limit, so it is the limit that set the pace.
	if supply := float64(events) / sent.Sub(start).Seconds(); supply < 11 {
		t.Fatalf("the sends came at %.1f/s: the supply, not the limit, set the pace", supply)
	}
	r.mu.Lock()
	for id, n := range r.byID {
		if n != 1 {
			t.Errorf("event %s arrived %d times", id, n)
		}
	}
	distinct := len(r.byID)
	r.mu.Unlock()
	if distinct != events {
		t.Fatalf("%d distinct events, want %d", distinct, events)
	}
	if p := peak.Load(); p > 2 || p < 1 {
		t.Fatalf("max_in_flight 2: %d requests open at once", p)
	}
	// No attempt was spent waiting: each delivery made exactly one.
	for _, d := range deliveries(t, e, sub, "") {
		if d["attempts"] != float64(1) || d["status"] != "succeeded" {
			t.Fatalf("delivery %v", d)
		}
	}
}

// 100 deliveries to one endpoint fail at once; their retries, on a "5 s" schedule step, are
// jittered and spaced on the endpoint's retry lanes: no two are sent in the same 100 ms window
// (the attempt log's times, taken right before each request), each at least 4 s (5 s - 20%) after
// its failure, they reach the receiver spread over many seconds, and every event arrives.
func TestRetriesOfAnOutageDoNotStampede(t *testing.T) {
	t.Parallel() // a stack of its own (doc.go)
	// Retries 500 ms apart (200 ms by default): on these shared 2-core machines, under the load of
	// the whole suite, a process's timers wake over 100 ms late often enough to blur 200 ms.
	e, err := startStack(t, "spread", 30*time.Second, map[string]string{"DeliverySchedule": "0s,5s"},
		map[string]string{"HOOKGATE_DELIVERY_RETRY_SPACING_MS": "500"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.stack.Close()
	var (
		mu      sync.Mutex
		tries   = map[string]int{}
		retried = map[string]time.Time{}
	)
	r := newReceiver(t, func(id string, _ int) int {
		mu.Lock()
		defer mu.Unlock()
		tries[id]++
		if tries[id] == 1 {
			return http.StatusInternalServerError
		}
		if _, ok := retried[id]; !ok {
			retried[id] = time.Now()
		}
		return http.StatusNoContent
	})
	sub := subscribeLimited(t, e, r, `["webhook.test"]`, `"description":"spread"`)
	const events = 100
	testSends(t, e, sub, events)
	waitFor(t, "100 retried events at the receiver", 5*time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(retried) >= events
	})

	// The sender's side: each delivery's two attempts, as its attempt log has them.
	list := do(t, http.MethodGet, e.stack.URL+"/v1/webhooks/"+sub+"/deliveries?limit=100", adminHeaders(), "")
	data, _ := list.body["data"].([]any)
	if len(data) != events {
		t.Fatalf("%d deliveries listed", len(data))
	}
	windows := map[int64]string{}
	var sent []time.Time
	for _, d := range data {
		id := d.(map[string]any)["id"].(string)
		got := do(t, http.MethodGet, e.stack.URL+"/v1/deliveries/"+id, adminHeaders(), "")
		atts, _ := got.body["attempt_log"].([]any)
		if len(atts) != 2 || got.body["status"] != "succeeded" {
			t.Fatalf("delivery %s: %s", id, got.raw)
		}
		first, _ := time.Parse(time.RFC3339Nano, atts[0].(map[string]any)["at"].(string))
		second, _ := time.Parse(time.RFC3339Nano, atts[1].(map[string]any)["at"].(string))
		if wait := second.Sub(first); wait < 4*time.Second {
			t.Errorf("delivery %s retried %v after its failure, under 5 s - 20%%", id, wait)
		}
		w := second.UnixMilli() / 100
		if other, ok := windows[w]; ok {
			t.Errorf("retries of %s and %s sent in the same 100 ms window", other, id)
		}
		windows[w] = id
		sent = append(sent, second)
	}
	slices.SortFunc(sent, func(a, b time.Time) int { return a.Compare(b) })
	mu.Lock()
	defer mu.Unlock()
	arrived := make([]time.Time, 0, len(retried))
	for _, at := range retried {
		arrived = append(arrived, at)
	}
	slices.SortFunc(arrived, func(a, b time.Time) int { return a.Compare(b) })
	busiest := map[int64]int{}
	for _, at := range arrived {
		busiest[at.Unix()]++
	}
	most := 0
	for _, n := range busiest {
		most = max(most, n)
	}
	t.Logf("100 retries sent over %v, received over %v; at most %d arrived in one second", sent[len(sent)-1].Sub(sent[0]).Round(time.Millisecond),
		arrived[len(arrived)-1].Sub(arrived[0]).Round(time.Millisecond), most)
	if most > 10 {
		t.Fatalf("%d retries arrived in the same second", most)
	}
	for id, n := range tries {
		if n != 2 {
			t.Errorf("event %s: %d attempts, want 2", id, n)
		}
	}
}

// An endpoint that fails (≥ 70% of ≥ 10 attempts in the window) has its circuit opened: its
// deliveries wait without spending attempts while probes go each cool-down (3 s here); once it
// answers again a probe closes the circuit and the backlog drains. Both changes are events, and
// the subscription's view shows the state.
func TestCircuitOpensProbesAndCloses(t *testing.T) {
	t.Parallel() // a stack of its own (doc.go)
	o := stackOptions(t, emulatortest.Dynamo(t), "circuit", time.Second, map[string]string{
		"DeliveryCircuitBreaker": "70,10,60,3", "DeliverySchedule": "0s,1s,1s,1s,1s,1s,1s,1s",
	}, nil)
	keepLogs(t, &o, "circuit")
	// Deliveries deferred by the open circuit spend their re-queues (MaxRequeues) and wait on the
	// retry schedule: its sweep runs every 5 s here instead of each minute.
	o.SchedulePeriod = 5 * time.Second
	e, err := launch(t, o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.stack.Close()
	var down atomic.Bool
	var requests atomic.Int32
	down.Store(true)
	r := newReceiver(t, func(string, int) int {
		requests.Add(1)
		if down.Load() {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	sub := subscribeLimited(t, e, r, `["webhook.test"]`, `"description":"circuit"`)
	const events = 12
	testSends(t, e, sub, events)

	circuit := func() map[string]any {
		v := do(t, http.MethodGet, e.stack.URL+"/v1/webhooks/"+sub, adminHeaders(), "")
		c, _ := v.body["circuit"].(map[string]any)
		return c
	}
	waitFor(t, "the circuit to open", 2*time.Minute, func() bool { return circuit()["state"] != "closed" })
	if c := circuit(); c["opened_at"] == nil {
		t.Fatalf("open circuit without opened_at: %v", c)
	}
	waitFor(t, "endpoint.circuit_opened in the log", time.Minute, func() bool { return len(eventsAbout(t, e, sub)["endpoint.circuit_opened"]) == 1 })

	// While it is open only probes reach the endpoint: at most one per 3 s cool-down (and the few
	// attempts that were already on their way when it opened).
	before := requests.Load()
	time.Sleep(9 * time.Second)
	if n := requests.Load() - before; n > 5 {
		t.Fatalf("%d requests in 9 s of an open circuit", n)
	}
	if pending := deliveries(t, e, sub, "pending"); len(pending) == 0 {
		t.Fatal("no delivery is waiting: the open circuit spent their attempts")
	}

	down.Store(false)
	waitFor(t, "the circuit to close and the backlog to drain", 2*time.Minute, func() bool {
		r.mu.Lock()
		n := len(r.byID)
		r.mu.Unlock()
		return circuit()["state"] == "closed" && n+len(deliveries(t, e, sub, "failed")) == events
	})
	about := eventsAbout(t, e, sub)
	if len(about["endpoint.circuit_opened"]) != 1 || len(about["endpoint.circuit_closed"]) != 1 {
		t.Fatalf("circuit events %v", about)
	}
	var closed map[string]any
	_ = json.Unmarshal(about["endpoint.circuit_closed"][0].Data, &closed)
	if closed["subscription_id"] != sub || closed["opened_at"] == nil {
		t.Fatalf("endpoint.circuit_closed %s", about["endpoint.circuit_closed"][0].Data)
	}
	// Waiting counted no failed delivery: only those exhausted before the circuit opened can have.
	v := do(t, http.MethodGet, e.stack.URL+"/v1/webhooks/"+sub, adminHeaders(), "")
	if f := v.body["consecutive_failures"].(float64); int(f) > len(deliveries(t, e, sub, "failed")) || v.body["status"] != "active" {
		t.Fatalf("view %s", v.raw)
	}
}

// A manual retry is exactly one attempt: a delivery that used up its schedule (3 attempts) and is
// retried by hand against an endpoint still failing fails again after one more request.
func TestManualRetryIsOneAttempt(t *testing.T) {
	t.Parallel() // a stack of its own (doc.go)
	e, err := startStack(t, "retry1", time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.stack.Close()
	var requests atomic.Int32
	r := newReceiver(t, func(string, int) int { requests.Add(1); return http.StatusInternalServerError })
	sub := subscribeLimited(t, e, r, `["webhook.test"]`, `"description":"one attempt"`)
	testSends(t, e, sub, 1)
	var failed []map[string]any
	waitFor(t, "the delivery to use up its schedule", 2*time.Minute, func() bool {
		failed = deliveries(t, e, sub, "failed")
		return len(failed) == 1
	})
	id := failed[0]["id"].(string)
	if resp := do(t, http.MethodPost, e.stack.URL+"/v1/deliveries/"+id+"/retry", adminHeaders(), ""); resp.status != 202 {
		t.Fatalf("retry: %d %s", resp.status, resp.raw)
	}
	var got reply
	waitFor(t, "the retry to fail", time.Minute, func() bool {
		got = do(t, http.MethodGet, e.stack.URL+"/v1/deliveries/"+id, adminHeaders(), "")
		return got.body["status"] == "failed" && got.body["series"] == float64(1)
	})
	time.Sleep(3 * time.Second) // a second attempt of the retry would come within the schedule's 1 s
	got = do(t, http.MethodGet, e.stack.URL+"/v1/deliveries/"+id, adminHeaders(), "")
	atts, _ := got.body["attempt_log"].([]any)
	if len(atts) != 4 || got.body["total_attempts"] != float64(4) || got.body["status"] != "failed" || requests.Load() != 4 {
		t.Fatalf("%d requests; delivery %s", requests.Load(), got.raw)
	}
}
