package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/local/stack"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// Three DynamoDB Locals share the stacks (emulatortest.RunSpread says why).
func TestMain(m *testing.M) { os.Exit(emulatortest.RunSpread(m, 3)) }

const (
	inboundSecret = "test-inbound-secret-0123"
	adapterSecret = "test-adapter-secret-0123"
	adminKey      = "test-admin-api-key-0123456789"
)

// binDir returns the folder of host-arch bootstraps: HOOKGATE_BIN_DIR (make test sets it), or the
// Makefile builds them.
func binDir(t testing.TB) string {
	if d := os.Getenv("HOOKGATE_BIN_DIR"); d != "" {
		return d
	}
	root, _ := filepath.Abs("../..")
	cmd := exec.Command("make", "-s", "bootstraps")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make bootstraps: %v\n%s", err, out)
	}
	return filepath.Join(root, ".build", runtime.GOARCH)
}

type env struct {
	stack *stack.Stack
	sqs   *sqs.Client
	store *store.Store
	// syntheticEvents exempts the stack's log from the catalog check (catalog_check_test.go): its
	// tests append events of their own making straight to the log.
	syntheticEvents atomic.Bool
}

// lazyStack is a stack its lane's first test starts; it lives until the test binary exits (Run
// stops the emulators).
type lazyStack struct {
	once sync.Once
	env  *env
	err  error
}

// get starts the stack on the first call (visibility and params as startStack's) and returns it.
func (l *lazyStack) get(t *testing.T, name string, visibility time.Duration, params map[string]string) *env {
	t.Helper()
	l.once.Do(func() { l.env, l.err = startSharedStack(t, name, visibility, params, nil) })
	if l.err != nil {
		t.Fatalf("start local stack %s: %v", name, l.err)
	}
	return l.env
}

var shared, once lazyStack

// startStack starts a stack from template.yaml on the test emulators, with its own table and queue
// names. Queues get the given visibility timeout (0 keeps the template's); the shared stack uses 1 s
// so that redelivery and the DLQ take seconds.
func startStack(t *testing.T, name string, visibility time.Duration, params, functionEnv map[string]string) (*env, error) {
	return startStackOn(t, emulatortest.Dynamo(t), name, visibility, params, functionEnv)
}

// startSharedStack is startStack for a stack that outlives the test that starts it (a lane's, or a
// group of tests'): its logs go to stderr with -v, else nowhere (a log file would end with that
// test).
func startSharedStack(t *testing.T, name string, visibility time.Duration, params, functionEnv map[string]string) (*env, error) {
	o := stackOptions(t, emulatortest.Dynamo(t), name, visibility, params, functionEnv)
	if testing.Verbose() {
		o.FunctionLog = os.Stderr
	}
	return launch(t, o)
}

// startOwnStack is startStack on a DynamoDB Local of the test's own (emulatortest.OwnDynamo), for
// volume tests, so that they and the other tests do not slow each other down.
func startOwnStack(t *testing.T, name string, visibility time.Duration, params, functionEnv map[string]string) (*env, error) {
	return startStackOn(t, emulatortest.OwnDynamo(t), name, visibility, params, functionEnv)
}

// The stack is the test's own: its function and local-mode logs are kept in a file that names
// itself if the test fails (keepLogs).
func startStackOn(t *testing.T, dynamo, name string, visibility time.Duration, params, functionEnv map[string]string) (*env, error) {
	o := stackOptions(t, dynamo, name, visibility, params, functionEnv)
	keepLogs(t, &o, name)
	return launch(t, o)
}

// stackOptions are the options of a test stack on the given DynamoDB Local.
func stackOptions(t *testing.T, dynamo, name string, visibility time.Duration, params, functionEnv map[string]string) stack.Options {
	root, _ := filepath.Abs("../..")
	all := map[string]string{
		"InboundSecret": inboundSecret, "AdapterSecret": adapterSecret, "AdminApiKey": adminKey,
		"AllowHttpUrls": "true", "AllowPrivateDestinations": "true", "DeliverySchedule": "0s,1s,1s",
		"TelegramSecretToken": telegramToken, "SourceCacheSeconds": "0",
		// A failed message comes back after the test queues' visibility (1 s), not 10 s.
		"FailureDelaySeconds": "1",
		// Time compressed for retries after a 503 or a timeout (60 s on AWS); the circuit breaker
		// stays out of the way of tests about other things (throttle_test.go turns it on).
		"DeliveryBackoffFloorSeconds": "1", "DeliveryCircuitBreaker": "off",
		// The tests poll the inbound doors' runs through the default adapter.
		"Adapters": `[{"name":"default","readAllRuns":true}]`,
	}
	for k, v := range params {
		all[k] = v
	}
	o := stack.Options{
		Root: root, BinDir: binDir(t), Addr: "127.0.0.1:0",
		DynamoEndpoint: dynamo, SQSEndpoint: emulatortest.SQS(t), KMSEndpoint: emulatortest.KMS(t),
		Params:            all,
		Prefix:            fmt.Sprintf("%s%d-", name, time.Now().UnixNano()%1e9),
		VisibilityTimeout: visibility, PollWait: time.Second, FunctionEnv: functionEnv, Concurrency: 3,
	}
	return o
}

// launch starts a test stack and a client of its emulators.
func launch(t *testing.T, o stack.Options) (*env, error) {
	s, err := stack.Start(context.Background(), o)
	if err != nil {
		return nil, err
	}
	cfg, err := awscfg.Load(context.Background(), func(k string) string {
		return map[string]string{awscfg.EnvDynamoEndpoint: s.DynamoEndpoint, awscfg.EnvSQSEndpoint: s.SQSEndpoint}[k]
	})
	if err != nil {
		return nil, err
	}
	e := &env{stack: s, sqs: cfg.SQS(), store: store.New(cfg.DynamoDB(), s.Tables["Table"], time.Now)}
	// When the test that started the stack ends, its event log is held to the catalog (for the
	// shared stack: what the log holds when its first test ends; receivers check the rest).
	t.Cleanup(func() {
		if !e.syntheticEvents.Load() {
			checkStackEvents(t, e)
		}
	})
	return e, nil
}

// sharedStack is the stack most tests share.
func sharedStack(t *testing.T) *env {
	t.Helper()
	return shared.get(t, "it", time.Second, nil)
}

// onceStack is the stack of the tests that count how often the agent ran (lane laneOnce). Its
// queues keep a visibility of 30 s: on AWS a queue's visibility outlasts its function's timeout,
// and with the shared stack's 1 s a worker slower than a second (the machine loaded) saw a message
// again while it still ran it, and the agent ran twice.
func onceStack(t *testing.T) *env {
	t.Helper()
	return once.get(t, "once", 30*time.Second, nil)
}

type reply struct {
	status int
	body   map[string]any
	raw    string
	header http.Header
}

func (r reply) errorCode() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func do(t *testing.T, method, url string, headers map[string]string, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := apiClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, raw: string(raw), header: resp.Header}
	if len(raw) == 0 && resp.StatusCode == http.StatusNoContent {
		return r
	}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("%s %s: body %q is not JSON", method, url, raw)
	}
	return r
}

func postInbound(t *testing.T, e *env, headers map[string]string, body string) reply {
	t.Helper()
	h := map[string]string{"content-type": "application/json", "x-hookgate-inbound-secret": inboundSecret}
	for k, v := range headers {
		h[k] = v
	}
	return do(t, http.MethodPost, e.stack.URL+"/v1/inbound/generic", h, body)
}

// waitRun polls the adapter's run status route until the run finishes, and the log until it holds
// the run's final event (the worker appends it just after the run's change); 90 s at most, as
// waitUntil, for CI's loaded machine.
func waitRun(t *testing.T, e *env, threadID, runID string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		r := do(t, http.MethodGet, e.stack.URL+"/webhook/default/threads/"+threadID+"/runs/"+runID,
			map[string]string{"authorization": "Bearer " + adapterSecret}, "")
		if r.status == 200 && (r.body["status"] == "completed" || r.body["status"] == "failed") &&
			len(eventsAbout(t, e, runID)["run."+r.body["status"].(string)]) > 0 {
			return r.body
		}
		if r.status != 200 && r.status != 404 {
			t.Fatalf("run status: %d %s", r.status, r.raw)
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s not finished in time: %d %s", runID, r.status, r.raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// keyedIDs derives ids as the stack's functions do, with its IdDerivationKey.
func keyedIDs(e *env) ids.Keyed { return ids.NewKeyed(e.stack.Params["IdDerivationKey"]) }

// eventsAbout returns the events of the workspace whose data names the given id, by type.
func eventsAbout(t *testing.T, e *env, id string) map[string][]store.Event {
	t.Helper()
	out := map[string][]store.Event{}
	var after int64
	for {
		page, err := e.store.ListEvents(context.Background(), "default", after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		for _, ev := range page {
			if bytes.Contains(ev.Data, []byte(`"`+id+`"`)) {
				out[ev.Type] = append(out[ev.Type], ev)
			}
		}
		after = page[len(page)-1].Cursor
	}
}

func TestInboundToCompletedRun(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	r := postInbound(t, e, nil, `{"channel":"email","external_id":"alice@example.com","text":"hello, agent","user":"alice","data":{"subject":"hi"}}`)
	if r.status != 202 {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	threadID, runID, msgID := r.body["thread_id"].(string), r.body["run_id"].(string), r.body["message_id"].(string)
	if threadID != keyedIDs(e).Thread("default", "email", "alice@example.com") || !ids.Valid("run", runID) || !ids.Valid("msg", msgID) {
		t.Fatalf("ids %v", r.body)
	}
	run := waitRun(t, e, threadID, runID)
	res, _ := run["result"].(map[string]any)
	if run["status"] != "completed" || res["text"] != "hello, agent" || run["threadId"] != threadID {
		t.Fatalf("run %v", run)
	}
	byType := eventsAbout(t, e, runID)
	msgEvents := eventsAbout(t, e, msgID)["message.received"]
	if len(msgEvents) != 1 || len(byType["run.created"]) != 1 || len(byType["run.completed"]) != 1 {
		t.Fatalf("events: message.received %d, run.created %d, run.completed %d", len(msgEvents), len(byType["run.created"]), len(byType["run.completed"]))
	}
	if !(msgEvents[0].Cursor < byType["run.created"][0].Cursor && byType["run.created"][0].Cursor < byType["run.completed"][0].Cursor) {
		t.Fatalf("events out of order: %d %d %d", msgEvents[0].Cursor, byType["run.created"][0].Cursor, byType["run.completed"][0].Cursor)
	}
	// The same thread is found again for the same (channel, external id).
	r2 := postInbound(t, e, nil, `{"channel":"email","external_id":"alice@example.com","text":"again"}`)
	if r2.body["thread_id"] != threadID || r2.body["run_id"] == runID {
		t.Fatalf("follow-up %v", r2.body)
	}
	waitRun(t, e, threadID, r2.body["run_id"].(string))
}

func TestHMACSignedInbound(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	body := `{"channel":"cron","external_id":"nightly","text":"run the report"}`
	sig := "sha256=" + hmacHex(inboundSecret, body)
	r := do(t, http.MethodPost, e.stack.URL+"/v1/inbound/generic", map[string]string{"x-hookgate-signature": sig}, body)
	if r.status != 202 {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	if run := waitRun(t, e, r.body["thread_id"].(string), r.body["run_id"].(string)); run["status"] != "completed" {
		t.Fatalf("run %v", run)
	}
}

func TestIdempotentRepost(t *testing.T) {
	inLane(t, laneOnce)
	e := onceStack(t)
	key := fmt.Sprintf("order-%d", time.Now().UnixNano())
	body := `{"channel":"shop","external_id":"cust-9","text":"where is my order?"}`
	a := postInbound(t, e, map[string]string{"idempotency-key": key}, body)
	waitRun(t, e, a.body["thread_id"].(string), a.body["run_id"].(string))
	// After the first run finished (and past SQS's own deduplication of in-flight sends).
	b := postInbound(t, e, map[string]string{"idempotency-key": key}, body)
	if a.status != 202 || b.status != 202 || a.body["run_id"] != b.body["run_id"] || a.body["message_id"] != b.body["message_id"] {
		t.Fatalf("reposts differ: %v / %v", a.raw, b.raw)
	}
	time.Sleep(2 * time.Second) // give a (wrong) second run time to appear
	runID := a.body["run_id"].(string)
	byType := eventsAbout(t, e, runID)
	if len(byType["run.created"]) != 1 || len(byType["run.completed"]) != 1 {
		t.Fatalf("repost made more runs: %d created, %d completed", len(byType["run.created"]), len(byType["run.completed"]))
	}
	if run := waitRun(t, e, a.body["thread_id"].(string), runID); run["attempts"] != float64(1) {
		t.Fatalf("run ran %v times", run["attempts"])
	}
}

// SQS delivers at least once: the same inbound message arriving twice is processed once.
func TestDuplicateSQSDeliveryProcessedOnce(t *testing.T) {
	inLane(t, laneOnce)
	e := onceStack(t)
	now := time.Now().UTC()
	m := queue.Inbound{
		Version: queue.InboundVersion, WorkspaceID: "default", ThreadID: ids.Derive("thr", "default", "dup", "x"),
		MessageID: ids.New("msg", now), RunID: ids.New("run", now), Source: "generic", Channel: "dup", ExternalID: "x",
		Text: "twice", ReceivedAt: now,
	}
	body, _ := json.Marshal(m)
	for i := range 2 {
		_, err := e.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{
			QueueUrl: aws.String(e.stack.Queues["InboundQueue"].URL), MessageBody: aws.String(string(body)),
			MessageGroupId: aws.String(m.ThreadID), MessageDeduplicationId: aws.String(fmt.Sprintf("%s-%d", m.MessageID, i)),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	waitRun(t, e, m.ThreadID, m.RunID)
	time.Sleep(2 * time.Second) // the second copy is behind the first in its FIFO group
	byType := eventsAbout(t, e, m.RunID)
	if len(byType["run.created"]) != 1 || len(byType["run.completed"]) != 1 || len(eventsAbout(t, e, m.MessageID)["message.received"]) != 1 {
		t.Fatalf("duplicate delivery recorded twice: %v", byType)
	}
	if run := waitRun(t, e, m.ThreadID, m.RunID); run["attempts"] != float64(1) {
		t.Fatalf("agent ran %v times", run["attempts"])
	}
	inboundDrained(t, e)
}

// inboundDrained fails t unless the inbound queue empties (see approxMessages) with nothing in its
// dead-letter queue: a message the worker failed on every receive leaves the queue too, for the DLQ.
func inboundDrained(t *testing.T, e *env) {
	t.Helper()
	if n := approxMessages(t, e, "InboundQueue"); n != 0 {
		t.Fatalf("%d messages left on the inbound queue", n)
	}
	if n := approxMessages(t, e, "InboundDLQ"); n != 0 {
		t.Fatalf("%d messages in the inbound dead-letter queue", n)
	}
}

// approxMessages is how many messages queueID still holds, visible or in flight, once it is empty
// or after a minute: the count is the whole queue's, and on a loaded machine (CI) messages an earlier
// test of the lane queued may still be on their way through the worker.
func approxMessages(t *testing.T, e *env, queueID string) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := e.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
			QueueUrl: aws.String(e.stack.Queues[queueID].URL), AttributeNames: []sqstypesName{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"},
		})
		if err != nil {
			t.Fatal(err)
		}
		n := atoi(out.Attributes["ApproximateNumberOfMessages"]) + atoi(out.Attributes["ApproximateNumberOfMessagesNotVisible"])
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestPoisonMessageReachesDLQ(t *testing.T) {
	t.Parallel() // doc.go says which tests may
	// A stack of its own: the poison message stays on its inbound queue for 20 receives, and tests
	// of the shared stack count what is left on theirs.
	e, err := startStack(t, "poison", time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.stack.Close()
	poison := fmt.Sprintf(`{"v":1,"not":"an inbound message %d"`, time.Now().UnixNano())
	_, err = e.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl: aws.String(e.stack.Queues["InboundQueue"].URL), MessageBody: aws.String(poison),
		MessageGroupId: aws.String("poison"), MessageDeduplicationId: aws.String(fmt.Sprint(time.Now().UnixNano())),
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second) // 20 receives at the test queues' 1 s visibility
	for time.Now().Before(deadline) {
		out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(e.stack.Queues["InboundDLQ"].URL), WaitTimeSeconds: 1, MaxNumberOfMessages: 10,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			if aws.ToString(m.Body) == poison {
				return // in the DLQ, where it can be seen and replayed
			}
		}
	}
	t.Fatal("the poison message did not reach the DLQ")
}

func TestBadInputGetsJSONErrors(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	valid := `{"channel":"c","external_id":"e","text":"t"}`
	inboundURL := e.stack.URL + "/v1/inbound/generic"
	tests := []struct {
		name    string
		method  string
		url     string
		headers map[string]string
		body    string
		status  int
		code    string
		message string
	}{
		{"wrong secret", "POST", inboundURL, map[string]string{"x-hookgate-inbound-secret": "nope-nope-nope-nope"}, valid, 401, "unauthorized", "invalid secret"},
		{"no credentials", "POST", inboundURL, nil, valid, 401, "unauthorized", "missing credentials"},
		{"bad signature", "POST", inboundURL, map[string]string{"x-hookgate-signature": "sha256=" + hmacHex("other", valid)}, valid, 401, "unauthorized", "invalid signature"},
		{"invalid json", "POST", inboundURL, map[string]string{"x-hookgate-inbound-secret": inboundSecret}, `{"channel":`, 400, "invalid_request", "not valid JSON"},
		{"missing channel", "POST", inboundURL, map[string]string{"x-hookgate-inbound-secret": inboundSecret}, `{"external_id":"e","text":"t"}`, 400, "invalid_request", "channel is required"},
		{"missing external_id", "POST", inboundURL, map[string]string{"x-hookgate-inbound-secret": inboundSecret}, `{"channel":"c","text":"t"}`, 400, "invalid_request", "external_id is required"},
		{"blank text", "POST", inboundURL, map[string]string{"x-hookgate-inbound-secret": inboundSecret}, `{"channel":"c","external_id":"e","text":"   "}`, 400, "invalid_request", "text is required"},
		{"over 1,000,000 bytes", "POST", inboundURL, map[string]string{"x-hookgate-inbound-secret": inboundSecret}, `{"text":"` + strings.Repeat("a", 1_000_000) + `"}`, 413, "payload_too_large", "larger than"},
		{"unknown route", "GET", e.stack.URL + "/v1/nothing/here", nil, "", 404, "not_found", "no route"},
		{"wrong method", "GET", inboundURL, nil, "", 404, "not_found", "no route"},
		{"run status without secret", "GET", e.stack.URL + "/webhook/default/threads/thr_x/runs/run_x", nil, "", 401, "unauthorized", "adapter secret"},
		{"run status of an unknown adapter", "GET", e.stack.URL + "/webhook/nope/threads/thr_x/runs/run_x", map[string]string{"authorization": "Bearer " + adapterSecret}, "", 401, "unauthorized", "adapter secret"},
		{"unknown run", "GET", e.stack.URL + "/webhook/default/threads/thr_x/runs/run_x", map[string]string{"authorization": "Bearer " + adapterSecret}, "", 404, "not_found", "run not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, tt.url, tt.headers, tt.body)
			e, _ := r.body["error"].(map[string]any)
			if msg, _ := e["message"].(string); r.status != tt.status || r.errorCode() != tt.code || !strings.Contains(msg, tt.message) {
				t.Fatalf("got %d %s, want %d %s %q", r.status, r.raw, tt.status, tt.code, tt.message)
			}
			if strings.Contains(r.raw, inboundSecret) || strings.Contains(r.raw, adapterSecret) {
				t.Fatalf("response leaks a secret: %s", r.raw)
			}
		})
	}
}

// With SQS unreachable the inbound route answers 503 (the sender retries) and nothing is written.
func TestQueueDownIs503AndNothingWritten(t *testing.T) {
	t.Parallel() // doc.go says which tests may
	e, err := startStack(t, "down", time.Second, nil, map[string]string{awscfg.EnvSQSEndpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.stack.Close()
	r := postInbound(t, e, nil, `{"channel":"c","external_id":"e","text":"t"}`)
	if r.status != 503 || r.errorCode() != "unavailable" || strings.Contains(r.raw, "127.0.0.1:1") {
		t.Fatalf("got %d %s", r.status, r.raw)
	}
	time.Sleep(2 * time.Second)
	evs, err := e.store.ListEvents(context.Background(), "default", 0, 10)
	if err != nil || len(evs) != 0 {
		t.Fatalf("a refused message was processed: %d events, %v", len(evs), err)
	}
}

func TestManyThreadsInParallel(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	const n = 20
	type posted struct{ thread, run string }
	out := make(chan posted, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := postInbound(t, e, nil, fmt.Sprintf(`{"channel":"par","external_id":"user-%d","text":"message %d"}`, i, i))
			if r.status != 202 {
				t.Errorf("post %d: %d %s", i, r.status, r.raw)
				return
			}
			out <- posted{r.body["thread_id"].(string), r.body["run_id"].(string)}
		}()
	}
	wg.Wait()
	close(out)
	for p := range out {
		if run := waitRun(t, e, p.thread, p.run); run["status"] != "completed" {
			t.Fatalf("run %v", run)
		}
	}
}
