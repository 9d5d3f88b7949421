package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/local/stack"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/fanoutdlq"
	"github.com/hookgate/hookgate/shared/store"
)

// fanoutDLQStack starts a stack of its own whose stream event source gives a failing batch up
// after two retries (the template's 100 would take minutes), as FanoutMaxRecordAgeSeconds or the
// retries do on AWS.
func fanoutDLQStack(t *testing.T) *env {
	t.Helper()
	root, _ := filepath.Abs("../..")
	o := stack.Options{
		Root: root, BinDir: binDir(t), Addr: "127.0.0.1:0",
		DynamoEndpoint: emulatortest.Dynamo(t), SQSEndpoint: emulatortest.SQS(t), KMSEndpoint: emulatortest.KMS(t),
		Params: map[string]string{
			"InboundSecret": inboundSecret, "AdapterSecret": adapterSecret, "AdminApiKey": adminKey,
			"AllowHttpUrls": "true", "AllowPrivateDestinations": "true", "DeliverySchedule": "0s,1s,1s",
			"FailureDelaySeconds": "1", "Adapters": `[{"name":"default","readAllRuns":true}]`,
		},
		Prefix:            fmt.Sprintf("fdlq%d-", time.Now().UnixNano()%1e9),
		VisibilityTimeout: time.Second, PollWait: time.Second, Concurrency: 2, StreamRetries: 2,
	}
	keepLogs(t, &o, "fdlq")
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

// dlqPointers takes every message of FanoutDLQ, parses it, and makes them all visible again.
func dlqPointers(t *testing.T, e *env) []fanoutdlq.Pointer {
	t.Helper()
	ctx, url := context.Background(), e.stack.Queues["FanoutDLQ"].URL
	var ps []fanoutdlq.Pointer
	var handles []*string
	for {
		out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10, VisibilityTimeout: 30})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			body := aws.ToString(m.Body)
			p, err := fanoutdlq.Parse([]byte(body))
			if err != nil || strings.Contains(body, `"Records"`) || strings.Contains(body, "NewImage") {
				t.Fatalf("FanoutDLQ holds %q (%v), not a pointer as Lambda writes", body, err)
			}
			ps, handles = append(ps, p), append(handles, m.ReceiptHandle)
		}
	}
	for _, h := range handles {
		if _, err := e.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: h, VisibilityTimeout: 0}); err != nil {
			t.Fatal(err)
		}
	}
	return ps
}

// fanoutOutage makes the fan-out fail: the delivery queue is deleted, three messages each give a
// run and its events, and the stream gives every batch up to FanoutDLQ, which holds only pointers,
// as on AWS. It returns the receiver subscribed to every event, the subscription, the events and
// the pointers, and the function that brings the delivery queue back.
func fanoutOutage(t *testing.T, e *env) (r *receiver, sub string, evs []store.Event, ps []fanoutdlq.Pointer, fix func()) {
	t.Helper()
	ctx := context.Background()
	r = newReceiver(t, func(string, int) int { return http.StatusNoContent })
	sub = subscribe(t, e, r, `["*"]`)

	// The cause: the delivery queue is deleted (its attributes kept to create it again).
	dq := e.stack.Queues["DeliveryQueue"]
	attrs, err := e.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &dq.URL, AttributeNames: []sqstypes.QueueAttributeName{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sqs.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: &dq.URL}); err != nil {
		t.Fatal(err)
	}
	fix = func() {
		create := map[string]string{}
		for k, v := range attrs.Attributes {
			switch k {
			case "VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds", "RedrivePolicy", "MaximumMessageSize", "SqsManagedSseEnabled":
				create[k] = v
			}
		}
		if _, err := e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: &dq.Name, Attributes: create}); err != nil {
			t.Fatal(err)
		}
	}

	const messages = 3
	for i := range messages {
		resp := postInbound(t, e, nil, fmt.Sprintf(`{"channel":"fdlq","external_id":"u-%d","text":"m %d"}`, i, i))
		if resp.status != 202 {
			t.Fatalf("post %d: %d %s", i, resp.status, resp.raw)
		}
		waitRun(t, e, resp.body["thread_id"].(string), resp.body["run_id"].(string))
	}
	evs, err = e.store.ListEvents(ctx, "default", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) < 4*messages {
		t.Fatalf("%d events in the log, want at least %d", len(evs), 4*messages)
	}
	// Every event's batch is given up to FanoutDLQ, named by its sequence number range.
	waitFor(t, fmt.Sprintf("FanoutDLQ to name all %d events", len(evs)), 2*time.Minute, func() bool {
		ps = dlqPointers(t, e)
		n := 0
		for _, p := range ps {
			n += p.Batch.BatchSize
		}
		return n == len(evs)
	})
	for _, p := range ps {
		if p.Batch.StreamArn != e.stack.Streams["Table"] || p.Batch.ShardID == "" || p.RequestContext.Condition != "RetryAttemptsExhausted" {
			t.Fatalf("pointer %+v", p)
		}
	}
	r.mu.Lock()
	early := len(r.byID)
	r.mu.Unlock()
	if early != 0 {
		t.Fatalf("%d events delivered while the fan-out could not queue", early)
	}
	return r, sub, evs, ps, fix
}

// replayAll calls the replay route until FanoutDLQ is empty; nothing may fail. It returns the
// sums of replayed, rebuilt and records.
func replayAll(t *testing.T, e *env, body string) (replayed, rebuilt, records int) {
	t.Helper()
	waitFor(t, "the replay to empty FanoutDLQ", 2*time.Minute, func() bool {
		resp := do(t, http.MethodPost, e.stack.URL+"/v1/admin/fanout-dlq/replay", adminHeaders(), body)
		if resp.status != 200 {
			t.Fatalf("replay: %d %s", resp.status, resp.raw)
		}
		for _, k := range []string{"failed", "expired", "unreadable"} {
			if resp.body[k].(float64) != 0 {
				t.Fatalf("replay: %s", resp.raw)
			}
		}
		replayed += int(resp.body["replayed"].(float64))
		rebuilt += int(resp.body["rebuilt"].(float64))
		records += int(resp.body["records"].(float64))
		return resp.body["remaining"].(float64) == 0
	})
	if n := approxMessages(t, e, "FanoutDLQ"); n != 0 {
		t.Fatalf("%d messages left in FanoutDLQ", n)
	}
	return replayed, rebuilt, records
}

// deliveredOnce waits until the receiver has every event, and checks that each came once and the
// subscription lists one delivery per event.
func deliveredOnce(t *testing.T, e *env, r *receiver, sub string, evs []store.Event) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d events at the receiver", len(evs)), 2*time.Minute, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.byID) >= len(evs)
	})
	list := do(t, http.MethodGet, e.stack.URL+"/v1/webhooks/"+sub+"/deliveries?limit=100", adminHeaders(), "")
	data, _ := list.body["data"].([]any)
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, n := range r.byID {
		if n != 1 {
			t.Errorf("event %s (%s) delivered %d times", id, r.types[id], n)
		}
	}
	if len(r.byID) != len(evs) || len(data) != len(evs) {
		t.Fatalf("%d events received, %d deliveries listed, want %d", len(r.byID), len(data), len(evs))
	}
}

// The fan-out cannot queue deliveries (the delivery queue is gone) until the stream gives its
// batches up to FanoutDLQ, which then holds only pointers, as on AWS. Once the queue is back, the
// admin's replay reads the named records back from the stream and fans them out: every event of
// those batches reaches the subscriber exactly once, and FanoutDLQ is empty.
func TestFanoutDLQReplayDeliversEveryEventOnce(t *testing.T) {
	t.Parallel() // doc.go says which tests may: a stack of its own
	e := fanoutDLQStack(t)
	r, sub, evs, ps, fix := fanoutOutage(t, e)

	// A workspace key may not replay; nothing is taken from the queue.
	key := do(t, http.MethodPost, e.stack.URL+"/v1/api-keys", adminHeaders(), `{"name":"ops"}`)
	if key.status != 201 {
		t.Fatalf("create key: %d %s", key.status, key.raw)
	}
	refused := do(t, http.MethodPost, e.stack.URL+"/v1/admin/fanout-dlq/replay", map[string]string{"x-api-key": key.body["key"].(string)}, "")
	if refused.status != 403 || len(dlqPointers(t, e)) != len(ps) {
		t.Fatalf("workspace key: %d %s", refused.status, refused.raw)
	}

	fix()
	replayed, rebuilt, records := replayAll(t, e, `{"max_messages":5}`)
	t.Logf("%d events named by %d FanoutDLQ messages; the replay read %d stream records back", len(evs), len(ps), records)
	if replayed != len(ps) || rebuilt != 0 || records < len(evs) {
		t.Fatalf("replayed %d messages (%d rebuilt, %d records), want %d (none rebuilt, at least %d records)", replayed, rebuilt, records, len(ps), len(evs))
	}
	deliveredOnce(t, e, r, sub, evs)
}

// Past the stream's 24 h the records a pointer names are gone (here: its shard no longer exists).
// A replay that names no workspace leaves such messages; one that names the workspace rebuilds
// the batches from its event log over their arrival windows: every event once, FanoutDLQ empty.
func TestFanoutDLQReplayRebuildsFromTheEventLog(t *testing.T) {
	t.Parallel() // doc.go says which tests may: a stack of its own
	e := fanoutDLQStack(t)
	r, sub, evs, ps, fix := fanoutOutage(t, e)
	fix()

	// The records age out of the stream: every pointer now names a shard that is gone.
	ctx, url := context.Background(), e.stack.Queues["FanoutDLQ"].URL
	for {
		out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10, VisibilityTimeout: 30})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			p, err := fanoutdlq.Parse([]byte(aws.ToString(m.Body)))
			if err != nil {
				t.Fatal(err)
			}
			p.Batch.ShardID = "shardId-00000000000000000000-00000000"
			body, _ := json.Marshal(p)
			if _, err := e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String(string(body)), DelaySeconds: 2}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, "the aged pointers", time.Minute, func() bool { return len(dlqPointers(t, e)) == len(ps) })

	left := do(t, http.MethodPost, e.stack.URL+"/v1/admin/fanout-dlq/replay", adminHeaders(), `{"max_messages":50}`)
	if left.status != 200 || left.body["expired"].(float64) != float64(len(ps)) || left.body["replayed"].(float64) != 0 {
		t.Fatalf("replay without workspaces: %d %s", left.status, left.raw)
	}
	r.mu.Lock()
	early := len(r.byID)
	r.mu.Unlock()
	if early != 0 {
		t.Fatalf("%d events delivered by a replay that found nothing", early)
	}
	// That call took every message in the queue, so it handed back the ones it left: they are
	// visible at once, not after its visibility timeout (60 s).
	if n := len(dlqPointers(t, e)); n != len(ps) {
		t.Fatalf("%d of the %d messages left are visible right after the replay", n, len(ps))
	}
	replayed, rebuilt, records := replayAll(t, e, `{"max_messages":50,"workspaces":["default"]}`)
	if replayed != len(ps) || rebuilt != len(ps) || records < len(evs) {
		t.Fatalf("replayed %d messages (%d rebuilt, %d records), want %d all rebuilt (at least %d records)", replayed, rebuilt, records, len(ps), len(evs))
	}
	deliveredOnce(t, e, r, sub, evs)
}
