package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/store"
)

// Tests of issue 11, classes 3 (no loops) and 6 (events leak nothing of other subscribers).

var (
	loopsOnce   sync.Once
	loopsShared *loopsEnv
	loopsErr    error
)

type loopsEnv struct {
	*env
	deadAgent string // host:port of the dead agent: nothing listens there
}

// loopsStack is one stack for these tests: an adapter "dead" whose agent is a webhook on a closed
// port, tried once.
func loopsStack(t *testing.T) *loopsEnv {
	t.Helper()
	loopsOnce.Do(func() {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			loopsErr = err
			return
		}
		dead := l.Addr().String()
		l.Close()
		agents := fmt.Sprintf(`{"dead":{"type":"webhook","url":"http://%s/agent","secret":%q,"timeoutSeconds":5}}`, dead, agentSecret)
		var e *env
		e, loopsErr = startSharedStack(t, "loops", time.Second, map[string]string{
			"Agents": agents, "Adapters": `[{"name":"default","readAllRuns":true},{"name":"dead","agent":"dead"}]`, "AgentRetrySchedule": "0s",
		}, nil)
		loopsShared = &loopsEnv{env: e, deadAgent: dead}
	})
	if loopsErr != nil {
		t.Fatalf("start the loops stack: %v", loopsErr)
	}
	return loopsShared
}

// capture is a subscriber that answers 200 and keeps every request's headers and body.
type capture struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []captured
}

type captured struct {
	header http.Header
	body   []byte
}

func newCapture(t *testing.T, then func(captured)) *capture {
	c := &capture{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got := captured{header: r.Header.Clone(), body: body}
		c.mu.Lock()
		c.reqs = append(c.reqs, got)
		c.mu.Unlock()
		if then != nil {
			then(got)
		}
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// find returns the bodies of the requests whose body contains s.
func (c *capture) find(s string) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]byte
	for _, r := range c.reqs {
		if bytes.Contains(r.body, []byte(s)) {
			out = append(out, r.body)
		}
	}
	return out
}

func createWebhook(t *testing.T, e *env, url, events string) reply {
	t.Helper()
	return do(t, http.MethodPost, e.stack.URL+"/v1/webhooks", adminHeaders(), fmt.Sprintf(`{"url":%q,"events":%s}`, url, events))
}

// subscriptionURLs lists the URLs of the default workspace's subscriptions, from the table.
func subscriptionURLs(t *testing.T, e *env) []string {
	t.Helper()
	var urls []string
	cursor := ""
	for {
		subs, next, err := e.store.ListSubscriptions(context.Background(), "default", 100, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range subs {
			urls = append(urls, s.URL)
		}
		if next == "" {
			return urls
		}
		cursor = next
	}
}

// A subscription to the gateway's own API would turn each event into a new inbound message, and
// that message into new events: refused at create and at update, with nothing stored.
func TestSubscriptionToOwnAPIRefused(t *testing.T) {
	inLane(t, laneLoops)
	e := loopsStack(t)
	port := e.stack.URL[strings.LastIndex(e.stack.URL, ":")+1:]
	own := []string{
		e.stack.URL + "/v1/inbound/generic",
		"http://localhost:" + port + "/v1/webhooks/generic/default?source=relay",
		"http://LOCALHOST.:" + port + "/webhook/default",
		"https://abc123.execute-api.us-east-1.amazonaws.com/v1/inbound/generic",
		"https://ABC123.Execute-Api.eu-west-1.amazonaws.com./v1/integrations/trigger",
		"https://local.execute-api.us-east-1.amazonaws.com/v1/inbound/generic", // this stack's own execute-api host
	}
	for _, url := range own {
		r := createWebhook(t, e.env, url, `["*"]`)
		if r.status != http.StatusBadRequest || r.errorCode() != "invalid_request" || !strings.Contains(r.raw, "url") {
			t.Fatalf("create %s: %d %s, want 400 naming url", url, r.status, r.raw)
		}
	}
	// Update: a subscription to a receiver cannot be pointed at the gateway.
	rcv := newCapture(t, nil)
	created := createWebhook(t, e.env, rcv.srv.URL+"/hook", `["run.completed"]`)
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.status, created.raw)
	}
	id := created.body["id"].(string)
	for _, url := range own {
		r := do(t, http.MethodPatch, e.stack.URL+"/v1/webhooks/"+id, adminHeaders(), fmt.Sprintf(`{"url":%q}`, url))
		if r.status != http.StatusBadRequest || r.errorCode() != "invalid_request" || !strings.Contains(r.raw, "url") {
			t.Fatalf("update to %s: %d %s, want 400 naming url", url, r.status, r.raw)
		}
	}
	if got := do(t, http.MethodGet, e.stack.URL+"/v1/webhooks/"+id, adminHeaders(), ""); got.body["url"] != rcv.srv.URL+"/hook" {
		t.Fatalf("the subscription changed: %s", got.raw)
	}
	for _, url := range subscriptionURLs(t, e.env) {
		for _, bad := range own {
			if url == bad {
				t.Fatalf("stored a subscription to %s", url)
			}
		}
	}
}

// A subscription stored before the check (or written around it) still cannot reach the gateway:
// the delivery client refuses its host at dial time, even in local mode where loopback
// destinations are allowed, and the delivery ends at once.
func TestStoredSubscriptionToOwnAPIRefusedAtDialTime(t *testing.T) {
	inLane(t, laneLoops)
	e := loopsStack(t)
	sub, err := e.store.CreateSubscription(context.Background(), store.Subscription{
		WorkspaceID: "default", URL: e.stack.URL + "/v1/inbound/generic", Events: []string{"run.completed"},
		Secrets: []store.SigningSecret{{Value: outbound.NewSecret()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.store.DeleteSubscription(context.Background(), "default", sub.ID) })
	sendOne(t, e.env, "dial-time")
	var failed []map[string]any
	waitFor(t, "the delivery to the gateway itself to fail", 30*time.Second, func() bool {
		failed = deliveries(t, e.env, sub.ID, "failed")
		return len(failed) > 0
	})
	if failed[0]["last_error"] != outbound.FailOwnHost || failed[0]["attempts"] != float64(1) {
		t.Fatalf("delivery %v: want one attempt refused as %q", failed[0], outbound.FailOwnHost)
	}
}

// A third party that re-posts what it receives, with the headers it received, into one of the
// gateway's doors: the hop marker is refused there with 403 loop_detected, and nothing is queued.
func TestRelayCopyingHopHeaderRefusedAtDoor(t *testing.T) {
	inLane(t, laneLoops)
	e := loopsStack(t)
	external := fmt.Sprintf("relay-%d", time.Now().UnixNano())
	type answer struct {
		status int
		body   string
	}
	relayed := make(chan answer, 1)
	var once sync.Once
	relay := newCapture(t, func(got captured) {
		once.Do(func() {
			req, _ := http.NewRequest(http.MethodPost, e.stack.URL+"/v1/inbound/generic",
				strings.NewReader(fmt.Sprintf(`{"channel":"relay","external_id":%q,"text":"looped back"}`, external)))
			for k, vs := range got.header {
				if k != "Content-Length" && k != "Accept-Encoding" {
					req.Header[k] = vs
				}
			}
			req.Header.Set("X-Hookgate-Inbound-Secret", inboundSecret) // a relay the stack trusts
			var a answer
			if resp, err := apiClient(t).Do(req); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				a = answer{resp.StatusCode, string(b)}
			}
			relayed <- a
		})
	})
	created := createWebhook(t, e.env, relay.srv.URL+"/hook", `["message.received"]`)
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.status, created.raw)
	}
	sub := created.body["id"].(string)
	t.Cleanup(func() { do(t, http.MethodDelete, e.stack.URL+"/v1/webhooks/"+sub, adminHeaders(), "") })
	sendOne(t, e.env, "relay-start")

	var a answer
	select {
	case a = <-relayed:
	case <-time.After(30 * time.Second):
		t.Fatal("the relay got no delivery")
	}
	if a.status != http.StatusForbidden || !strings.Contains(a.body, `"code":"loop_detected"`) {
		t.Fatalf("the re-post was answered %d %s, want 403 loop_detected", a.status, a.body)
	}
	// Nothing was queued: a message sent after it on the same thread (FIFO per thread) is that
	// thread's only one.
	after := postInbound(t, e.env, nil, fmt.Sprintf(`{"channel":"relay","external_id":%q,"text":"direct"}`, external))
	if after.status != http.StatusAccepted {
		t.Fatalf("direct post: %d %s", after.status, after.raw)
	}
	thread := keyedIDs(e.env).Thread("default", "relay", external)
	waitRun(t, e.env, thread, after.body["run_id"].(string))
	if got := eventsAbout(t, e.env, thread)["message.received"]; len(got) != 1 || !bytes.Contains(got[0].Data, []byte(`"direct"`)) {
		t.Fatalf("the thread has %d messages, want only the direct one", len(got))
	}
	// The other doors refuse the marker too, before reading anything.
	hop := map[string]string{"hookgate-hop": "1", "content-type": "application/json"}
	for _, path := range []string{
		"/v1/integrations/trigger", "/v1/inbound/telegram", "/v1/inbound/binding/status",
		"/v1/webhooks/generic/default", "/webhook/default", "/v1/web/messages",
	} {
		if r := do(t, http.MethodPost, e.stack.URL+path, hop, `{}`); r.status != http.StatusForbidden || r.errorCode() != "loop_detected" {
			t.Fatalf("POST %s with the hop marker: %d %s", path, r.status, r.raw)
		}
	}
}

// subscription.disabled goes to every "*" subscriber: it names the subscription and its URL's
// origin, never the token in the URL's path or query.
func TestSubscriptionDisabledEventHidesTheURL(t *testing.T) {
	inLane(t, laneLoops)
	e := loopsStack(t)
	watcher := newCapture(t, nil)
	w := createWebhook(t, e.env, watcher.srv.URL+"/all", `["*"]`)
	if w.status != http.StatusCreated {
		t.Fatalf("create watcher: %d %s", w.status, w.raw)
	}
	t.Cleanup(func() {
		do(t, http.MethodDelete, e.stack.URL+"/v1/webhooks/"+w.body["id"].(string), adminHeaders(), "")
	})
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }))
	defer gone.Close()
	created := createWebhook(t, e.env, gone.URL+"/hooks/tok_path_SECRET7?token=tok_query_SECRET8", `["run.completed"]`)
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.status, created.raw)
	}
	sub := created.body["id"].(string)
	sendOne(t, e.env, "gone-url")

	var delivered [][]byte
	waitFor(t, "subscription.disabled at the watcher", 30*time.Second, func() bool {
		for _, b := range watcher.find(sub) {
			if bytes.Contains(b, []byte(`"subscription.disabled"`)) {
				delivered = append(delivered, b)
			}
		}
		return len(delivered) > 0
	})
	stored := eventsAbout(t, e.env, sub)["subscription.disabled"]
	if len(stored) != 1 {
		t.Fatalf("%d subscription.disabled events stored", len(stored))
	}
	for what, data := range map[string][]byte{"stored": stored[0].Data, "delivered": delivered[0]} {
		if bytes.Contains(data, []byte("tok_path_SECRET7")) || bytes.Contains(data, []byte("tok_query_SECRET8")) || bytes.Contains(data, []byte("/hooks")) {
			t.Fatalf("%s subscription.disabled shows the URL: %s", what, data)
		}
		if !bytes.Contains(data, []byte(`"origin":"`+gone.URL+`"`)) {
			t.Fatalf("%s subscription.disabled has no origin %s: %s", what, gone.URL, data)
		}
	}
}

// run.failed (and the run's error) say what failed, not where the agent lives.
func TestRunFailedEventNamesNoAgentHost(t *testing.T) {
	inLane(t, laneLoops)
	e := loopsStack(t)
	hdr := map[string]string{"authorization": "Bearer " + adapterSecret, "content-type": "application/json"}
	r := do(t, http.MethodPost, e.stack.URL+"/webhook/dead", hdr, `{"text":"are you there?"}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("post: %d %s", r.status, r.raw)
	}
	thread, run := r.body["threadId"].(string), r.body["runId"].(string)
	var status reply
	waitFor(t, "the run to fail and its event", 30*time.Second, func() bool {
		status = do(t, http.MethodGet, e.stack.URL+"/webhook/dead/threads/"+thread+"/runs/"+run, hdr, "")
		return status.body["status"] == "failed" && len(eventsAbout(t, e.env, run)["run.failed"]) > 0
	})
	host, _, _ := net.SplitHostPort(e.deadAgent)
	failed := eventsAbout(t, e.env, run)["run.failed"]
	if len(failed) != 1 {
		t.Fatalf("%d run.failed events", len(failed))
	}
	for what, s := range map[string]string{"run.failed": string(failed[0].Data), "run": status.raw} {
		if strings.Contains(s, e.deadAgent) || strings.Contains(s, host) {
			t.Fatalf("%s names the agent's host %s: %s", what, e.deadAgent, s)
		}
		if !strings.Contains(s, "connection refused") {
			t.Fatalf("%s lost the failure's class: %s", what, s)
		}
	}
}
