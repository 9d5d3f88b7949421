package adapter

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hookgate/hookgate/local/emulator"
	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/local/template"
	"github.com/hookgate/hookgate/shared/approval"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// The handler runs on the real store (DynamoDB Local); the queue is an in-process recorder. The
// whole path through SQS, the worker and agents runs in local/e2e.
func TestMain(m *testing.M) { os.Exit(emulatortest.Run(m)) }

const (
	secret      = "adapter-secret-0123456789"
	approvalKey = "test-approval-signing-key-0123"
)

type recorder struct {
	mu   sync.Mutex
	sent []queue.Inbound
	fail atomic.Bool
}

func (r *recorder) SendInbound(_ context.Context, m *queue.Inbound) error {
	if r.fail.Load() {
		return errors.New("sqs: connection refused")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, *m)
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent)
}

type rig struct {
	st    *store.Store
	q     *recorder
	h     *Handler
	keys  *approval.Keys
	clock atomic.Int64 // unix nanoseconds the decision tokens are checked at
}

func newRig(t *testing.T, adapters string) *rig {
	t.Helper()
	db, table := emulatortest.Table(t, "adapter")
	st := store.New(db, table, time.Now)
	as, err := ParseAdapters(adapters, secret, "ws", 0)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{st: st, q: &recorder{}}
	r.clock.Store(time.Now().UnixNano())
	if r.keys, err = approval.NewKeys(func() time.Time { return time.Unix(0, r.clock.Load()) }, approvalKey); err != nil {
		t.Fatal(err)
	}
	// MaxSyncWait as on AWS (below API Gateway's 30 s): a loaded machine's DynamoDB Local can take
	// seconds to finish the stand-in worker's run.
	r.h = New(Config{Adapters: Static(as), Lease: time.Minute, MaxSyncWait: 25 * time.Second, Approvals: r.keys}, st, r.q, slog.New(slog.DiscardHandler), time.Now)
	return r
}

type reply struct {
	status int
	body   map[string]any
	raw    string
}

func (r reply) str(k string) string { s, _ := r.body[k].(string); return s }
func (r reply) message() string {
	e, _ := r.body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// call sends one request through the real Lambda decoder, as API Gateway would.
func (r *rig) call(t *testing.T, routeKey string, params map[string]string, headers map[string]string, body string) reply {
	t.Helper()
	if headers == nil {
		headers = map[string]string{"authorization": "Bearer " + secret}
	}
	req := events.APIGatewayV2HTTPRequest{RouteKey: routeKey, PathParameters: params, Headers: headers, Body: body}
	raw, _ := json.Marshal(req)
	out, err := lambda.NewHandler(r.h.Handle).Invoke(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	rep := reply{status: resp.StatusCode, raw: resp.Body}
	_ = json.Unmarshal([]byte(resp.Body), &rep.body)
	if resp.Headers["content-type"] != "application/json" {
		t.Fatalf("%s: content-type %q", routeKey, resp.Headers["content-type"])
	}
	return rep
}

func (r *rig) post(t *testing.T, name, body string) reply {
	return r.call(t, "POST /webhook/{name}", map[string]string{"name": name}, nil, body)
}

func runParams(name string, rep reply) map[string]string {
	return map[string]string{"name": name, "threadId": rep.str("threadId"), "runId": rep.str("runId")}
}

const runRoute = "/webhook/{name}/threads/{threadId}/runs/{runId}"

func TestAuthenticationAndBadInput(t *testing.T) {
	t.Parallel()
	r := newRig(t, `[{"name":"ops","replyHosts":["hooks.example.com"],"maxBodyBytes":2048}]`)
	for _, tc := range []struct {
		name    string
		adapter string
		headers map[string]string
		body    string
		status  int
		message string
	}{
		{"no secret", "ops", map[string]string{}, `{"text":"hi"}`, 401, "missing or invalid adapter secret"},
		{"wrong secret", "ops", map[string]string{"authorization": "Bearer nope-nope-nope-nope"}, `{"text":"hi"}`, 401, "missing or invalid adapter secret"},
		{"unknown adapter", "nobody", nil, `{"text":"hi"}`, 401, "missing or invalid adapter secret"},
		{"header secret works", "ops", map[string]string{"x-webhook-secret": secret}, `{"text":""}`, 400, "text is required"},
		{"blank text", "ops", nil, `{"text":"  \n "}`, 400, "text is required"},
		{"no text", "ops", nil, `{"user":"a"}`, 400, "text is required"},
		{"not json", "ops", nil, `text=hi`, 400, "body must be a JSON object"},
		{"broken json", "ops", nil, `{"text":"hi"`, 400, "body is not valid JSON"},
		{"wrong type", "ops", nil, `{"text":5}`, 400, "text has the wrong type"},
		{"data not object", "ops", nil, `{"text":"hi","data":[1]}`, 400, "data must be a JSON object"},
		{"reply host", "ops", nil, `{"text":"hi","replyUrl":"https://evil.example.com/cb"}`, 400, "replyUrl host is not allowed"},
		{"reply host suffix", "ops", nil, `{"text":"hi","replyUrl":"https://x.hooks.example.com/cb"}`, 400, "replyUrl host is not allowed"},
		{"reply not https", "ops", nil, `{"text":"hi","replyUrl":"http://hooks.example.com/cb"}`, 400, "replyUrl must use https"},
		{"reply relative", "ops", nil, `{"text":"hi","replyUrl":"/cb"}`, 400, "replyUrl must be an absolute URL of at most 2048 characters"},
		{"timeout negative", "ops", nil, `{"text":"hi","sync":true,"timeoutMs":-1}`, 400, "timeoutMs must not be negative"},
		{"too large", "ops", nil, `{"text":"` + strings.Repeat("x", 3000) + `"}`, 413, "body is larger than 2048 bytes"},
		{"unknown thread", "ops", nil, `{"text":"hi","threadId":"thr_0000000000000000000000000a"}`, 404, "thread not found"},
		{"malformed thread", "ops", nil, `{"text":"hi","threadId":"../../etc"}`, 404, "thread not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := r.call(t, "POST /webhook/{name}", map[string]string{"name": tc.adapter}, tc.headers, tc.body)
			if rep.status != tc.status || rep.message() != tc.message {
				t.Fatalf("%d %s, want %d %q", rep.status, rep.raw, tc.status, tc.message)
			}
			if strings.Contains(rep.raw, secret) {
				t.Fatal("the secret is in the response")
			}
		})
	}
	if n := r.q.count(); n != 0 {
		t.Fatalf("bad requests queued %d messages", n)
	}
	// 413 is decided before decoding: a base64 body over the limit too.
	big := base64.StdEncoding.EncodeToString([]byte(`{"text":"` + strings.Repeat("y", 4000) + `"}`))
	req := events.APIGatewayV2HTTPRequest{RouteKey: "POST /webhook/{name}", PathParameters: map[string]string{"name": "ops"},
		Headers: map[string]string{"authorization": "Bearer " + secret}, Body: big, IsBase64Encoded: true}
	resp, _ := r.h.Handle(context.Background(), req)
	if resp.StatusCode != 413 {
		t.Fatalf("base64 body over the limit: %d", resp.StatusCode)
	}
}

func TestStartFollowUpAndStatus(t *testing.T) {
	t.Parallel()
	r := newRig(t, `[{"name":"ops"},{"name":"other"}]`)
	first := r.post(t, "ops", `{"text":"hello","user":"alice","data":{"k":1}}`)
	if first.status != 202 || !strings.HasPrefix(first.str("threadId"), "thr_") || !strings.HasPrefix(first.str("runId"), "run_") || first.str("status") != "queued" {
		t.Fatalf("start: %d %s", first.status, first.raw)
	}
	// The run and its message are stored before the 202, and queued for the worker.
	run, err := r.st.GetRun(context.Background(), "ws", first.str("runId"))
	if err != nil || run.Adapter != "ops" || run.User != "alice" || run.Slot.IsZero() {
		t.Fatalf("stored run %+v %v", run, err)
	}
	if r.q.count() != 1 || r.q.sent[0].RunID != run.ID || !r.q.sent[0].Stored || r.q.sent[0].GroupID() != first.str("threadId") || string(r.q.sent[0].Data) != `{"k":1}` {
		t.Fatalf("queued %+v", r.q.sent)
	}
	// The thread this function wrote is in shard 0 (one shard): the message says so, and the
	// worker appends its events without reading the thread.
	if sh := r.q.sent[0].LogShard; sh == nil || *sh != 0 {
		t.Fatalf("queued log shard %v; want 0", sh)
	}
	th := first.str("threadId")
	follow := r.call(t, "POST /webhook/{name}/threads/{threadId}/messages", map[string]string{"name": "ops", "threadId": th}, nil, `{"text":"more"}`)
	if follow.status != 202 || follow.str("threadId") != th || follow.str("runId") == first.str("runId") {
		t.Fatalf("follow-up: %d %s", follow.status, follow.raw)
	}
	// In the body works too, on /messages.
	viaBody := r.call(t, "POST /webhook/{name}/messages", map[string]string{"name": "ops"}, nil, `{"text":"more","threadId":"`+th+`"}`)
	if viaBody.status != 202 || viaBody.str("threadId") != th {
		t.Fatalf("threadId in the body: %d %s", viaBody.status, viaBody.raw)
	}
	// Another adapter cannot follow up or read this adapter's thread and runs.
	if rep := r.call(t, "POST /webhook/{name}/threads/{threadId}/messages", map[string]string{"name": "other", "threadId": th}, nil, `{"text":"x"}`); rep.status != 404 || rep.message() != "thread not found" {
		t.Fatalf("other adapter's follow-up: %d %s", rep.status, rep.raw)
	}
	if rep := r.call(t, "GET "+runRoute, runParams("other", first), nil, ""); rep.status != 404 || rep.message() != "run not found" {
		t.Fatalf("other adapter reads the run: %d %s", rep.status, rep.raw)
	}
	st := r.call(t, "GET "+runRoute, runParams("ops", first), nil, "")
	if st.status != 200 || st.str("status") != "queued" || st.str("runId") != first.str("runId") || st.str("user") != "alice" {
		t.Fatalf("status: %d %s", st.status, st.raw)
	}
	wrongThread := runParams("ops", first)
	wrongThread["threadId"] = follow.str("threadId") + "x"
	for _, p := range []map[string]string{wrongThread, {"name": "ops", "threadId": th, "runId": "run_00000000000000000000000000"}, {"name": "ops", "threadId": th, "runId": "nope"}} {
		if rep := r.call(t, "GET "+runRoute, p, nil, ""); rep.status != 404 || rep.message() != "run not found" {
			t.Fatalf("%v: %d %s", p, rep.status, rep.raw)
		}
	}
}

// Twenty concurrent posts with one eventId create one run and all answer with it.
func TestEventIDMakesPostsIdempotentUnderConcurrency(t *testing.T) {
	t.Parallel()
	r := newRig(t, `[{"name":"ops","maxInFlight":2}]`)
	var wg sync.WaitGroup
	replies := make([]reply, 20)
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = r.post(t, "ops", `{"text":"once","eventId":"evt-42"}`)
		}()
	}
	wg.Wait()
	for _, rep := range replies {
		if rep.status != 202 || rep.str("runId") != replies[0].str("runId") || rep.str("threadId") != replies[0].str("threadId") {
			t.Fatalf("replies differ: %d %s vs %s", rep.status, rep.raw, replies[0].raw)
		}
	}
	free, _ := r.st.FreeSlots(context.Background(), store.SlotPool("ws", "ops"), 2)
	if len(free) != 1 {
		t.Fatalf("one run took %d slots", 2-len(free))
	}
	// Every message queued names that one run (SQS's deduplication id is the message id).
	r.q.mu.Lock()
	for _, m := range r.q.sent {
		if m.RunID != replies[0].str("runId") || m.MessageID != r.q.sent[0].MessageID {
			t.Fatalf("queued %+v", m)
		}
	}
	r.q.mu.Unlock()
	// The key on another thread is a conflict, not a silent second run.
	other := r.post(t, "ops", `{"text":"new"}`)
	rep := r.call(t, "POST /webhook/{name}/threads/{threadId}/messages", map[string]string{"name": "ops", "threadId": other.str("threadId")}, nil, `{"text":"x","eventId":"evt-42"}`)
	if rep.status != 409 {
		t.Fatalf("eventId reused on another thread: %d %s", rep.status, rep.raw)
	}
}

// More posts than slots: exactly maxInFlight are accepted while none finishes, the rest are 429,
// and a finished run's slot takes the next one.
func TestInFlightLimit(t *testing.T) {
	t.Parallel()
	r := newRig(t, `[{"name":"ops","maxInFlight":4}]`)
	var wg sync.WaitGroup
	var accepted, limited atomic.Int32
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch rep := r.post(t, "ops", `{"text":"work"}`); {
			case rep.status == 202:
				accepted.Add(1)
			case rep.status == 429 && rep.message() == "too many in-flight webhook runs":
				limited.Add(1)
			default:
				t.Errorf("%d %s", rep.status, rep.raw)
			}
		}()
	}
	wg.Wait()
	if accepted.Load() != 4 || limited.Load() != 6 {
		t.Fatalf("accepted %d, limited %d; want 4 and 6", accepted.Load(), limited.Load())
	}
	if rep := r.post(t, "ops", `{"text":"one more"}`); rep.status != 429 {
		t.Fatalf("fifth run: %d", rep.status)
	}
	run, _ := r.st.GetRun(context.Background(), "ws", r.q.sent[0].RunID)
	if err := r.st.ReleaseSlot(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	if rep := r.post(t, "ops", `{"text":"after one finished"}`); rep.status != 202 {
		t.Fatalf("after a release: %d %s", rep.status, rep.raw)
	}
}

// A run that cannot be queued gets 503 and frees its slot; without an eventId it is ended, with
// one it stays, and the sender's retry queues it.
func TestQueueFailure(t *testing.T) {
	t.Parallel()
	r := newRig(t, `[{"name":"ops","maxInFlight":1}]`)
	r.q.fail.Store(true)
	if rep := r.post(t, "ops", `{"text":"lost"}`); rep.status != 503 || rep.message() != "the message could not be queued; retry later" || strings.Contains(rep.raw, "connection refused") {
		t.Fatalf("%d %s", rep.status, rep.raw)
	}
	if free, _ := r.st.FreeSlots(context.Background(), store.SlotPool("ws", "ops"), 1); len(free) != 1 {
		t.Fatal("an abandoned run keeps its slot")
	}
	if rep := r.post(t, "ops", `{"text":"kept","eventId":"k1"}`); rep.status != 503 {
		t.Fatalf("%d %s", rep.status, rep.raw)
	}
	if free, _ := r.st.FreeSlots(context.Background(), store.SlotPool("ws", "ops"), 1); len(free) != 1 {
		t.Fatal("a run that was never queued keeps its slot")
	}
	r.q.fail.Store(false)
	rep := r.post(t, "ops", `{"text":"kept","eventId":"k1"}`)
	if rep.status != 202 || r.q.count() != 1 || r.q.sent[0].RunID != rep.str("runId") {
		t.Fatalf("retry: %d %s, queued %d", rep.status, rep.raw, r.q.count())
	}
}

func TestSyncWaitsForTheRun(t *testing.T) {
	t.Parallel()
	r := newRig(t, `[{"name":"ops"}]`)
	// A stand-in worker finishes each run 300 ms after it is queued.
	done := make(chan struct{})
	defer close(done)
	go func() {
		seen := 0
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			r.q.mu.Lock()
			sent := slices.Clone(r.q.sent)
			r.q.mu.Unlock()
			for ; seen < len(sent); seen++ {
				m := sent[seen]
				time.Sleep(300 * time.Millisecond)
				if _, _, err := r.st.StartRun(context.Background(), "ws", m.RunID); err != nil {
					t.Error(err)
				}
				if m.Text == "slow" {
					continue // stays running
				}
				if _, err := r.st.FinishRun(context.Background(), "ws", m.RunID, store.RunCompleted, &store.Result{Text: "re: " + m.Text}, ""); err != nil {
					t.Error(err)
				}
			}
		}
	}()
	fast := r.post(t, "ops", `{"text":"fast","sync":true,"timeoutMs":20000}`)
	if fast.status != 200 || fast.str("status") != "completed" {
		t.Fatalf("fast: %d %s", fast.status, fast.raw)
	}
	if res, _ := fast.body["result"].(map[string]any); res["text"] != "re: fast" {
		t.Fatalf("fast result %s", fast.raw)
	}
	begin := time.Now()
	slow := r.post(t, "ops", `{"text":"slow","sync":true,"timeoutMs":800}`)
	if slow.status != 202 || slow.str("runId") == "" || time.Since(begin) < 800*time.Millisecond {
		t.Fatalf("slow: %d %s after %v", slow.status, slow.raw, time.Since(begin))
	}
}

// An adapter with legacyApprovals decides as before: its secret and a user, the run's or an approver.
func TestCancelAndLegacyDecisionsAreForTheUserOrApprovers(t *testing.T) {
	t.Parallel()
	r := newRig(t, `[{"name":"ops","approvers":["boss"],"legacyApprovals":true}]`)
	ctx := context.Background()
	started := r.post(t, "ops", `{"text":"refund","user":"alice"}`)
	p := runParams("ops", started)
	// Approving a run that does not wait is a conflict; strangers are refused before that.
	if rep := r.call(t, "POST "+runRoute+"/approve", p, nil, `{"user":"mallory"}`); rep.status != 403 {
		t.Fatalf("stranger approves: %d %s", rep.status, rep.raw)
	}
	if rep := r.call(t, "POST "+runRoute+"/approve", p, nil, `{}`); rep.status != 400 || rep.message() != "user is required" {
		t.Fatalf("no user: %d %s", rep.status, rep.raw)
	}
	if rep := r.call(t, "POST "+runRoute+"/approve", p, nil, `{"user":"alice"}`); rep.status != 409 {
		t.Fatalf("approving a queued run: %d %s", rep.status, rep.raw)
	}
	// The worker starts it and the agent asks for approval.
	if _, _, err := r.st.StartRun(ctx, "ws", started.str("runId")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.st.FinishRunWith(ctx, "ws", started.str("runId"), store.Finish{Status: store.RunWaitingApproval, Approval: &store.Approval{ID: "apr_1", Prompt: "Refund?", Options: []string{"yes", "no"}}}); err != nil {
		t.Fatal(err)
	}
	st := r.call(t, "GET "+runRoute, p, nil, "")
	if ap, _ := st.body["approval"].(map[string]any); st.str("status") != "waiting_approval" || ap["prompt"] != "Refund?" {
		t.Fatalf("waiting: %s", st.raw)
	}
	if rep := r.call(t, "POST "+runRoute+"/approve", p, nil, `{"user":"mallory"}`); rep.status != 403 {
		t.Fatalf("stranger approves: %d %s", rep.status, rep.raw)
	}
	if rep := r.call(t, "POST "+runRoute+"/approve", p, nil, `{"user":"boss","option":"maybe"}`); rep.status != 400 {
		t.Fatalf("unknown option: %d %s", rep.status, rep.raw)
	}
	before := r.q.count()
	ok := r.call(t, "POST "+runRoute+"/approve", p, nil, `{"user":"boss","option":"yes","comment":"fine"}`)
	if ok.status != 200 || ok.str("status") != "queued" {
		t.Fatalf("approve: %d %s", ok.status, ok.raw)
	}
	if r.q.count() != before+1 || !r.q.sent[before].Decided || r.q.sent[before].GroupID() != started.str("threadId") {
		t.Fatalf("the decision was not queued on the thread: %+v", r.q.sent[before:])
	}
	// A retried approval answers the same and queues the decision again; a denial now conflicts.
	if again := r.call(t, "POST "+runRoute+"/approve", p, nil, `{"user":"boss","option":"yes"}`); again.status != 200 {
		t.Fatalf("repeat approve: %d %s", again.status, again.raw)
	}
	if rep := r.call(t, "POST "+runRoute+"/deny", p, nil, `{"user":"boss"}`); rep.status != 409 {
		t.Fatalf("deny after approve: %d %s", rep.status, rep.raw)
	}
	evs, _ := r.st.ListEvents(ctx, "ws", 0, 10)
	if len(evs) != 1 || evs[0].Type != EventRunApproved {
		t.Fatalf("events %+v", evs)
	}

	// Cancel: the starter may, a stranger may not, a finished run cannot be.
	second := r.post(t, "ops", `{"text":"other","user":"alice"}`)
	q := runParams("ops", second)
	if rep := r.call(t, "POST "+runRoute+"/cancel", q, nil, `{"user":"mallory"}`); rep.status != 403 {
		t.Fatalf("stranger cancels: %d %s", rep.status, rep.raw)
	}
	c := r.call(t, "POST "+runRoute+"/cancel", q, nil, `{"user":"alice"}`)
	if c.status != 200 || c.str("status") != "cancelled" || c.str("cancelledBy") != "alice" {
		t.Fatalf("cancel: %d %s", c.status, c.raw)
	}
	// Cancelling again answers the same (a retried request) and records nothing new.
	if rep := r.call(t, "POST "+runRoute+"/cancel", q, nil, `{"user":"boss"}`); rep.status != 200 || rep.str("cancelledBy") != "alice" {
		t.Fatalf("cancel twice: %d %s", rep.status, rep.raw)
	}
	if evs, _ := r.st.ListEvents(ctx, "ws", 0, 10); len(evs) != 2 || evs[1].Type != EventRunCancelled {
		t.Fatalf("events %+v", evs)
	}
	// A finished run cannot be cancelled.
	third := r.post(t, "ops", `{"text":"done soon","user":"alice"}`)
	if _, _, err := r.st.StartRun(ctx, "ws", third.str("runId")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.st.FinishRun(ctx, "ws", third.str("runId"), store.RunCompleted, &store.Result{Text: "ok"}, ""); err != nil {
		t.Fatal(err)
	}
	if rep := r.call(t, "POST "+runRoute+"/cancel", runParams("ops", third), nil, `{"user":"alice"}`); rep.status != 409 {
		t.Fatalf("cancel a completed run: %d %s", rep.status, rep.raw)
	}
	free, _ := r.st.FreeSlots(ctx, store.SlotPool("ws", "ops"), DefaultMaxInFlight)
	if len(free) != DefaultMaxInFlight-2 { // the first and third runs hold theirs (no worker releases them here)
		t.Fatalf("free slots %d", len(free))
	}
}

func TestParseAdapters(t *testing.T) {
	as, err := ParseAdapters("", secret, "ws", 0)
	if err != nil || len(as) != 1 || as["default"].MaxInFlight != 32 || as["default"].MaxBodyBytes != 1_000_000 || as["default"].Workspace != "ws" {
		t.Fatalf("default: %+v %v", as, err)
	}
	a, err := ParseAdapters(`[{"name":"a","secret":"own-secret-0123456789","replyHosts":["Hooks.Example.com"],"maxInFlight":3,"agent":"gpt","approvers":["x"]}]`, "", "ws", 0)
	if err != nil || !a["a"].Authentic("own-secret-0123456789") || a["a"].Authentic(secret) || !a["a"].ReplyHostAllowed("hooks.example.com") || a["a"].MaxInFlight != 3 {
		t.Fatalf("own secret: %v", err)
	}
	_, err = ParseAdapters(`[{"name":"Bad Name"},{"name":"b","secret":"short"},{"name":"c","replyHosts":["*.example.com","https://x.com"]},{"name":"d","maxInFlight":-1},{"name":"e"}]`, "", "ws", 0)
	if err == nil {
		t.Fatal("bad adapters accepted")
	}
	for _, want := range []string{"adapter 1", "adapter 2 (\"b\"): secret 1 is shorter", "replyHosts[0]", "replyHosts[1]", "maxInFlight", "adapter 5 (\"e\"): has no secret"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "short") && strings.Contains(err.Error(), `"short"`) {
		t.Errorf("the secret is quoted: %v", err)
	}
	if _, err := ParseAdapters(`{"name":"x","secret":"leaky-secret-0123456789"`, "", "ws", 0); err == nil || strings.Contains(err.Error(), "leaky") {
		t.Fatalf("broken JSON: %v", err)
	}
	if _, err := ParseAdapters(`[{"name":"x"},{"name":"x"}]`, secret, "ws", 0); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate names: %v", err)
	}
}

// TestRouteKeysMatchTemplate: the routes the handler serves are the HttpApi events of
// AdapterFunction in template.yaml, no more and no fewer.
func TestRouteKeysMatchTemplate(t *testing.T) {
	root := projectRoot(t)
	tpl, err := template.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := New(Config{}, nil, nil, slog.New(slog.DiscardHandler), time.Now).RouteKeys()
	slices.Sort(got)
	if declared := tpl.RouteKeys("AdapterFunction"); !slices.Equal(got, declared) {
		t.Fatalf("handler routes %v\ntemplate routes %v", got, declared)
	}
}

func projectRoot(t *testing.T) string {
	t.Helper()
	wd, _ := os.Getwd()
	root, err := emulator.FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// The samples in events/ (what `sam local invoke -e` and `make invoke` send) go through the real
// decoder: the start sample starts a run, the status sample names no run of this table.
func TestSampleEvents(t *testing.T) {
	t.Parallel()
	root := projectRoot(t)
	db, table := emulatortest.Table(t, "adapter")
	as, err := ParseAdapters("", "dev-adapter-secret", "default", 0)
	if err != nil {
		t.Fatal(err)
	}
	q := &recorder{}
	h := New(Config{Adapters: Static(as), Lease: time.Minute}, store.New(db, table, time.Now), q, slog.New(slog.DiscardHandler), time.Now)
	for file, want := range map[string]int{"adapter-start.json": 202, "adapter-run-status.json": 404} {
		raw, err := os.ReadFile(filepath.Join(root, "events", file))
		if err != nil {
			t.Fatal(err)
		}
		out, err := lambda.NewHandler(h.Handle).Invoke(context.Background(), raw)
		if err != nil {
			t.Fatal(err)
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode != want {
			t.Fatalf("%s: %d %s, want %d", file, resp.StatusCode, resp.Body, want)
		}
	}
	if q.count() != 1 || q.sent[0].Text != "Can I get a refund for order 7?" || q.sent[0].User != "ada" {
		t.Fatalf("queued %+v", q.sent)
	}
}

// A run no adapter started (a generic inbound message, a Telegram update) is not found through an
// adapter; one configured with readAllRuns reads it, but cannot cancel, approve or deny it.
func TestOnlyTheStartingAdapterActsOnARun(t *testing.T) {
	t.Parallel()
	r := newRig(t, `[{"name":"ops","approvers":["boss"],"readAllRuns":true},{"name":"own"}]`)
	ctx := context.Background()
	th := store.Thread{ID: "thr_0000000000000000000000000a", WorkspaceID: "ws", Channel: "telegram", ExternalID: "42"}
	msg := store.Message{ID: "msg_1", Direction: "in", Text: "hi", CreatedAt: time.Now()}
	if _, _, err := r.st.CreateRunWith(ctx, store.NewRun{Thread: th, Message: msg, Run: store.Run{ID: "run_0000000000000000000000000a", User: "boss"}}); err != nil {
		t.Fatal(err)
	}
	own := map[string]string{"name": "own", "threadId": th.ID, "runId": "run_0000000000000000000000000a"}
	if rep := r.call(t, "GET "+runRoute, own, nil, ""); rep.status != 404 {
		t.Fatalf("another door's run through an adapter without readAllRuns: %d %s", rep.status, rep.raw)
	}
	p := map[string]string{"name": "ops", "threadId": th.ID, "runId": "run_0000000000000000000000000a"}
	if rep := r.call(t, "GET "+runRoute, p, nil, ""); rep.status != 200 || rep.str("status") != "queued" {
		t.Fatalf("status: %d %s", rep.status, rep.raw)
	}
	for _, action := range []string{"cancel", "approve", "deny"} {
		body := `{"user":"boss"}`
		if action != "cancel" { // even with a token signed for the run
			body = `{"token":"` + r.keys.Sign(approval.Token{Workspace: "ws", RunID: p["runId"], Approver: "boss", Decision: action, Expires: time.Now().Add(time.Hour)}) + `"}`
		}
		if rep := r.call(t, "POST "+runRoute+"/"+action, p, nil, body); rep.status != 404 {
			t.Fatalf("%s: %d %s", action, rep.status, rep.raw)
		}
	}
	if run, _ := r.st.GetRun(ctx, "ws", "run_0000000000000000000000000a"); run.Status != store.RunQueued {
		t.Fatalf("run %+v", run)
	}
}

// waiting starts a run of adapter ops and lets it ask for approval as the worker would.
func (r *rig) waiting(t *testing.T, requestID string) (map[string]string, store.Run) {
	t.Helper()
	ctx := context.Background()
	started := r.post(t, "ops", `{"text":"refund","user":"alice"}`)
	if started.status != 202 {
		t.Fatalf("start: %d %s", started.status, started.raw)
	}
	if _, _, err := r.st.StartRun(ctx, "ws", started.str("runId")); err != nil {
		t.Fatal(err)
	}
	run, err := r.st.FinishRunWith(ctx, "ws", started.str("runId"), store.Finish{Status: store.RunWaitingApproval, Approval: &store.Approval{
		ID: requestID, Prompt: "Refund?", Options: []string{"yes", "no"}, Approvers: []string{"boss"}, ExpiresAt: time.Now().Add(time.Hour).Truncate(time.Second),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return runParams("ops", started), run
}

// token signs a decision on the run's current request; change adjusts it first.
func (r *rig) token(run store.Run, decision, option string, change func(*approval.Token)) string {
	tok := approval.Token{Workspace: "ws", RunID: run.ID, RequestID: run.Approval.ID, Approver: "boss", Decision: decision, Option: option, Expires: run.Approval.ExpiresAt}
	if change != nil {
		change(&tok)
	}
	return r.keys.Sign(tok)
}

// Without legacyApprovals the adapter's secret and a user decide nothing: only a decision token
// does, for exactly the run, request, approver, decision and option it names, until it expires.
func TestDecisionsNeedAValidToken(t *testing.T) {
	t.Parallel()
	r := newRig(t, `[{"name":"ops","approvers":["boss"]},{"name":"other"}]`)
	ctx := context.Background()
	p, run := r.waiting(t, "apr_1")
	_, otherRun := r.waiting(t, "apr_9")
	forger, _ := approval.NewKeys(time.Now, "not-the-stack-key-0123456")
	noAuth := map[string]string{}
	approve := "POST " + runRoute + "/approve"
	for name, c := range map[string]struct {
		headers map[string]string
		route   string
		body    string
		query   string
		status  int
		message string
	}{
		"secret and an approver's name": {nil, approve, `{"user":"boss","option":"yes"}`, "", 403, "a decision token is required: approvers get theirs in the run.requires_approval event"},
		"nothing":                       {noAuth, approve, `{"user":"boss"}`, "", 401, "missing or invalid adapter secret"},
		"forged":                        {noAuth, approve, "", forger.Sign(approval.Token{Workspace: "ws", RunID: run.ID, RequestID: "apr_1", Approver: "boss", Decision: "approve", Option: "yes", Expires: time.Now().Add(time.Hour)}), 403, "decision token is invalid"},
		"garbage":                       {noAuth, approve, `{"token":"abc.def"}`, "", 403, "decision token is invalid"},
		"expired":                       {noAuth, approve, "", r.token(run, "approve", "yes", func(t *approval.Token) { t.Expires = time.Unix(0, r.clock.Load()).Add(-time.Second) }), 403, "decision token has expired"},
		"another run":                   {noAuth, approve, "", r.token(otherRun, "approve", "yes", nil), 403, "decision token is not for this run"},
		"another workspace":             {noAuth, approve, "", r.token(run, "approve", "yes", func(t *approval.Token) { t.Workspace = "ws2" }), 403, "decision token is not for this run"},
		"deny token to approve":         {noAuth, approve, "", r.token(run, "deny", "", nil), 403, "decision token is for deny, not approve"},
		"approve token to deny":         {noAuth, "POST " + runRoute + "/deny", "", r.token(run, "approve", "yes", nil), 403, "decision token is for approve, not deny"},
		"another option in the body":    {noAuth, approve, `{"option":"no","token":"` + r.token(run, "approve", "yes", nil) + `"}`, "", 403, "decision token is for another option"},
		"an option not asked":           {noAuth, approve, "", r.token(run, "approve", "maybe", nil), 403, "decision token is for another option"},
		"not an approver":               {noAuth, approve, "", r.token(run, "approve", "yes", func(t *approval.Token) { t.Approver = "mallory" }), 403, "decision token's approver may not decide this request"},
		"another request":               {noAuth, approve, "", r.token(run, "approve", "yes", func(t *approval.Token) { t.RequestID = "apr_0" }), 409, "decision token answers another approval request of this run"},
	} {
		req := events.APIGatewayV2HTTPRequest{RouteKey: c.route, PathParameters: p, Headers: c.headers, Body: c.body}
		if c.headers == nil {
			req.Headers = map[string]string{"authorization": "Bearer " + secret}
		}
		if c.query != "" {
			req.QueryStringParameters = map[string]string{"token": c.query}
		}
		rep := r.invoke(t, req)
		if rep.status != c.status || rep.message() != c.message {
			t.Errorf("%s: %d %s, want %d %q", name, rep.status, rep.raw, c.status, c.message)
		}
	}
	if got, _ := r.st.GetRun(ctx, "ws", run.ID); got.Status != store.RunWaitingApproval || got.Approval.Decision != "" || r.q.count() != 2 {
		t.Fatalf("a refused decision changed something: %+v, %d queued", got, r.q.count())
	}
	if evs, _ := r.st.ListEvents(ctx, "ws", 0, 10); len(evs) != 0 {
		t.Fatalf("a refused decision recorded %+v", evs)
	}
	// A token checked after its expiry (the clock moves on) is refused, however it was when made.
	tok := r.token(run, "approve", "yes", nil)
	r.clock.Store(run.Approval.ExpiresAt.UnixNano())
	if rep := r.invoke(t, events.APIGatewayV2HTTPRequest{RouteKey: approve, PathParameters: p, QueryStringParameters: map[string]string{"token": tok}}); rep.status != 403 || rep.message() != "decision token has expired" {
		t.Fatalf("at expiry: %d %s", rep.status, rep.raw)
	}
	r.clock.Store(time.Now().UnixNano())
	// The valid token, without the adapter's secret, approves; its replay changes nothing more.
	ok := r.invoke(t, events.APIGatewayV2HTTPRequest{RouteKey: approve, PathParameters: p, Body: `{"comment":"fine"}`, QueryStringParameters: map[string]string{"token": tok}})
	ap, _ := ok.body["approval"].(map[string]any)
	if ok.status != 200 || ok.str("status") != "queued" || ap["decidedBy"] != "boss" || ap["option"] != "yes" || ap["comment"] != "fine" || ap["id"] != "apr_1" {
		t.Fatalf("approve: %d %s", ok.status, ok.raw)
	}
	if r.q.count() != 3 || !r.q.sent[2].Decided || r.q.sent[2].User != "boss" {
		t.Fatalf("the decision was not queued: %+v", r.q.sent)
	}
	if again := r.invoke(t, events.APIGatewayV2HTTPRequest{RouteKey: approve, PathParameters: p, QueryStringParameters: map[string]string{"token": tok}}); again.status != 200 {
		t.Fatalf("replay: %d %s", again.status, again.raw)
	}
	if rep := r.invoke(t, events.APIGatewayV2HTTPRequest{RouteKey: "POST " + runRoute + "/deny", PathParameters: p, Body: `{"token":"` + r.token(run, "deny", "", nil) + `"}`}); rep.status != 409 {
		t.Fatalf("deny after approve: %d %s", rep.status, rep.raw)
	}
	if evs, _ := r.st.ListEvents(ctx, "ws", 0, 10); len(evs) != 1 || evs[0].Type != EventRunApproved {
		t.Fatalf("events %+v", evs)
	}
	// The agent asks again: the first request's token cannot answer the second.
	if _, _, err := r.st.StartRun(ctx, "ws", run.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.st.FinishRunWith(ctx, "ws", run.ID, store.Finish{Status: store.RunWaitingApproval, Approval: &store.Approval{ID: "apr_2", Prompt: "More?", Approvers: []string{"boss"}}}); err != nil {
		t.Fatal(err)
	}
	if rep := r.invoke(t, events.APIGatewayV2HTTPRequest{RouteKey: approve, PathParameters: p, QueryStringParameters: map[string]string{"token": tok}}); rep.status != 409 {
		t.Fatalf("the first request's token on the second: %d %s", rep.status, rep.raw)
	}
	if got, _ := r.st.GetRun(ctx, "ws", run.ID); got.Status != store.RunWaitingApproval || got.Approval.ID != "apr_2" || got.Approval.Decision != "" {
		t.Fatalf("the second request: %+v", got.Approval)
	}
}

func (r *rig) invoke(t *testing.T, req events.APIGatewayV2HTTPRequest) reply {
	t.Helper()
	raw, _ := json.Marshal(req)
	out, err := lambda.NewHandler(r.h.Handle).Invoke(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	rep := reply{status: resp.StatusCode, raw: resp.Body}
	_ = json.Unmarshal([]byte(resp.Body), &rep.body)
	return rep
}

func TestCallbackSecrets(t *testing.T) {
	as, err := ParseAdapters(`[{"name":"ops"},{"name":"own","callbackSecret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]`, secret, "default", 0)
	if err != nil {
		t.Fatal(err)
	}
	// The known answer of approval.CallbackSecret for (key, default, ops).
	if got := as["ops"].CallbackSecrets([]string{approvalKey, "an-older-approval-key-0123"}); len(got) != 2 || got[0] != "whsec_Oxf4xALsoimCVyiUQA9N1meWPc7O8zy6NWTR7Tt2osw=" || got[1] == got[0] || slices.Contains(got, secret) {
		t.Fatalf("derived %v", got)
	}
	if got := as["own"].CallbackSecrets([]string{approvalKey}); !slices.Equal(got, []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}) {
		t.Fatalf("configured %v", got)
	}
	_, err = ParseAdapters(`[{"name":"a","callbackSecret":"`+secret+`"},{"name":"b","callbackSecret":"tiny"},{"name":"c","approvers":["1","2","3","4","5","6","7","8","9","10","11"]}]`, secret, "default", 0)
	for _, want := range []string{`adapter 1 ("a"): callbackSecret must differ`, `adapter 2 ("b"): callbackSecret is shorter`, `adapter 3 ("c"): lists more than 10 approvers`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if err != nil && (strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "tiny")) {
		t.Errorf("the error quotes a secret: %v", err)
	}
}
