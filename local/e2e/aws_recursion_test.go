package e2e_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/local/stack"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/store"
)

// Lambda's recursive loop detection stops a chain of requests that invokes one function more than
// 16 times through SQS; local mode enforces it (local/lambdart, local/sqsesm, the SQS guard of
// local/stack). These tests run the whole default delivery schedule with time compressed: every
// wait divided by timeScale, SQS's 15-minute delay cap shortened to one second (the delivery
// function's HOOKGATE_DELIVERY_MAX_QUEUE_DELAY_SECONDS), and the retry sweep run each second
// instead of each minute. A wait thus takes as many queue hops as it would on AWS.
const timeScale = 900 // 15 minutes → 1 s

// compressedDefault is the default schedule with every wait divided by timeScale.
func compressedDefault(t *testing.T) string {
	s, err := outbound.ParseSchedule(outbound.ScheduleDefault)
	if err != nil {
		t.Fatal(err)
	}
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = (d / timeScale).String()
	}
	return strings.Join(parts, ",")
}

// recursionStack starts a stack with the compressed default schedule, a sweep each second and
// queues whose visibility is 3 s (a stopped message reaches the DLQ in seconds; with 1 s, a loaded
// machine's slower invocations let hops be handled twice).
// Retries are not spaced across the endpoint's lane here (HOOKGATE_DELIVERY_RETRY_SPACING_MS=0):
// a spaced retry can be deferred through the queue, a hop the compressed schedule does not count.
func recursionStack(t *testing.T, name string, functionEnv map[string]string) *env {
	t.Helper()
	fe := map[string]string{"HOOKGATE_DELIVERY_RETRY_SPACING_MS": "0"}
	for k, v := range functionEnv {
		fe[k] = v
	}
	return rulesStack(t, name, 3*time.Second, map[string]string{"DeliverySchedule": compressedDefault(t)}, fe)
}

// keepLogs sends the stack's function and local-mode logs to stderr with -v, else to a file whose
// name a failed test reports (and which a passing test removes).
func keepLogs(t *testing.T, o *stack.Options, name string) {
	if testing.Verbose() {
		o.FunctionLog = os.Stderr
		return
	}
	f, err := os.CreateTemp("", name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	o.FunctionLog = f
	o.Logger = slog.New(slog.NewJSONHandler(f, nil))
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			t.Logf("function and local-mode logs in %s", f.Name())
		} else {
			os.Remove(f.Name())
		}
	})
}

// rulesStack starts a stack of its own for the tests of AWS's rules: queues with the given
// visibility, the sweep each second, SQS's delay cap shortened to a second.
func rulesStack(t *testing.T, name string, visibility time.Duration, params, functionEnv map[string]string) *env {
	t.Helper()
	root, _ := filepath.Abs("../..")
	env0 := map[string]string{"HOOKGATE_DELIVERY_MAX_QUEUE_DELAY_SECONDS": "1"}
	for k, v := range functionEnv {
		env0[k] = v
	}
	o := stack.Options{
		Root: root, BinDir: binDir(t), Addr: "127.0.0.1:0",
		DynamoEndpoint: emulatortest.Dynamo(t), SQSEndpoint: emulatortest.SQS(t),
		Params: map[string]string{
			"InboundSecret": inboundSecret, "AdapterSecret": adapterSecret, "AdminApiKey": adminKey,
			"AllowHttpUrls": "true", "AllowPrivateDestinations": "true",
			"Adapters": `[{"name":"default","readAllRuns":true}]`,
		},
		Prefix:            fmt.Sprintf("%s%d-", name, time.Now().UnixNano()%1e9),
		VisibilityTimeout: visibility, PollWait: time.Second, SchedulePeriod: time.Second,
		FunctionEnv: env0, Concurrency: 2,
	}
	for k, v := range params {
		o.Params[k] = v
	}
	keepLogs(t, &o, name)
	s, err := stack.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cfg, err := awscfg.Load(context.Background(), func(k string) string {
		return map[string]string{awscfg.EnvDynamoEndpoint: s.DynamoEndpoint, awscfg.EnvSQSEndpoint: s.SQSEndpoint}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{stack: s, sqs: cfg.SQS(), store: store.New(cfg.DynamoDB(), s.Tables["Table"], time.Now)}
}

// failingReceiver answers every delivery 500 and counts the attempts.
func failingReceiver(t *testing.T) (*receiver, func() int) {
	var mu sync.Mutex
	n := 0
	r := newReceiver(t, func(string, int) int {
		mu.Lock()
		defer mu.Unlock()
		n++
		return http.StatusInternalServerError
	})
	return r, func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// dlqDepth counts the messages in the delivery queue's DLQ (up to ten, received and left there).
func dlqDepth(t *testing.T, e *env) int {
	t.Helper()
	out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(e.stack.Queues["DeliveryDLQ"].URL), MaxNumberOfMessages: 10, VisibilityTimeout: 0,
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Messages)
}

// One delivery to an endpoint that always fails runs through the whole default schedule, hops
// and long waits included, under Lambda's recursion rule: 8 attempts, then delivery.exhausted.
func TestDefaultScheduleCompletesUnderTheRecursionRule(t *testing.T) {
	t.Parallel() // doc.go says which tests may: a stack of its own
	scheduleUsedUp(t, recursionStack(t, "rec", nil), "recursion")
}

// The same delivery with the re-queue bound off (MaxRequeues a million: every wait a message can
// make goes through the queue). The function still reads its invocation's place in its chain of
// requests and puts a wait that would take the chain within two of Lambda's 16 on the retry
// schedule, so the schedule completes. Before it did, this chain was stopped at its 17th
// invocation, in the wait before attempt 6 or 7: its message ended in the DLQ, the delivery stayed
// pending, and no delivery.exhausted was recorded.
func TestUnboundedRequeuesStayUnderTheRecursionRule(t *testing.T) {
	t.Parallel() // doc.go says which tests may: a stack of its own
	scheduleUsedUp(t, recursionStack(t, "recq", map[string]string{"HOOKGATE_DELIVERY_MAX_REQUEUES": "1000000"}), "recursion-queue-only")
}

// scheduleUsedUp sends one message to a run.completed subscriber that always fails and checks that
// its delivery uses up the whole default schedule (8 attempts) and is recorded exhausted, with
// nothing in the delivery DLQ.
func scheduleUsedUp(t *testing.T, e *env, text string) {
	t.Helper()
	r, attempts := failingReceiver(t)
	sub := subscribe(t, e, r, `["run.completed"]`)
	sendOne(t, e, text)
	var failed []map[string]any
	waitFor(t, "the delivery to use up its schedule", 6*time.Minute, func() bool {
		failed = deliveries(t, e, sub, "failed")
		return len(failed) == 1
	})
	id := failed[0]["id"].(string)
	got := do(t, http.MethodGet, e.stack.URL+"/v1/deliveries/"+id, adminHeaders(), "")
	atts, _ := got.body["attempt_log"].([]any)
	if got.status != 200 || len(atts) != 8 || attempts() != 8 {
		t.Fatalf("%d attempts logged, %d received: %s", len(atts), attempts(), got.raw)
	}
	waitFor(t, "delivery.exhausted in the log", 30*time.Second, func() bool {
		return len(eventsAbout(t, e, id)["delivery.exhausted"]) == 1
	})
	if n := dlqDepth(t, e); n != 0 {
		t.Fatalf("%d delivery messages in the DLQ: the recursion rule stopped a chain", n)
	}
}

// A delivery function instance killed mid-invocation is replaced as Lambda replaces a crashed
// instance: the invocation fails, its message comes back after its visibility timeout (20 s, past
// the attempt's 16 s lease), and a fresh process delivers it. The killed attempt is never recorded.
func TestKilledDeliveryInstanceIsReplaced(t *testing.T) {
	t.Parallel() // doc.go says which tests may: a stack of its own
	e := rulesStack(t, "crash", 20*time.Second, map[string]string{"DeliveryTimeoutSeconds": "1", "DeliverySchedule": "0s,1s"}, nil)
	var mu sync.Mutex
	var killed []int
	seen := 0
	r := newReceiver(t, func(string, int) int {
		mu.Lock()
		defer mu.Unlock()
		seen++
		if seen == 1 {
			killed = e.stack.FunctionPIDs("DeliveryFunction")
			for _, pid := range killed {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		return http.StatusOK
	})
	sub := subscribe(t, e, r, `["run.completed"]`)
	sendOne(t, e, "crash")
	waitFor(t, "the delivery after the crash", 2*time.Minute, func() bool {
		return len(deliveries(t, e, sub, "succeeded")) == 1
	})
	id := deliveries(t, e, sub, "succeeded")[0]["id"].(string)
	got := do(t, http.MethodGet, e.stack.URL+"/v1/deliveries/"+id, adminHeaders(), "")
	atts, _ := got.body["attempt_log"].([]any)
	if got.status != 200 || len(atts) != 1 || atts[0].(map[string]any)["status_code"] != float64(200) {
		t.Fatalf("attempt log: %s", got.raw)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(killed) == 0 || seen < 2 {
		t.Fatalf("killed %v, %d requests seen", killed, seen)
	}
	for _, pid := range e.stack.FunctionPIDs("DeliveryFunction") {
		if slices.Contains(killed, pid) {
			t.Fatalf("process %d was killed but still serves", pid)
		}
	}
}
