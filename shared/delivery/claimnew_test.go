package delivery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/hookgate/hookgate/local/cost"
	"github.com/hookgate/hookgate/local/emf"
	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/delivery"
	"github.com/hookgate/hookgate/shared/fanout"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

func TestMain(m *testing.M) { os.Exit(emulatortest.Run(m)) }

// These tests run the new delivery's way from the stream to the endpoint on the emulators: the
// fan-out as FanoutFunction wires it (CreateOnClaim) sends to a queue on fauxqs, the messages it
// received are handed to the delivery handler, and both write to DynamoDB Local through the cost
// meter's proxy, which bills every write as AWS does. Only the endpoint is a fake (it answers 200).

// path is one such way, in a workspace of its own table.
type path struct {
	t      *testing.T
	meter  *cost.Meter
	st     *store.Store
	sqs    *sqs.Client
	url    string
	fan    *fanout.Handler
	h      *delivery.Handler
	q      *recordingQueue
	sub    store.Subscription
	seq    int
	buf    *syncBuffer // the EMF lines of both handlers
	mu     sync.Mutex
	posts  []outbound.Request
	status int // what the endpoint answers
}

// syncBuffer is a bytes.Buffer the handlers' emitters may write at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// recordingQueue is the real sender, recording what the delivery function sends.
type recordingQueue struct {
	*queue.DeliverySender
	mu   sync.Mutex
	sent []queue.Delivery
}

func (r *recordingQueue) SendDelivery(ctx context.Context, m queue.Delivery, delay time.Duration) error {
	r.mu.Lock()
	r.sent = append(r.sent, m)
	r.mu.Unlock()
	return r.DeliverySender.SendDelivery(ctx, m, delay)
}

func newPath(t *testing.T, sub store.Subscription) *path {
	t.Helper()
	ctx := context.Background()
	endpoint := emulatortest.Dynamo(t)
	_, table := emulatortest.Table(t, "claim")
	meter, err := cost.New(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(meter.Close)
	proxy, err := meter.DynamoProxy()
	if err != nil {
		t.Fatal(err)
	}
	sqsEndpoint := emulatortest.SQS(t)
	cfg, err := awscfg.Load(ctx, func(k string) string {
		return map[string]string{awscfg.EnvDynamoEndpoint: proxy, awscfg.EnvSQSEndpoint: sqsEndpoint}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	p := &path{t: t, meter: meter, st: store.New(cfg.DynamoDB(), table, time.Now), sqs: cfg.SQS(), buf: &syncBuffer{}, status: 200}
	out, err := p.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(fmt.Sprintf("claim-%d", time.Now().UnixNano()%1e12)),
		Attributes: map[string]string{"VisibilityTimeout": "600"},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.url = aws.ToString(out.QueueUrl)
	sender := queue.NewDeliverySender(p.sqs, p.url)
	every := func([]string, string) bool { return true }
	p.fan = fanout.New(p.st, sender, every, slog.New(slog.DiscardHandler)).CreateOnClaim().
		WithMetrics(metrics.New(p.buf, "", time.Now), time.Now)
	schedule, _ := outbound.ParseSchedule("0s,1s")
	post := func(_ context.Context, r outbound.Request) outbound.Result {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.posts = append(p.posts, r)
		return outbound.Result{StatusCode: p.status, Latency: time.Millisecond}
	}
	p.q = &recordingQueue{DeliverySender: sender}
	p.h = delivery.New(delivery.Config{Schedule: schedule, Lease: time.Minute, MaxRequeues: 4}, p.st, p.q, post, slog.New(slog.DiscardHandler), time.Now).
		WithMetrics(metrics.New(p.buf, "", time.Now))
	if sub.ID != "" {
		sub.WorkspaceID, sub.URL, sub.Events = "ws", "https://hooks.example.com/h?token=t", []string{"*"}
		sub.Secrets = []store.SigningSecret{{Value: outbound.NewSecret()}}
		if p.sub, err = p.st.CreateSubscription(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// record is the stream record of event id of workspace ws appended now, as the table's stream
// hands it to the fan-out.
func (p *path) record(ws, id, data string) events.DynamoDBEventRecord {
	p.seq++
	s := events.NewStringAttribute
	return events.DynamoDBEventRecord{EventName: "INSERT", Change: events.DynamoDBStreamRecord{
		SequenceNumber: fmt.Sprint(p.seq),
		NewImage: map[string]events.DynamoDBAttributeValue{
			"pk": s("WS#" + ws + "#EV"), "sk": s(fmt.Sprintf("%019d", p.seq)), "kind": s(store.KindEvent),
			"event_id": s(id), "type": s("run.completed"), "created_at": s(time.Now().UTC().Format(time.RFC3339Nano)), "data": s(data),
		},
	}}
}

// envelope is the body the fan-out signs for record rec (of p.record): the event's envelope.
func (p *path) envelope(rec events.DynamoDBEventRecord) string {
	p.t.Helper()
	img := rec.Change.NewImage
	ws := strings.TrimSuffix(strings.TrimPrefix(img["pk"].String(), "WS#"), "#EV")
	b, err := json.Marshal(fanout.Envelope{ID: img["event_id"].String(), Type: img["type"].String(), CreatedAt: img["created_at"].String(), WorkspaceID: ws, Data: json.RawMessage(img["data"].String())})
	if err != nil {
		p.t.Fatal(err)
	}
	return string(b)
}

// fanOut hands the fan-out records as one stream batch; none may fail.
func (p *path) fanOut(recs ...events.DynamoDBEventRecord) {
	p.t.Helper()
	resp, err := p.fan.Handle(context.Background(), events.DynamoDBEvent{Records: recs})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		p.t.Fatalf("fan-out: %v %+v", err, resp.BatchItemFailures)
	}
}

// receive takes every visible message of the queue, as the event source would hand them over
// (not deleted: each test's queue is its own).
func (p *path) receive() []events.SQSMessage {
	p.t.Helper()
	var got []events.SQSMessage
	for {
		out, err := p.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &p.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
		if err != nil {
			p.t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return got
		}
		for _, m := range out.Messages {
			got = append(got, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body), Attributes: m.Attributes})
		}
	}
}

// deliver hands the delivery handler one batch and returns the messages it failed.
func (p *path) deliver(msgs ...events.SQSMessage) []events.SQSBatchItemFailure {
	p.t.Helper()
	resp, err := p.h.Handle(context.Background(), events.SQSEvent{Records: msgs})
	if err != nil {
		p.t.Fatal(err)
	}
	return resp.BatchItemFailures
}

func (p *path) requests() []outbound.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]outbound.Request(nil), p.posts...)
}

// deliveryUnits are the write units billed on deliveries' items (their index copies included).
func deliveryUnits(u *cost.Usage) (float64, string) {
	var units float64
	var lines []string
	for _, l := range u.Lines() {
		if l.Kind == "WS#DLV/DLV" && l.WriteUnits > 0 {
			units += l.WriteUnits
			lines = append(lines, fmt.Sprintf("%s %s %g", l.Op, l.Index, l.WriteUnits))
		}
	}
	return units, strings.Join(lines, "; ")
}

// A delivery that succeeds at once writes 3 units: the put of its item, already claimed, with its
// gsi1 copy, then its record. (It was 4: the fan-out's put and its copy, the claim, the record.)
// Until the claim it is neither listed nor found; then the endpoint gets one request, to the
// subscription's URL, with the event's envelope; the delivery is listed, succeeded; FanoutLag and
// Deliveries count it as before.
func TestADeliveryThatSucceedsAtOnceWritesThreeUnits(t *testing.T) {
	t.Parallel()
	p := newPath(t, store.Subscription{ID: "sub_once"})
	p.meter.Reset()
	p.fanOut(p.record("ws", "evt_once", `{"run_id":"run_1","text":"hello"}`))
	msgs := p.receive()
	if len(msgs) != 1 {
		t.Fatalf("%d messages queued", len(msgs))
	}
	// Until its claim the delivery is its message: not listed, not found.
	id := store.DeliveryID("ws", "evt_once", "sub_once")
	if list, _, err := p.st.ListDeliveries(context.Background(), "ws", "sub_once", store.DeliveryFilter{Limit: 10}); err != nil || len(list) != 0 {
		t.Fatalf("listed before its claim: %+v %v", list, err)
	}
	if _, err := p.st.GetDelivery(context.Background(), "ws", id); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("found before its claim: %v", err)
	}
	if failed := p.deliver(msgs...); len(failed) != 0 {
		t.Fatalf("failed %+v", failed)
	}
	units, lines := deliveryUnits(p.meter.Reset())
	if units != 3 {
		t.Fatalf("the delivery wrote %g units (%s), want 3", units, lines)
	}
	reqs := p.requests()
	d, err := p.st.GetDelivery(context.Background(), "ws", id)
	if err != nil || len(reqs) != 1 || reqs[0].URL != p.sub.URL || !bytes.Equal(reqs[0].Body, d.Payload) || reqs[0].MsgID != "evt_once" {
		t.Fatalf("requests %+v, delivery %+v %v", reqs, d, err)
	}
	var env fanout.Envelope
	if err := json.Unmarshal(d.Payload, &env); err != nil || env.ID != "evt_once" || env.WorkspaceID != "ws" || string(env.Data) != `{"run_id":"run_1","text":"hello"}` {
		t.Fatalf("payload %s", d.Payload)
	}
	list, _, err := p.st.ListDeliveries(context.Background(), "ws", "sub_once", store.DeliveryFilter{Limit: 10})
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].Status != store.DeliverySucceeded || list[0].TotalAttempts != 1 {
		t.Fatalf("listed %+v %v", list, err)
	}
	ds, err := emf.ParseAll(p.buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, m := range ds {
		seen[m.Name+" "+m.Dimensions["Outcome"]] += len(m.Values)
	}
	if seen[metrics.FanoutLag+" "] != 1 || seen[metrics.Deliveries+" "+delivery.OutcomeDelivered] != 1 {
		t.Fatalf("metrics %v", seen)
	}
}

// Copies of a carrying message never send twice: the stream retried the batch (the fan-out sent
// the message again), SQS handed a copy out beside the first in one batch, and another after
// the success. Each copy that comes second finds the item and loses the claim; exactly one request
// goes out, and nothing is sent again.
func TestCopiesOfACarryingMessageSendOnce(t *testing.T) {
	t.Parallel()
	p := newPath(t, store.Subscription{ID: "sub_dup"})
	rec := p.record("ws", "evt_dup", `{"n":1}`)
	p.fanOut(rec)
	p.fanOut(rec) // the stream's retry of the batch
	msgs := p.receive()
	if len(msgs) != 2 {
		t.Fatalf("%d messages queued", len(msgs))
	}
	if failed := p.deliver(msgs[0], msgs[1], msgs[0]); len(failed) != 0 {
		t.Fatalf("failed %+v", failed)
	}
	if failed := p.deliver(msgs[1]); len(failed) != 0 {
		t.Fatalf("failed %+v", failed)
	}
	id := store.DeliveryID("ws", "evt_dup", "sub_dup")
	d, err := p.st.GetDelivery(context.Background(), "ws", id)
	if n := len(p.requests()); n != 1 || err != nil || d.Status != store.DeliverySucceeded || d.TotalAttempts != 1 || len(p.q.sent) != 0 {
		t.Fatalf("%d requests, %d messages sent; %+v %v", n, len(p.q.sent), d, err)
	}
}

// Deploys: an item an older fan-out wrote (it then sent a message pointing at it) and a carrying
// message of the new fan-out for the same delivery (the stream retried the batch across the
// deploy). Whichever comes first sends; the other claims nothing.
func TestAnOlderFanOutsItemAndANewMessageSendOnce(t *testing.T) {
	t.Parallel()
	for _, newFirst := range []bool{true, false} {
		p := newPath(t, store.Subscription{ID: "sub_deploy"})
		rec := p.record("ws", "evt_deploy", `{"n":1}`)
		older := fanout.New(p.st, queue.NewDeliverySender(p.sqs, p.url), func([]string, string) bool { return true }, slog.New(slog.DiscardHandler))
		if resp, err := older.Handle(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{rec}}); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatal(err, resp)
		}
		pointing := p.receive()
		p.fanOut(rec)
		carrying := p.receive()
		if len(pointing) != 1 || len(carrying) != 1 || !strings.Contains(carrying[0].Body, `"v":2`) || strings.Contains(pointing[0].Body, `"new"`) {
			t.Fatalf("messages %+v / %+v", pointing, carrying)
		}
		first, second := pointing[0], carrying[0]
		if newFirst {
			first, second = second, first
		}
		p.deliver(first)
		p.deliver(second)
		d, err := p.st.GetDelivery(context.Background(), "ws", store.DeliveryID("ws", "evt_deploy", "sub_deploy"))
		if n := len(p.requests()); n != 1 || err != nil || d.Status != store.DeliverySucceeded || d.TotalAttempts != 1 {
			t.Fatalf("new message first %v: %d requests; %+v %v", newFirst, n, d, err)
		}
	}
}

// A subscription deleted, or disabled, between the fan-out and the first attempt: the delivery is
// recorded as failed, as when the fan-out wrote it (its item exists after, listed), and dropped
// is counted; nothing is sent.
func TestACarriedDeliveryDroppedBeforeItsFirstAttemptIsRecorded(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"deleted", "disabled"} {
		p := newPath(t, store.Subscription{ID: "sub_gone"})
		p.fanOut(p.record("ws", "evt_gone", `{}`))
		if how == "deleted" {
			if err := p.st.DeleteSubscription(context.Background(), "ws", "sub_gone"); err != nil {
				t.Fatal(err)
			}
		} else if _, err := p.st.DisableSubscription(context.Background(), "ws", "sub_gone", "test"); err != nil {
			t.Fatal(err)
		}
		if failed := p.deliver(p.receive()...); len(failed) != 0 {
			t.Fatalf("%s: failed %+v", how, failed)
		}
		list, _, err := p.st.ListDeliveries(context.Background(), "ws", "sub_gone", store.DeliveryFilter{Status: store.DeliveryFailed, Limit: 10})
		if err != nil || len(list) != 1 || list[0].LastError != "subscription "+how || len(p.requests()) != 0 {
			t.Fatalf("%s: %d requests, failed deliveries %+v %v", how, len(p.requests()), list, err)
		}
		ds, _ := emf.ParseAll(p.buf.Bytes())
		dropped := 0
		for _, m := range ds {
			if m.Name == metrics.Deliveries && m.Dimensions["Outcome"] == delivery.OutcomeDropped {
				dropped += len(m.Values)
			}
		}
		if dropped != 1 {
			t.Fatalf("%s: %d dropped counted", how, dropped)
		}
	}
}

// An attempt its subscription's limits defer after the claim created the item: the claim is given
// back, the delivery stays listed as pending at attempt 0, and the message queued for later points
// at the item (version 1, no payload), as any deferral's.
func TestADeferredFirstAttemptPointsAtTheItemItCreated(t *testing.T) {
	t.Parallel()
	p := newPath(t, store.Subscription{ID: "sub_paced", RateLimit: &store.RateLimit{PerSecond: 0.01, Burst: 1}})
	p.fanOut(p.record("ws", "evt_p1", `{}`), p.record("ws", "evt_p2", `{}`))
	msgs := p.receive()
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	for _, m := range msgs { // one at a time: the first takes the bucket's one token
		if failed := p.deliver(m); len(failed) != 0 {
			t.Fatalf("failed %+v", failed)
		}
	}
	if n := len(p.requests()); n != 1 || len(p.q.sent) != 1 {
		t.Fatalf("%d requests, %d messages sent", n, len(p.q.sent))
	}
	m := p.q.sent[0]
	body, err := m.Body()
	if err != nil || m.New != nil || !m.Paced || strings.Contains(string(body), `"payload"`) || !strings.Contains(string(body), `"v":1`) {
		t.Fatalf("the deferral's message %s %v", body, err)
	}
	d, err := p.st.GetDelivery(context.Background(), "ws", m.DeliveryID)
	if err != nil || d.Status != store.DeliveryPending || d.Attempts != 0 || !d.LeaseUntil.IsZero() || len(d.Payload) == 0 {
		t.Fatalf("the deferred delivery %+v %v", d, err)
	}
	list, _, err := p.st.ListDeliveries(context.Background(), "ws", "sub_paced", store.DeliveryFilter{Limit: 10})
	if err != nil || len(list) != 2 {
		t.Fatalf("listed %d %v", len(list), err)
	}
}

// carrying is a message of the fan-out's form for a delivery of event ev in workspace ws to sub,
// its id derived as the fan-out derives it; edit changes it before it is encoded.
func carrying(t *testing.T, ws, ev, sub string, edit func(m *queue.Delivery, env map[string]any)) events.SQSMessage {
	t.Helper()
	env := map[string]any{"id": ev, "type": "run.completed", "created_at": "2026-11-25T10:00:00Z", "workspace_id": ws, "data": map[string]any{"text": "hi"}}
	m := queue.Delivery{WorkspaceID: ws, DeliveryID: store.DeliveryID(ws, ev, sub), New: &queue.NewDelivery{SubscriptionID: sub, EventID: ev, EventType: "run.completed"}}
	if edit != nil {
		edit(&m, env)
	}
	if m.New.Payload == "" {
		b, _ := json.Marshal(env)
		m.New.Payload = string(b)
	}
	body, err := m.Body()
	if err != nil {
		t.Fatal(err)
	}
	return events.SQSMessage{MessageId: "m-" + ev, Body: string(body)}
}

// Whoever can send to the delivery queue cannot choose where a delivery goes, nor make one the
// fan-out would not: a carrying message whose id is not derived from its workspace, event and
// subscription (another subscription's delivery, another workspace's), whose payload is another
// event's or another workspace's, that names a target (a callback's id), or that is not a first
// attempt is refused (an error: SQS redelivers it, then keeps it in the DLQ), and nothing is
// stored or sent. A consistent message naming another workspace's subscription finds no such
// subscription in its own workspace: nothing is sent, and the victim's workspace holds nothing.
// A destination in the message is never read: the request goes to the subscription's URL.
func TestAttackForgedCarryingMessagesAreRefusedNotSent(t *testing.T) {
	t.Parallel()
	p := newPath(t, store.Subscription{ID: "sub_victim"})
	ctx := context.Background()
	victim := store.DeliveryID("ws", "evt_real", "sub_victim")
	refused := map[string]events.SQSMessage{
		"id of another subscription's delivery": carrying(t, "ws", "evt_real", "sub_victim", func(m *queue.Delivery, _ map[string]any) {
			m.DeliveryID = store.DeliveryID("ws", "evt_real", "sub_other")
		}),
		"id derived in another workspace": carrying(t, "ws", "evt_real", "sub_victim", func(m *queue.Delivery, _ map[string]any) {
			m.DeliveryID = store.DeliveryID("mallory", "evt_real", "sub_victim")
		}),
		"payload of another event": carrying(t, "ws", "evt_real", "sub_victim", func(_ *queue.Delivery, env map[string]any) { env["id"] = "evt_other" }),
		"payload of another workspace": carrying(t, "ws", "evt_real", "sub_victim", func(_ *queue.Delivery, env map[string]any) {
			env["workspace_id"] = "mallory"
		}),
		"payload not JSON": carrying(t, "ws", "evt_real", "sub_victim", func(m *queue.Delivery, _ map[string]any) { m.New.Payload = "not json" }),
		"a callback's id":  carrying(t, "ws", "evt_real", store.TargetCallback, nil),
		"a later attempt":  carrying(t, "ws", "evt_real", "sub_victim", func(m *queue.Delivery, _ map[string]any) { m.Attempt = 1 }),
		"a wait":           carrying(t, "ws", "evt_real", "sub_victim", func(m *queue.Delivery, _ map[string]any) { m.NotBefore = time.Now().Add(time.Hour) }),
		"no subscription":  carrying(t, "ws", "evt_real", "", nil),
	}
	// A pointing version (1) that carries a delivery all the same is no message the stack sends.
	v1 := carrying(t, "ws", "evt_real", "sub_victim", nil)
	v1.MessageId, v1.Body = "m-v1", strings.Replace(v1.Body, `"v":2`, `"v":1`, 1)
	refused["version 1 carrying a delivery"] = v1
	for what, msg := range refused {
		if failed := p.deliver(msg); len(failed) != 1 {
			t.Errorf("%s: not refused", what)
		}
	}
	for _, id := range []string{victim, store.DeliveryID("ws", "evt_real", "sub_other"), store.DeliveryID("ws", "evt_real", store.TargetCallback), store.DeliveryID("ws", "evt_real", "")} {
		if _, err := p.st.GetDelivery(ctx, "ws", id); apierr.CodeOf(err) != apierr.NotFound {
			t.Errorf("a refused message stored delivery %s: %v", id, err)
		}
	}
	if reqs := p.requests(); len(reqs) != 0 {
		t.Fatalf("refused messages sent %d requests: %+v", len(reqs), reqs)
	}

	// Consistent, in the sender's own workspace, naming the victim's subscription.
	cross := carrying(t, "mallory", "evt_m", "sub_victim", nil)
	if failed := p.deliver(cross); len(failed) != 0 {
		t.Fatalf("failed %+v", failed)
	}
	if reqs := p.requests(); len(reqs) != 0 {
		t.Fatalf("another workspace's subscription was sent to: %+v", reqs)
	}
	if list, _, err := p.st.ListDeliveries(ctx, "ws", "sub_victim", store.DeliveryFilter{Limit: 10}); err != nil || len(list) != 0 {
		t.Fatalf("the victim's workspace lists %+v %v", list, err)
	}
	if d, err := p.st.GetDelivery(ctx, "mallory", store.DeliveryID("mallory", "evt_m", "sub_victim")); err != nil || d.Status != store.DeliveryFailed || d.LastError != "subscription deleted" {
		t.Fatalf("the sender's own delivery %+v %v", d, err)
	}

	// A destination written into the message is not read.
	withURL := carrying(t, "ws", "evt_url", "sub_victim", nil)
	withURL.Body = strings.Replace(withURL.Body, `"new":{`, `"new":{"destination":"https://evil.example/steal","url":"https://evil.example/steal",`, 1)
	if failed := p.deliver(withURL); len(failed) != 0 {
		t.Fatalf("failed %+v", failed)
	}
	if reqs := p.requests(); len(reqs) != 1 || reqs[0].URL != p.sub.URL {
		t.Fatalf("requests %+v", reqs)
	}
}
