package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/agent"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// These tests run the worker on messages received from the SQS emulator, with their real receipt
// handles, so what the worker does to their visibility is what SQS then does.

// sqsQueue creates a FIFO queue whose visibility timeout (10 min) no test waits out.
func sqsQueue(t *testing.T) (*sqs.Client, string) {
	t.Helper()
	endpoint := emulatortest.SQS(t)
	cfg, err := awscfg.Load(context.Background(), func(k string) string {
		if k == awscfg.EnvSQSEndpoint {
			return endpoint
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	client := cfg.SQS()
	name := fmt.Sprintf("worker-%s-%d.fifo", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), time.Now().UnixNano()%1e9)
	out, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: map[string]string{
		"FifoQueue": "true", "VisibilityTimeout": "600",
	}})
	if err != nil {
		t.Fatal(err)
	}
	return client, aws.ToString(out.QueueUrl)
}

func send(t *testing.T, c *sqs.Client, url, dedup string, body string) {
	t.Helper()
	if _, err := c.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: &url, MessageBody: &body,
		MessageGroupId: aws.String("thr_a"), MessageDeduplicationId: &dedup}); err != nil {
		t.Fatal(err)
	}
}

// receive receives until want messages came, as Lambda's event source would hand them over. It
// gives up after two minutes, far inside the queue's 10-minute visibility timeout.
func receive(t *testing.T, c *sqs.Client, url string, want int) []events.SQSMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var got []events.SQSMessage
	for len(got) < want {
		if err := ctx.Err(); err != nil {
			t.Fatalf("received %d of %d messages: %v", len(got), want, err)
		}
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			got = append(got, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
				Body: aws.ToString(m.Body), Attributes: m.Attributes})
		}
	}
	return got
}

// clock is a time source the agent moves forward: each agent call takes step.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// A batch of one thread whose agent calls take 40 s each, in an invocation with 100 s left and a
// MessageTime of 50 s: the first two messages run, the third is handed back and made visible again
// at once.
func TestWorkerHandsBackWhatDoesNotFitItsDeadline(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Now()}
	db, table := emulatortest.Table(t, "worker")
	st := store.New(db, table, clk.Now)
	calls := 0
	ag := &scripted{respond: func(r agent.Request, _ int) (agent.Reply, error) {
		if r.Kind == agent.KindUserSpeak {
			calls++
			clk.advance(40 * time.Second)
		}
		return echoing(r, 0)
	}}
	vis := &visibility{}
	sched, _ := outbound.ParseSchedule("0s")
	cfg := Config{Retry: sched, Lease: time.Minute, MessageTime: 50 * time.Second, FailureDelay: 10 * time.Second}
	h := New(cfg, st, st, registry{ag, 0}, vis, slog.New(slog.DiscardHandler), clk.Now)

	batch := []events.SQSMessage{record("1", message("thr_a", "r1", "m1")), record("2", message("thr_a", "r2", "m2")), record("3", message("thr_a", "r3", "m3"))}
	ctx, cancel := context.WithDeadline(context.Background(), clk.Now().Add(100*time.Second))
	defer cancel()
	resp, err := h.Handle(ctx, events.SQSEvent{Records: batch})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "3" {
		t.Fatalf("batch item failures %+v, want only the third message", resp.BatchItemFailures)
	}
	if calls != 2 {
		t.Fatalf("agent called for %d messages, want 2", calls)
	}
	if run, err := st.GetRun(context.Background(), "ws", "r3"); err == nil {
		t.Fatalf("the handed-back message created run %+v", run)
	}
	if len(vis.calls) != 1 || !slices.Equal(vis.calls[0].handles, []string{"rh-3"}) || vis.calls[0].delay != 0 {
		t.Fatalf("visibility changes %+v, want rh-3 visible at once", vis.calls)
	}
}

// On the SQS emulator: a message received with too little of the invocation left is handed back
// and is the thread's next message at once, not after the queue's 10-minute visibility timeout.
// (fauxqs hands out one message of a FIFO group at a time; SQS hands out up to ten.)
func TestWorkerHandedBackMessageReturnsAtOnce(t *testing.T) {
	t.Parallel()
	c, url := sqsQueue(t)
	db, table := emulatortest.Table(t, "worker")
	st := store.New(db, table, time.Now)
	ag := &scripted{respond: echoing}
	sched, _ := outbound.ParseSchedule("0s")
	cfg := Config{Retry: sched, Lease: time.Minute, MessageTime: time.Hour, FailureDelay: 10 * time.Second}
	h := New(cfg, st, st, registry{ag, 0}, queue.NewPostponer(c, url), slog.New(slog.DiscardHandler), time.Now)

	body, _ := json.Marshal(message("thr_a", "r1", "m1"))
	send(t, c, url, "1", string(body))
	batch := receive(t, c, url, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := h.Handle(ctx, events.SQSEvent{Records: batch})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 1 || len(ag.kinds("")) != 0 {
		t.Fatalf("batch item failures %+v, agent calls %v: want the message handed back untouched", resp.BatchItemFailures, ag.kinds(""))
	}
	again := receive(t, c, url, 1)
	if again[0].MessageId != batch[0].MessageId || again[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("received %s (receive count %s), want %s a second time", again[0].MessageId, again[0].Attributes["ApproximateReceiveCount"], batch[0].MessageId)
	}
}

// On the SQS emulator: a message that fails for another reason than its agent (here: its table is
// missing) comes back after FailureDelay (2 s), not after the queue's 10-minute visibility timeout.
func TestWorkerFailureDelayFreesTheThreadSoon(t *testing.T) {
	t.Parallel()
	c, url := sqsQueue(t)
	db, table := emulatortest.Table(t, "worker")
	st := store.New(db, table+"-missing", time.Now) // every write fails: a non-agent error
	sched, _ := outbound.ParseSchedule("0s")
	cfg := Config{Retry: sched, Lease: time.Minute, MessageTime: time.Second, FailureDelay: 2 * time.Second}
	h := New(cfg, st, st, registry{&scripted{respond: echoing}, 0}, queue.NewPostponer(c, url), slog.New(slog.DiscardHandler), time.Now)

	body, _ := json.Marshal(message("thr_a", "r1", "m1"))
	send(t, c, url, "1", string(body))
	batch := receive(t, c, url, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := h.Handle(ctx, events.SQSEvent{Records: batch})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != batch[0].MessageId {
		t.Fatalf("batch item failures %+v, want %s", resp.BatchItemFailures, batch[0].MessageId)
	}
	again := receive(t, c, url, 1)
	if again[0].MessageId != batch[0].MessageId || again[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("received %s (receive count %s), want %s a second time", again[0].MessageId, again[0].Attributes["ApproximateReceiveCount"], batch[0].MessageId)
	}
}

// On the SQS emulator: a batch handed back whole (the stack's seed could not be written) is every
// message a batch item failure, each back after FailureDelay (2 s), not the queue's visibility
// timeout.
func TestGiveBackReturnsTheBatchAfterTheFailureDelay(t *testing.T) {
	t.Parallel()
	c, url := sqsQueue(t)
	sched, _ := outbound.ParseSchedule("0s")
	cfg := Config{Retry: sched, Lease: time.Minute, FailureDelay: 2 * time.Second}
	h := New(cfg, nil, nil, nil, queue.NewPostponer(c, url), slog.New(slog.DiscardHandler), time.Now)
	for i, thread := range []string{"thr_a", "thr_b"} { // two threads: two FIFO groups
		body, _ := json.Marshal(message(thread, fmt.Sprintf("r%d", i), "m"))
		if _, err := c.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String(string(body)),
			MessageGroupId: aws.String(thread), MessageDeduplicationId: aws.String(thread)}); err != nil {
			t.Fatal(err)
		}
	}
	batch := receive(t, c, url, 2)
	resp := h.GiveBack(context.Background(), events.SQSEvent{Records: batch}, errors.New("seed: table unreachable"))
	if len(resp.BatchItemFailures) != 2 {
		t.Fatalf("batch item failures %+v", resp.BatchItemFailures)
	}
	again := receive(t, c, url, 2)
	for _, m := range again {
		if m.Attributes["ApproximateReceiveCount"] != "2" {
			t.Fatalf("received %s with receive count %s", m.MessageId, m.Attributes["ApproximateReceiveCount"])
		}
	}
}
