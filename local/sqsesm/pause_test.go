package sqsesm

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/hookgate/hookgate/local/emulator"
	"github.com/hookgate/hookgate/shared/awscfg"
)

// countingInvoker records the bodies of the messages it was invoked with.
type countingInvoker struct {
	mu     sync.Mutex
	bodies map[string]int
}

func (c *countingInvoker) InvokeTraced(_ context.Context, _ string, payload []byte, _ string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range bodiesOf(payload) {
		c.bodies[b]++
	}
	return nil, nil
}

func (c *countingInvoker) Chain(string, string) (int, bool) { return 1, false }

func (c *countingInvoker) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.bodies)
}

// Issue 17's stall: the SQS emulator paused longer than the SDK's attempt timeout (10 s) while a
// receive waits in its socket. The client gave up on that receive and sent another; on resume
// fauxqs answered the first one (as SQS answers a request whose client has left) and its messages
// stayed invisible for the whole visibility timeout, with no invocation and no error logged. The
// poller must wait for its receive as long as the queue holds it, so the batch is invoked at once.
func TestReceiveSurvivesAPausedQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, err := emulator.StartSQS(ctx, emulator.SQSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	cfg, err := awscfg.Load(ctx, func(k string) string { return map[string]string{awscfg.EnvSQSEndpoint: p.Endpoint}[k] })
	if err != nil {
		t.Fatal(err)
	}
	q := cfg.SQS()
	created, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("paused"),
		Attributes: map[string]string{"VisibilityTimeout": "300"}})
	if err != nil {
		t.Fatal(err)
	}
	url := aws.ToString(created.QueueUrl)
	var entries []types.SendMessageBatchRequestEntry
	for i := range 10 {
		entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), MessageBody: aws.String(fmt.Sprint("m", i))})
	}
	if _, err := q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: entries}); err != nil {
		t.Fatal(err)
	}

	// Paused before the poller's first receive: that receive waits in the socket past the pause.
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	inv := &countingInvoker{bodies: map[string]int{}}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = Run(runCtx, Config{Function: "F", QueueURL: url, QueueARN: "arn:aws:sqs:us-east-1:000000000000:paused", WaitTime: time.Second}, NewClient(cfg, nil), inv)
	})
	time.Sleep(awscfg.AttemptTimeout + 2*time.Second)
	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// Far less than the visibility timeout: a receive lost on resume would hold the batch 300 s.
	deadline := time.Now().Add(20 * time.Second)
	for inv.count() < 10 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if n := inv.count(); n != 10 {
		t.Fatalf("%d of 10 messages invoked within 20 s of the resume: the rest were handed to a receive the poller had given up on", n)
	}
}

func bodiesOf(payload []byte) []string {
	var ev events.SQSEvent
	_ = json.Unmarshal(payload, &ev)
	out := make([]string, len(ev.Records))
	for i, r := range ev.Records {
		out[i] = r.Body
	}
	return out
}
