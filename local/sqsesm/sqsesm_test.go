package sqsesm

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

const (
	testQueueURL = "http://127.0.0.1:9324/000000000000/inbound.fifo"
	testQueueARN = "arn:aws:sqs:eu-west-1:000000000000:inbound.fifo"
)

// fakeSQS hands out errs, then batches, one per receive; then it either blocks until the
// receive's ctx is done (as a long poll would) or, with empty set, returns no messages at once.
type fakeSQS struct {
	mu            sync.Mutex
	errs          []error
	batches       [][]types.Message
	empty         bool
	receives      []*sqs.ReceiveMessageInput
	deleted       []string // receipt handles
	deleteCtxErrs []error
	idle          chan struct{} // closed when the batches have run out
	idleOnce      sync.Once
}

func newFakeSQS(batches ...[]types.Message) *fakeSQS {
	return &fakeSQS{batches: batches, idle: make(chan struct{})}
}

func (f *fakeSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	f.mu.Lock()
	f.receives = append(f.receives, in)
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		f.mu.Unlock()
		return nil, err
	}
	if len(f.batches) > 0 {
		b := f.batches[0]
		f.batches = f.batches[1:]
		f.mu.Unlock()
		return &sqs.ReceiveMessageOutput{Messages: b}, nil
	}
	f.mu.Unlock()
	f.idleOnce.Do(func() { close(f.idle) })
	if f.empty {
		return &sqs.ReceiveMessageOutput{}, nil
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (f *fakeSQS) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if aws.ToString(in.QueueUrl) != testQueueURL {
		return nil, errors.New("wrong queue URL")
	}
	ids := map[string]bool{}
	for _, e := range in.Entries {
		if ids[aws.ToString(e.Id)] {
			return nil, errors.New("duplicate entry id")
		}
		ids[aws.ToString(e.Id)] = true
		f.deleted = append(f.deleted, aws.ToString(e.ReceiptHandle))
	}
	f.deleteCtxErrs = append(f.deleteCtxErrs, ctx.Err())
	return &sqs.DeleteMessageBatchOutput{}, nil
}

func (f *fakeSQS) deletedHandles() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(slices.Values(f.deleted))
}

// fakeInvoker records payloads and answers with respond (by default a null response).
type fakeInvoker struct {
	mu       sync.Mutex
	function string
	payloads [][]byte
	traces   []string
	respond  func(ctx context.Context) ([]byte, error)
}

// Chain counts a trace header "chain=N" as the Nth invocation of a chain; Lambda stops the 17th.
func (f *fakeInvoker) Chain(_, trace string) (int, bool) {
	n := 1
	if v, ok := strings.CutPrefix(trace, "chain="); ok {
		n, _ = strconv.Atoi(v)
	}
	return n, n > 16
}

func (f *fakeInvoker) InvokeTraced(ctx context.Context, function string, payload []byte, trace string) ([]byte, error) {
	f.mu.Lock()
	f.function = function
	f.payloads = append(f.payloads, payload)
	f.traces = append(f.traces, trace)
	f.mu.Unlock()
	if f.respond == nil {
		return []byte("null"), nil
	}
	return f.respond(ctx)
}

func returns(payload string, err error) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) { return []byte(payload), err }
}

func testConfig() Config {
	return Config{Function: "worker", QueueURL: testQueueURL, QueueARN: testQueueARN, BatchSize: 10, WaitTime: time.Second}
}

// runUntilIdle runs the mapping until the fake has handed out every batch, then cancels it and
// returns what Run returned.
func runUntilIdle(t *testing.T, c Config, q *fakeSQS, inv Invoker) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, q, inv) }()
	select {
	case <-q.idle:
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("mapping never drained the queue")
	}
	cancel()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

func message(id string) types.Message {
	body := `{"n":"` + id + `"}`
	sum := md5.Sum([]byte(body))
	return types.Message{
		MessageId:     aws.String(id),
		ReceiptHandle: aws.String("rh-" + id),
		Body:          aws.String(body),
		MD5OfBody:     aws.String(hex.EncodeToString(sum[:])),
		Attributes:    map[string]string{"ApproximateReceiveCount": "1"},
	}
}

func batch(ids ...string) []types.Message {
	msgs := make([]types.Message, len(ids))
	for i, id := range ids {
		msgs[i] = message(id)
	}
	return msgs
}

func TestEventRecords(t *testing.T) {
	m1 := message("m1")
	m1.Attributes = map[string]string{
		"ApproximateReceiveCount":          "2",
		"SentTimestamp":                    "1700000000000",
		"SenderId":                         "AIDAEXAMPLE",
		"ApproximateFirstReceiveTimestamp": "1700000000100",
		"MessageGroupId":                   "thread-1",
		"MessageDeduplicationId":           "msg-1",
		"SequenceNumber":                   "18880000000000000001",
	}
	m1.MD5OfMessageAttributes = aws.String("0123456789abcdef0123456789abcdef")
	m1.MessageAttributes = map[string]types.MessageAttributeValue{
		"trace":  {DataType: aws.String("String"), StringValue: aws.String("abc")},
		"count":  {DataType: aws.String("Number"), StringValue: aws.String("3")},
		"blob":   {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 0xff}},
		"custom": {DataType: aws.String("String.custom"), StringValue: aws.String("x")},
	}
	m2 := message("m2")
	m2.Attributes = nil

	q := newFakeSQS([]types.Message{m1, m2})
	inv := &fakeInvoker{}
	c := testConfig()
	c.BatchSize, c.WaitTime = 5, 3*time.Second
	if err := runUntilIdle(t, c, q, inv); err != nil {
		t.Fatalf("Run = %v", err)
	}

	in := q.receives[0]
	if aws.ToString(in.QueueUrl) != testQueueURL || in.MaxNumberOfMessages != 5 || in.WaitTimeSeconds != 3 {
		t.Errorf("receive input: url %q, max %d, wait %d", aws.ToString(in.QueueUrl), in.MaxNumberOfMessages, in.WaitTimeSeconds)
	}
	if !slices.Equal(in.MessageAttributeNames, []string{"All"}) {
		t.Errorf("MessageAttributeNames = %v", in.MessageAttributeNames)
	}
	for _, want := range []types.MessageSystemAttributeName{"ApproximateReceiveCount", "SentTimestamp", "SenderId",
		"ApproximateFirstReceiveTimestamp", "MessageGroupId", "MessageDeduplicationId", "SequenceNumber"} {
		if !slices.Contains(in.MessageSystemAttributeNames, want) {
			t.Errorf("MessageSystemAttributeNames lacks %s", want)
		}
	}

	if inv.function != "worker" || len(inv.payloads) != 1 {
		t.Fatalf("invoked %q %d times", inv.function, len(inv.payloads))
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(inv.payloads[0], &ev); err != nil {
		t.Fatalf("payload is not an SQSEvent: %v", err)
	}
	want := events.SQSEvent{Records: []events.SQSMessage{
		{
			MessageId: "m1", ReceiptHandle: "rh-m1", Body: `{"n":"m1"}`, Md5OfBody: aws.ToString(m1.MD5OfBody),
			Md5OfMessageAttributes: "0123456789abcdef0123456789abcdef",
			Attributes:             m1.Attributes,
			MessageAttributes: map[string]events.SQSMessageAttribute{
				"trace":  {DataType: "String", StringValue: aws.String("abc"), StringListValues: []string{}, BinaryListValues: [][]byte{}},
				"count":  {DataType: "Number", StringValue: aws.String("3"), StringListValues: []string{}, BinaryListValues: [][]byte{}},
				"blob":   {DataType: "Binary", BinaryValue: []byte{0, 1, 0xff}, StringListValues: []string{}, BinaryListValues: [][]byte{}},
				"custom": {DataType: "String.custom", StringValue: aws.String("x"), StringListValues: []string{}, BinaryListValues: [][]byte{}},
			},
			EventSourceARN: testQueueARN, EventSource: "aws:sqs", AWSRegion: "eu-west-1",
		},
		{
			MessageId: "m2", ReceiptHandle: "rh-m2", Body: `{"n":"m2"}`, Md5OfBody: aws.ToString(m2.MD5OfBody),
			Attributes: map[string]string{}, MessageAttributes: map[string]events.SQSMessageAttribute{},
			EventSourceARN: testQueueARN, EventSource: "aws:sqs", AWSRegion: "eu-west-1",
		},
	}}
	if !reflect.DeepEqual(ev, want) {
		got, _ := json.MarshalIndent(ev, "", " ")
		exp, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("event =\n%s\nwant\n%s", got, exp)
	}
	// Lambda's wire shape: empty lists, not null, and the binary value in base64.
	raw := string(inv.payloads[0])
	for _, s := range []string{`"stringListValues":[]`, `"binaryListValues":[]`, `"binaryValue":"AAH/"`, `"Records":[`, `"messageAttributes":{}`} {
		if !strings.Contains(raw, s) {
			t.Errorf("payload lacks %s: %s", s, raw)
		}
	}
}

func TestRegionOverride(t *testing.T) {
	q := newFakeSQS(batch("m1"))
	inv := &fakeInvoker{}
	c := testConfig()
	c.Region = "us-east-1"
	if err := runUntilIdle(t, c, q, inv); err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(inv.payloads[0], &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Records[0].AWSRegion != "us-east-1" {
		t.Errorf("awsRegion = %q", ev.Records[0].AWSRegion)
	}
}

func TestDeletes(t *testing.T) {
	all := []string{"rh-m1", "rh-m2", "rh-m3"}
	tests := []struct {
		name    string
		report  bool
		respond func(context.Context) ([]byte, error)
		deleted []string
	}{
		{"success deletes all", false, returns("null", nil), all},
		{"success with any response deletes all", false, returns(`{"ok":true}`, nil), all},
		{"failures ignored without ReportBatchItemFailures", false, returns(`{"batchItemFailures":[{"itemIdentifier":"m2"}]}`, nil), all},
		{"invalid response ignored without ReportBatchItemFailures", false, returns(`not json`, nil), all},
		{"partial failure", true, returns(`{"batchItemFailures":[{"itemIdentifier":"m2"}]}`, nil), []string{"rh-m1", "rh-m3"}},
		{"partial failure, repeated id", true, returns(`{"batchItemFailures":[{"itemIdentifier":"m3"},{"itemIdentifier":"m3"},{"itemIdentifier":"m1"}]}`, nil), []string{"rh-m2"}},
		{"every item failed", true, returns(`{"batchItemFailures":[{"itemIdentifier":"m1"},{"itemIdentifier":"m2"},{"itemIdentifier":"m3"}]}`, nil), nil},
		{"report: null response", true, returns(`null`, nil), all},
		{"report: empty response", true, returns(``, nil), all},
		{"report: empty object", true, returns(`{}`, nil), all},
		{"report: empty list", true, returns(`{"batchItemFailures":[]}`, nil), all},
		{"report: null list", true, returns(`{"batchItemFailures":null}`, nil), all},
		{"function error", false, returns(``, errors.New("Unhandled")), nil},
		{"function error with report", true, returns(`{"batchItemFailures":[]}`, errors.New("timeout")), nil},
		{"malformed: invalid JSON", true, returns(`{"batchItemFailures":[`, nil), nil},
		{"malformed: not an object", true, returns(`"ok"`, nil), nil},
		{"malformed: list not an array", true, returns(`{"batchItemFailures":"m1"}`, nil), nil},
		{"malformed: unknown id", true, returns(`{"batchItemFailures":[{"itemIdentifier":"m9"}]}`, nil), nil},
		{"malformed: empty id", true, returns(`{"batchItemFailures":[{"itemIdentifier":""}]}`, nil), nil},
		{"malformed: null id", true, returns(`{"batchItemFailures":[{"itemIdentifier":null}]}`, nil), nil},
		{"malformed: bad key", true, returns(`{"batchItemFailures":[{"messageId":"m1"}]}`, nil), nil},
		{"malformed: id not a string", true, returns(`{"batchItemFailures":[{"itemIdentifier":1}]}`, nil), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newFakeSQS(batch("m1", "m2", "m3"))
			inv := &fakeInvoker{respond: tt.respond}
			c := testConfig()
			c.ReportBatchItemFailures = tt.report
			if err := runUntilIdle(t, c, q, inv); err != nil {
				t.Fatalf("Run = %v", err)
			}
			if len(inv.payloads) != 1 {
				t.Fatalf("invoked %d times", len(inv.payloads))
			}
			if got := q.deletedHandles(); !slices.Equal(got, tt.deleted) {
				t.Errorf("deleted %v, want %v", got, tt.deleted)
			}
		})
	}
}

func TestBatchesInOrder(t *testing.T) {
	q := newFakeSQS(batch("m1", "m2"), batch("m3"))
	var order []string
	inv := &fakeInvoker{}
	inv.respond = func(context.Context) ([]byte, error) {
		var ev events.SQSEvent
		if err := json.Unmarshal(inv.payloads[len(inv.payloads)-1], &ev); err != nil {
			return nil, err
		}
		for _, r := range ev.Records {
			order = append(order, r.MessageId)
		}
		return []byte("null"), nil
	}
	if err := runUntilIdle(t, testConfig(), q, inv); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []string{"m1", "m2", "m3"}) {
		t.Errorf("order = %v", order)
	}
	if got := q.deletedHandles(); len(got) != 3 {
		t.Errorf("deleted %v", got)
	}
}

func TestCancelWhileIdleReturnsNil(t *testing.T) {
	q := newFakeSQS()
	if err := runUntilIdle(t, testConfig(), q, &fakeInvoker{}); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

func TestCancelMidBatchStillDeletes(t *testing.T) {
	q := newFakeSQS(batch("m1", "m2"))
	started := make(chan struct{})
	inv := &fakeInvoker{respond: func(ctx context.Context) ([]byte, error) {
		close(started)
		<-ctx.Done() // the function finishes after shutdown began
		return []byte("null"), nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, testConfig(), q, inv) }()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("function never invoked")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if got := q.deletedHandles(); !slices.Equal(got, []string{"rh-m1", "rh-m2"}) {
		t.Errorf("deleted %v", got)
	}
	for _, err := range q.deleteCtxErrs {
		if err != nil {
			t.Errorf("delete ran with a done context: %v", err)
		}
	}
	if n := len(q.receives); n != 1 {
		t.Errorf("%d receives after cancel, want 1 in all", n)
	}
}

func TestReceiveErrorsAreRetried(t *testing.T) {
	q := newFakeSQS(batch("m1"))
	q.errs = []error{errors.New("connection refused"), errors.New("throttled")}
	inv := &fakeInvoker{}
	if err := runUntilIdle(t, testConfig(), q, inv); err != nil {
		t.Fatal(err)
	}
	if len(inv.payloads) != 1 || len(q.deletedHandles()) != 1 {
		t.Errorf("after errors: %d invocations, deleted %v", len(inv.payloads), q.deletedHandles())
	}
	if n := len(q.receives); n < 4 {
		t.Errorf("%d receives, want at least 4", n)
	}
}

func TestShortWaitIsPaced(t *testing.T) {
	q := newFakeSQS()
	q.empty = true
	c := testConfig()
	c.WaitTime = 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := Run(ctx, c, q, &fakeInvoker{}); err != nil {
		t.Fatal(err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if n := len(q.receives); n < 2 || n > 40 {
		t.Errorf("%d receives in 500ms with a 50ms wait", n)
	}
	if q.receives[0].WaitTimeSeconds != 0 {
		t.Errorf("WaitTimeSeconds = %d for a 50ms wait", q.receives[0].WaitTimeSeconds)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"no function":           func(c *Config) { c.Function = "" },
		"no queue URL":          func(c *Config) { c.QueueURL = "" },
		"no queue ARN":          func(c *Config) { c.QueueARN = "" },
		"batch too large":       func(c *Config) { c.BatchSize = 11 },
		"negative batch":        func(c *Config) { c.BatchSize = -1 },
		"wait too long":         func(c *Config) { c.WaitTime = 21 * time.Second },
		"negative wait":         func(c *Config) { c.WaitTime = -time.Second },
		"no region in bad ARN":  func(c *Config) { c.QueueARN = "inbound" },
		"no region in ARN":      func(c *Config) { c.QueueARN = "arn:aws:sqs::000000000000:inbound" },
		"ARN of another server": func(c *Config) { c.QueueARN = "arn:aws:sns:eu-west-1:000000000000:topic" },
	} {
		t.Run(name, func(t *testing.T) {
			c := testConfig()
			mutate(&c)
			q := newFakeSQS()
			if err := Run(context.Background(), c, q, &fakeInvoker{}); err == nil {
				t.Error("Run accepted an invalid config")
			}
			if len(q.receives) != 0 {
				t.Error("polled with an invalid config")
			}
		})
	}
	if err := Run(context.Background(), testConfig(), nil, &fakeInvoker{}); err == nil {
		t.Error("Run accepted a nil SQS client")
	}
	if err := Run(context.Background(), testConfig(), newFakeSQS(), nil); err == nil {
		t.Error("Run accepted a nil invoker")
	}
}

func TestDefaults(t *testing.T) {
	c := testConfig()
	c.BatchSize, c.WaitTime = 0, 0
	m, err := newMapping(c, newFakeSQS(), &fakeInvoker{})
	if err != nil {
		t.Fatal(err)
	}
	in := m.receiveInput()
	if in.MaxNumberOfMessages != DefaultBatchSize || in.WaitTimeSeconds != int32(DefaultWaitTime/time.Second) {
		t.Errorf("defaults: max %d, wait %d", in.MaxNumberOfMessages, in.WaitTimeSeconds)
	}
}

func TestSQSClientSatisfiesSQSAPI(t *testing.T) {
	var _ SQSAPI = (*sqs.Client)(nil)
}

// A message whose chain of requests Lambda's recursion rule stops is left out of the batch and
// not deleted; the invocation continues the longest chain that runs.
func TestRecursionRuleStopsAMessage(t *testing.T) {
	msg := func(id, trace string) types.Message {
		return types.Message{MessageId: aws.String(id), ReceiptHandle: aws.String("rh-" + id), Body: aws.String("{}"),
			Attributes: map[string]string{"AWSTraceHeader": trace}}
	}
	q := newFakeSQS([]types.Message{msg("a", "chain=3"), msg("b", "chain=17"), msg("c", "chain=16"), msg("d", "")})
	inv := &fakeInvoker{}
	if err := runUntilIdle(t, testConfig(), q, inv); err != nil {
		t.Fatal(err)
	}
	if len(inv.payloads) != 1 || inv.traces[0] != "chain=16" {
		t.Fatalf("invocations %d, traces %q", len(inv.payloads), inv.traces)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(inv.payloads[0], &ev); err != nil || len(ev.Records) != 3 {
		t.Fatalf("records %+v (%v)", ev.Records, err)
	}
	for _, r := range ev.Records {
		if r.MessageId == "b" {
			t.Fatal("the stopped message was invoked")
		}
	}
	if got := q.deletedHandles(); !slices.Equal(got, []string{"rh-a", "rh-c", "rh-d"}) {
		t.Fatalf("deleted %v", got)
	}
	// A batch of stopped messages invokes nothing.
	q = newFakeSQS([]types.Message{msg("e", "chain=40")})
	inv = &fakeInvoker{}
	if err := runUntilIdle(t, testConfig(), q, inv); err != nil {
		t.Fatal(err)
	}
	if len(inv.payloads) != 0 || len(q.deletedHandles()) != 0 {
		t.Fatalf("invocations %d, deleted %v", len(inv.payloads), q.deletedHandles())
	}
}

// concurrencyInvoker counts the invocations running at once and keeps the peak.
type concurrencyInvoker struct {
	mu             sync.Mutex
	inFlight, peak int
	calls          int
}

func (c *concurrencyInvoker) Chain(string, string) (int, bool) { return 1, false }

func (c *concurrencyInvoker) InvokeTraced(ctx context.Context, _ string, _ []byte, _ string) ([]byte, error) {
	c.mu.Lock()
	c.inFlight++
	c.calls++
	c.peak = max(c.peak, c.inFlight)
	c.mu.Unlock()
	sleepCtx(ctx, 20*time.Millisecond) // long enough for the other pollers to pile in
	c.mu.Lock()
	c.inFlight--
	c.mu.Unlock()
	return []byte("null"), nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// Eight pollers, ScalingConfig.MaximumConcurrency 2: never more than two invocations at once, and
// every message is still handled and deleted.
func TestMaximumConcurrencyCapsInvocations(t *testing.T) {
	var batches [][]types.Message
	var want []string
	for i := range 24 {
		id := "m" + strings.Repeat("x", i)
		batches = append(batches, batch(id))
		want = append(want, "rh-"+id)
	}
	slices.Sort(want)
	q := newFakeSQS(batches...)
	inv := &concurrencyInvoker{}
	c := testConfig()
	c.Pollers, c.MaximumConcurrency = 8, 2
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, q, inv) }()
	for !slices.Equal(q.deletedHandles(), want) {
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	t.Logf("%d invocations, at most %d at once", inv.calls, inv.peak)
	if inv.peak > 2 {
		t.Fatalf("%d invocations ran at once, MaximumConcurrency is 2", inv.peak)
	}
}

func TestMaximumConcurrencyOutOfRange(t *testing.T) {
	for _, n := range []int{1, 1001, -1} {
		c := testConfig()
		c.MaximumConcurrency = n
		if err := Run(context.Background(), c, newFakeSQS(), &fakeInvoker{}); err == nil || !strings.Contains(err.Error(), "maximum concurrency") {
			t.Errorf("MaximumConcurrency %d: Run = %v, want a range error", n, err)
		}
	}
}
