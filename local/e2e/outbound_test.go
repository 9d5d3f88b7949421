package e2e_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// receiver is a webhook endpoint on loopback that checks both signature schemes with its own
// verifier (not the sender's code) and counts deliveries by webhook-id.
type receiver struct {
	t      *testing.T
	secret string
	srv    *httptest.Server

	mu       sync.Mutex
	byID     map[string]int    // webhook-id → deliveries seen
	types    map[string]string // webhook-id → event type
	badSig   int
	respond  func(id string, seen int) int // status to answer; seen counts earlier deliveries of id
	received chan string
	headers  map[string][]http.Header // webhook-id → the headers of every request
	invalid  []string                 // bodies the event catalog refuses (catalog_check_test.go)
}

func newReceiver(t *testing.T, respond func(id string, seen int) int) *receiver {
	r := &receiver{t: t, byID: map[string]int{}, types: map[string]string{}, respond: respond, received: make(chan string, 100_000), headers: map[string][]http.Header{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() { // after the server closed (cleanups run last first): every body it got
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, msg := range r.invalid {
			t.Errorf("a delivered event breaks the catalog: %s", msg)
		}
	})
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id := req.Header.Get("webhook-id")
	if err := checkEvent(body); err != nil {
		r.mu.Lock()
		if len(r.invalid) < 10 {
			r.invalid = append(r.invalid, err.Error())
		}
		r.mu.Unlock()
	}
	r.mu.Lock()
	if r.headers == nil { // a receiver made without newReceiver
		r.headers = map[string][]http.Header{}
	}
	if len(r.headers[id]) < 20 {
		r.headers[id] = append(r.headers[id], req.Header.Clone())
	}
	r.mu.Unlock()
	var env struct {
		ID, Type, WorkspaceID string `json:"-"`
	}
	var raw map[string]any
	_ = json.Unmarshal(body, &raw)
	env.Type, _ = raw["type"].(string)
	r.mu.Lock()
	secret := r.secret
	r.mu.Unlock()
	ok := verifyStandard(secret, id, req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"), body) &&
		verifySHA256(secret, req.Header.Get("X-Webhook-Signature"), body) &&
		req.Header.Get("Content-Type") == "application/json" && strings.HasPrefix(req.Header.Get("User-Agent"), "Hookgate/") &&
		raw["id"] == id
	r.mu.Lock()
	seen := r.byID[id]
	status := r.respond(id, seen)
	if !ok {
		r.badSig++
		status = http.StatusUnauthorized
	} else if status < 300 {
		r.byID[id]++
		r.types[id] = env.Type
	}
	r.mu.Unlock()
	w.WriteHeader(status)
	if ok && status < 300 {
		r.received <- id
	}
}

// verifyStandard is an independent Standard Webhooks verifier: HMAC-SHA256 over "id.ts.body" with
// the base64 key after whsec_, any of the space-separated v1 signatures, 5-minute tolerance.
func verifyStandard(secret, id, ts, header string, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	sec, perr := strconv.ParseInt(ts, 10, 64)
	if err != nil || perr != nil || id == "" || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%s.%s", id, ts, body)
	want := m.Sum(nil)
	for _, sig := range strings.Fields(header) {
		if v, ok := strings.CutPrefix(sig, "v1,"); ok {
			got, err := base64.StdEncoding.DecodeString(v)
			if err == nil && hmac.Equal(got, want) {
				return true
			}
		}
	}
	return false
}

// verifySHA256 checks X-Webhook-Signature: sha256=<hex of HMAC-SHA256(secret, body)>, any of a
// comma-separated list.
func verifySHA256(secret, header string, body []byte) bool {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	want := m.Sum(nil)
	for _, part := range strings.Split(header, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "sha256="); ok {
			got, err := hex.DecodeString(v)
			if err == nil && hmac.Equal(got, want) {
				return true
			}
		}
	}
	return false
}

func adminHeaders() map[string]string {
	return map[string]string{"x-api-key": adminKey, "content-type": "application/json"}
}

// subscribe creates a subscription and tells the receiver its secret.
func subscribe(t *testing.T, e *env, r *receiver, events string) string {
	t.Helper()
	resp := do(t, http.MethodPost, e.stack.URL+"/v1/webhooks", adminHeaders(), fmt.Sprintf(`{"url":%q,"events":%s}`, r.srv.URL+"/hook", events))
	if resp.status != 201 {
		t.Fatalf("create subscription: %d %s", resp.status, resp.raw)
	}
	secret, _ := resp.body["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("no whsec_ secret in %s", resp.raw)
	}
	r.mu.Lock()
	r.secret = secret
	r.mu.Unlock()
	return resp.body["id"].(string)
}

// deliveries lists a subscription's deliveries through the API.
func deliveries(t *testing.T, e *env, sub, status string) []map[string]any {
	t.Helper()
	resp := do(t, http.MethodGet, e.stack.URL+"/v1/webhooks/"+sub+"/deliveries?limit=100&status="+status, adminHeaders(), "")
	if resp.status != 200 {
		t.Fatalf("list deliveries: %d %s", resp.status, resp.raw)
	}
	var out []map[string]any
	for _, d := range resp.body["data"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A burst of inbound messages: every event reaches the subscriber exactly once (after dedupe by
// webhook-id), correctly signed under both schemes.
func TestBurstEveryEventDeliveredOnce(t *testing.T) {
	t.Parallel() // doc.go says which tests may
	// A visibility of 30 s: no redelivery while a batch is at work.
	e, err := startOwnStack(t, "burst", 30*time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.stack.Close()
	r := newReceiver(t, func(string, int) int { return http.StatusNoContent })
	subscribe(t, e, r, `["*"]`)

	const messages = 1000
	start := time.Now()
	var retried atomic.Int64
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range messages {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// A sender retries a 5xx with the same body and key, as the README asks: under load
			// a door may answer 503 when it could not queue in time, and the key makes the retry
			// the same message (every count below would show a doubled one).
			key := map[string]string{"Idempotency-Key": fmt.Sprintf("burst-%d", i)}
			for try := 1; ; try++ {
				resp := postInbound(t, e, key, fmt.Sprintf(`{"channel":"burst","external_id":"u-%d","text":"m %d"}`, i%50, i))
				if resp.status == 202 {
					break
				}
				if resp.status < 500 || try == 5 {
					t.Errorf("post %d (try %d): %d %s", i, try, resp.status, resp.raw)
					break
				}
				retried.Add(1)
				time.Sleep(time.Second)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d messages accepted in %s (%d posts retried after a 5xx)", messages, time.Since(start).Round(time.Millisecond), retried.Load())
	accepted := time.Now()
	want := 4 * messages // message.received, run.created, message.sent (the echo), run.completed
	waitFor(t, fmt.Sprintf("%d events at the receiver", want), 8*time.Minute, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.byID) >= want
	})
	t.Logf("every event delivered %s after the last 202", time.Since(accepted).Round(time.Millisecond))
	time.Sleep(time.Second)
	r.mu.Lock()
	defer r.mu.Unlock()
	counts := map[string]int{}
	for id, typ := range r.types {
		counts[typ]++
		if r.byID[id] < 1 {
			t.Fatalf("event %s counted without a delivery", id)
		}
	}
	if len(r.byID) != want || counts["message.received"] != messages || counts["run.created"] != messages || counts["message.sent"] != messages || counts["run.completed"] != messages {
		t.Fatalf("received %d distinct events (%v), want %d", len(r.byID), counts, want)
	}
	if r.badSig != 0 {
		t.Fatalf("%d deliveries failed signature verification", r.badSig)
	}
}

// outboundStack is one stack for the retry tests, separate from the burst.
func outboundStack(t *testing.T, params map[string]string) *env {
	t.Helper()
	e, err := startStack(t, "out", time.Second, params, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.stack.Close() })
	return e
}

func sendOne(t *testing.T, e *env, text string) string {
	t.Helper()
	resp := postInbound(t, e, nil, fmt.Sprintf(`{"channel":"out","external_id":%q,"text":%q}`, text, text))
	if resp.status != 202 {
		t.Fatalf("post: %d %s", resp.status, resp.raw)
	}
	return resp.body["run_id"].(string)
}

// The receiver fails the first two attempts of each event and takes the third (schedule 0s,1s,1s).
func TestFlakyReceiverGetsEventOnALaterAttempt(t *testing.T) {
	t.Parallel() // doc.go says which tests may
	e := outboundStack(t, nil)
	r := newReceiver(t, func(_ string, seen int) int { return http.StatusOK })
	attempts := map[string]int{}
	r.respond = func(id string, _ int) int {
		attempts[id]++
		if attempts[id] <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	sub := subscribe(t, e, r, `["run.completed"]`)
	sendOne(t, e, "flaky")
	waitFor(t, "the third attempt", 30*time.Second, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.byID) == 1
	})
	// The attempt is recorded just after the receiver answered.
	var ds []map[string]any
	waitFor(t, "the delivery recorded as succeeded", 30*time.Second, func() bool {
		ds = deliveries(t, e, sub, "")
		return len(ds) == 1 && ds[0]["status"] == "succeeded"
	})
	got := do(t, http.MethodGet, e.stack.URL+"/v1/deliveries/"+ds[0]["id"].(string), adminHeaders(), "")
	atts, _ := got.body["attempt_log"].([]any)
	if got.status != 200 || len(atts) != 3 || atts[0].(map[string]any)["status_code"] != float64(503) || atts[2].(map[string]any)["status_code"] != float64(200) {
		t.Fatalf("attempt log %d %s", got.status, got.raw)
	}
}

// Always failing: the delivery ends failed and retriable, and delivery.exhausted is recorded (and
// not sent to the failing endpoint itself).
func TestAlwaysFailingEndsFailedRetriableAndReported(t *testing.T) {
	t.Parallel() // doc.go says which tests may
	e := outboundStack(t, nil)
	var failing sync.Map
	failing.Store("on", true)
	r := newReceiver(t, func(string, int) int {
		if v, _ := failing.Load("on"); v == true {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	sub := subscribe(t, e, r, `["run.completed","delivery.exhausted"]`)
	runID := sendOne(t, e, "always-failing")
	var failed []map[string]any
	waitFor(t, "a failed delivery", 30*time.Second, func() bool {
		failed = deliveries(t, e, sub, "failed")
		return len(failed) == 1
	})
	if failed[0]["attempts"] != float64(3) || failed[0]["event_type"] != "run.completed" {
		t.Fatalf("failed delivery %v", failed[0])
	}
	waitFor(t, "delivery.exhausted in the log", 15*time.Second, func() bool {
		return len(eventsAbout(t, e, failed[0]["id"].(string))["delivery.exhausted"]) == 1
	})
	_ = runID
	// Retried by hand once the endpoint works again.
	failing.Store("on", false)
	resp := do(t, http.MethodPost, e.stack.URL+"/v1/deliveries/"+failed[0]["id"].(string)+"/retry", adminHeaders(), "")
	if resp.status != 202 {
		t.Fatalf("retry: %d %s", resp.status, resp.raw)
	}
	waitFor(t, "the retried delivery", 30*time.Second, func() bool {
		ds := deliveries(t, e, sub, "succeeded")
		return len(ds) == 1
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, typ := range r.types {
		if typ == "delivery.exhausted" {
			t.Fatalf("delivery.exhausted %s was sent to the endpoint that failed", id)
		}
	}
}

func TestGoneDisablesTheSubscription(t *testing.T) {
	t.Parallel() // doc.go says which tests may
	e := outboundStack(t, nil)
	r := newReceiver(t, func(string, int) int { return http.StatusGone })
	sub := subscribe(t, e, r, `["run.completed"]`)
	sendOne(t, e, "gone")
	// The subscription is disabled first, then the attempt recorded: wait for both.
	var failed []map[string]any
	waitFor(t, "the subscription to be disabled and its delivery failed", 30*time.Second, func() bool {
		resp := do(t, http.MethodGet, e.stack.URL+"/v1/webhooks/"+sub, adminHeaders(), "")
		failed = deliveries(t, e, sub, "failed")
		return resp.body["status"] == "disabled" && len(failed) == 1
	})
	if failed[0]["attempts"] != float64(1) {
		t.Fatalf("a 410 was retried: %v", failed)
	}
}

// With the guard on, a subscription on 127.0.0.1 is refused at dial time and the reason recorded.
func TestLoopbackDestinationRefusedWhenGuarded(t *testing.T) {
	t.Parallel() // doc.go says which tests may
	e := outboundStack(t, map[string]string{"AllowPrivateDestinations": "false", "DeliverySchedule": "simple"})
	r := newReceiver(t, func(string, int) int { return http.StatusOK })
	sub := subscribe(t, e, r, `["run.completed"]`)
	sendOne(t, e, "ssrf")
	var failed []map[string]any
	waitFor(t, "the refused delivery to fail", 30*time.Second, func() bool {
		failed = deliveries(t, e, sub, "failed")
		return len(failed) == 1
	})
	if !strings.Contains(fmt.Sprint(failed[0]["last_error"]), "blocked") {
		t.Fatalf("last error %v", failed[0]["last_error"])
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.byID) != 0 || r.badSig != 0 {
		t.Fatal("the guarded request reached the receiver")
	}
}

func TestManagementAuthorization(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	hdr := func(key string) map[string]string {
		return map[string]string{"x-api-key": key, "content-type": "application/json"}
	}
	created := do(t, http.MethodPost, e.stack.URL+"/v1/webhooks", adminHeaders(), `{"url":"https://example.com/a","events":["run.*"]}`)
	if created.status != 201 {
		t.Fatalf("create: %d %s", created.status, created.raw)
	}
	subA := created.body["id"].(string)
	keyB := do(t, http.MethodPost, e.stack.URL+"/v1/api-keys", adminHeaders(), `{"name":"b","workspace_id":"ws-b"}`)
	if keyB.status != 201 {
		t.Fatalf("key for B: %d %s", keyB.status, keyB.raw)
	}
	b := keyB.body["key"].(string)
	for _, c := range []struct {
		name, method, path, key, body string
		status                        int
	}{
		{"no key", "GET", "/v1/webhooks", "", "", 401},
		{"unknown key", "GET", "/v1/webhooks", "hgk_nope", "", 401},
		{"B reads A's subscription", "GET", "/v1/webhooks/" + subA, b, "", 404},
		{"B deletes A's subscription", "DELETE", "/v1/webhooks/" + subA, b, "", 404},
		{"B patches A's subscription", "PATCH", "/v1/webhooks/" + subA, b, `{"url":"https://evil.example/"}`, 404},
		{"B lists: sees nothing of A", "GET", "/v1/webhooks", b, "", 200},
	} {
		resp := do(t, c.method, e.stack.URL+c.path, hdr(c.key), c.body)
		if resp.status != c.status {
			t.Fatalf("%s: %d %s", c.name, resp.status, resp.raw)
		}
		if strings.Contains(resp.raw, subA) {
			t.Fatalf("%s: response shows A's subscription: %s", c.name, resp.raw)
		}
	}
	// Revoked: 401 and nothing changes.
	if resp := do(t, "DELETE", e.stack.URL+"/v1/api-keys/"+keyB.body["id"].(string)+"?workspace_id=ws-b", adminHeaders(), ""); resp.status != 204 {
		t.Fatalf("revoke: %d %s", resp.status, resp.raw)
	}
	if resp := do(t, "POST", e.stack.URL+"/v1/webhooks", hdr(b), `{"url":"https://example.com/b","events":["*"]}`); resp.status != 401 {
		t.Fatalf("revoked key: %d %s", resp.status, resp.raw)
	}
	if got := do(t, "GET", e.stack.URL+"/v1/webhooks/"+subA, adminHeaders(), ""); got.status != 200 || got.body["url"] != "https://example.com/a" {
		t.Fatalf("A's subscription changed: %s", got.raw)
	}
}
