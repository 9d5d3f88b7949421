package delivery_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// Outside attacks on "a small delivery is created by its first attempt" (CreateOnClaim), on the
// emulators (DynamoDB Local, fauxqs) through the same path rig as claimnew_test.go.

func (p *path) setStatus(code int) {
	p.mu.Lock()
	p.status = code
	p.mu.Unlock()
}

// asMessage is m as the delivery queue would hand it over.
func asMessage(t *testing.T, id string, m queue.Delivery) events.SQSMessage {
	t.Helper()
	body, err := m.Body()
	if err != nil {
		t.Fatal(err)
	}
	return events.SQSMessage{MessageId: id, Body: string(body)}
}

// carried keeps the messages that carry their delivery (version 2).
func carried(msgs []events.SQSMessage) []events.SQSMessage {
	var out []events.SQSMessage
	for _, m := range msgs {
		if strings.Contains(m.Body, `"v":2`) {
			out = append(out, m)
		}
	}
	return out
}

// A carried delivery whose first attempt fails: the retry the delivery function queues points at
// the item its claim created (version 1, no payload); the stream's retry of the batch queues the
// carrying message again, and that copy (and an SQS copy of the first) neither sends nor queues a
// carrying message; the retry sends the same bytes as the first attempt, and every copy afterwards
// sends nothing.
func TestAttackCarriedDeliveryRetriesPointAtItsItem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPath(t, store.Subscription{ID: "sub_r"})
	id := store.DeliveryID("ws", "evt_r", "sub_r")
	p.setStatus(500)
	rec := p.record("ws", "evt_r", `{"text":"retry me"}`)
	p.fanOut(rec)
	first := carried(p.receive())
	if len(first) != 1 {
		t.Fatalf("%d carrying messages", len(first))
	}
	if failed := p.deliver(first...); len(failed) != 0 {
		t.Fatalf("failed %+v", failed)
	}
	reqs := p.requests()
	d, err := p.st.GetDelivery(ctx, "ws", id)
	if err != nil || len(reqs) != 1 || d.Status != store.DeliveryPending || d.Attempts != 1 || !bytes.Equal(reqs[0].Body, d.Payload) {
		t.Fatalf("after the failed attempt: %d requests, delivery %+v %v", len(reqs), d, err)
	}
	check := func(when string) {
		t.Helper()
		p.q.mu.Lock()
		defer p.q.mu.Unlock()
		for _, m := range p.q.sent {
			body, err := m.Body()
			if err != nil || m.New != nil || m.DeliveryID != id || m.Attempt != 1 || !strings.Contains(string(body), `"v":1`) || strings.Contains(string(body), `"payload"`) {
				t.Fatalf("%s: the delivery function queued %s (%v); want pointers at attempt 1 only", when, body, err)
			}
		}
		if len(p.q.sent) == 0 {
			t.Fatalf("%s: no retry queued", when)
		}
	}
	check("after the failed attempt")

	// The stream retries the batch: the fan-out queues the carrying message again.
	p.fanOut(rec)
	again := carried(p.receive())
	if len(again) != 1 {
		t.Fatalf("the stream's retry queued %d carrying messages", len(again))
	}
	if failed := p.deliver(again[0], first[0]); len(failed) != 0 {
		t.Fatalf("failed %+v", failed)
	}
	if n := len(p.requests()); n != 1 {
		t.Fatalf("copies of the carrying message after the first attempt sent %d requests; want still 1", n)
	}
	check("after the copies")

	// The retry comes (its time has come), and succeeds.
	p.setStatus(200)
	retry := asMessage(t, "m-retry", queue.Delivery{WorkspaceID: "ws", DeliveryID: id, Attempt: 1})
	if failed := p.deliver(retry); len(failed) != 0 {
		t.Fatalf("failed %+v", failed)
	}
	reqs = p.requests()
	if len(reqs) != 2 || !bytes.Equal(reqs[0].Body, reqs[1].Body) || reqs[1].URL != p.sub.URL {
		t.Fatalf("requests %+v; want the retry to send the first attempt's bytes to the subscription", reqs)
	}
	// Every copy afterwards: nothing more.
	var copies []events.SQSMessage
	p.q.mu.Lock()
	for i, m := range p.q.sent {
		copies = append(copies, asMessage(t, "m-sent-"+string(rune('a'+i)), m))
	}
	p.q.mu.Unlock()
	copies = append(copies, retry, first[0], again[0])
	if failed := p.deliver(copies...); len(failed) != 0 {
		t.Fatalf("failed %+v", failed)
	}
	d, err = p.st.GetDelivery(ctx, "ws", id)
	if n := len(p.requests()); n != 2 || err != nil || d.Status != store.DeliverySucceeded || d.TotalAttempts != 2 {
		t.Fatalf("after every copy: %d requests, delivery %+v %v", n, d, err)
	}
}

// A carried delivery that failed (its subscription was disabled before the first claim) is
// retried by hand once the subscription is active again: the manual retry's message and late
// copies of the carrying message (SQS's, and the stream's retry of the batch) in one batch send
// exactly one request; copies after that send nothing.
func TestAttackLateCarryingCopiesAfterAManualRetrySendOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPath(t, store.Subscription{ID: "sub_m"})
	id := store.DeliveryID("ws", "evt_m", "sub_m")
	rec := p.record("ws", "evt_m", `{"text":"manual"}`)
	p.fanOut(rec)
	first := carried(p.receive())
	if len(first) != 1 {
		t.Fatalf("%d carrying messages", len(first))
	}
	if _, err := p.st.DisableSubscription(ctx, "ws", "sub_m", "test"); err != nil {
		t.Fatal(err)
	}
	if failed := p.deliver(first...); len(failed) != 0 {
		t.Fatalf("failed %+v", failed)
	}
	if d, err := p.st.GetDelivery(ctx, "ws", id); err != nil || d.Status != store.DeliveryFailed || len(p.requests()) != 0 {
		t.Fatalf("delivery %+v %v, %d requests; want failed, nothing sent", d, err, len(p.requests()))
	}
	active := store.SubscriptionActive
	if _, err := p.st.UpdateSubscription(ctx, "ws", "sub_m", store.SubscriptionPatch{Status: &active}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.st.RetryDeliveryOnce(ctx, "ws", id); err != nil {
		t.Fatal(err)
	}
	manual := asMessage(t, "m-manual", queue.Delivery{WorkspaceID: "ws", DeliveryID: id})
	p.fanOut(rec) // the stream's retry of the batch
	late := carried(p.receive())
	if len(late) != 1 {
		t.Fatalf("the stream's retry queued %d carrying messages", len(late))
	}
	if failed := p.deliver(late[0], first[0], manual); len(failed) != 0 {
		t.Fatalf("failed %+v", failed)
	}
	if failed := p.deliver(manual, first[0], late[0]); len(failed) != 0 {
		t.Fatalf("failed %+v", failed)
	}
	d, err := p.st.GetDelivery(ctx, "ws", id)
	if n := len(p.requests()); n != 1 || err != nil || d.Status != store.DeliverySucceeded || d.Series != 1 || d.TotalAttempts != 2 {
		t.Fatalf("%d requests, delivery %+v %v; want one request, succeeded in series 1", n, d, err)
	}
}

// Characters a carrying message has to escape for SQS (U+FFFE, U+FFFF, NUL, U+2028) and escapes
// of lone surrogates written in the event's JSON: the endpoint gets the event's envelope byte for
// byte, as the fan-out encodes it, through fauxqs.
func TestAttackCarriedDeliveryKeepsOddCharactersByteForByte(t *testing.T) {
	t.Parallel()
	p := newPath(t, store.Subscription{ID: "sub_b"})
	data := "{\"a\":\"\\ud800 \\udfff \\u0000\",\"b\":\"\uFFFE\uFFFF\u2028\u2029<&>\",\"c\":\"\u00e9\"}"
	rec := p.record("ws", "evt_b", data)
	want := []byte(p.envelope(rec))
	p.fanOut(rec)
	msgs := p.receive()
	if len(msgs) != 1 || len(carried(msgs)) != 1 {
		t.Fatalf("messages %+v; want one carrying message", msgs)
	}
	if failed := p.deliver(msgs...); len(failed) != 0 {
		t.Fatalf("failed %+v", failed)
	}
	reqs := p.requests()
	if len(reqs) != 1 || !bytes.Equal(reqs[0].Body, want) {
		var got []byte
		if len(reqs) > 0 {
			got = reqs[0].Body
		}
		t.Fatalf("requests %d; body\n%q\nwant\n%q", len(reqs), got, want)
	}
}

// The bound: a delivery whose carrying message is exactly MaxNewDeliveryBody is carried (not in the
// table before its claim); one byte more is written by the fan-out first (found before any claim,
// its message a pointer). Both reach the endpoint byte for byte, once.
func TestAttackCarryingBoundIsExact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, extra := range []int{0, 1} {
		p := newPath(t, store.Subscription{ID: "sub_x"})
		// The length of the carrying message of record rec.
		bodyLen := func(rec events.DynamoDBEventRecord) int {
			b, err := queue.Delivery{WorkspaceID: "ws", DeliveryID: store.DeliveryID("ws", "evt_x", "sub_x"), New: &queue.NewDelivery{
				SubscriptionID: "sub_x", EventID: "evt_x", EventType: "run.completed", Payload: p.envelope(rec)}}.Body()
			if err != nil {
				t.Fatal(err)
			}
			return len(b)
		}
		rec := p.record("ws", "evt_x", `{"pad":""}`)
		pad := queue.MaxNewDeliveryBody - bodyLen(rec) + extra
		data := `{"pad":"` + strings.Repeat("x", pad) + `"}`
		rec.Change.NewImage["data"] = events.NewStringAttribute(data)
		if n := bodyLen(rec); n != queue.MaxNewDeliveryBody+extra {
			t.Fatalf("built a message of %d bytes", n)
		}
		p.fanOut(rec)
		msgs := p.receive()
		_, err := p.st.GetDelivery(ctx, "ws", store.DeliveryID("ws", "evt_x", "sub_x"))
		switch {
		case len(msgs) != 1:
			t.Fatalf("+%d: %d messages", extra, len(msgs))
		case extra == 0 && (len(carried(msgs)) != 1 || len(msgs[0].Body) > queue.MaxNewDeliveryBody || apierr.CodeOf(err) != apierr.NotFound):
			t.Fatalf("at the bound: body of %d bytes, carried %v, item %v; want carried", len(msgs[0].Body), len(carried(msgs)) == 1, err)
		case extra == 1 && (len(carried(msgs)) != 0 || err != nil):
			t.Fatalf("over the bound: carried %v, item %v; want the fan-out's item and a pointer", len(carried(msgs)) == 1, err)
		}
		if failed := p.deliver(msgs...); len(failed) != 0 {
			t.Fatalf("failed %+v", failed)
		}
		d, err := p.st.GetDelivery(ctx, "ws", store.DeliveryID("ws", "evt_x", "sub_x"))
		reqs := p.requests()
		if err != nil || len(reqs) != 1 || !bytes.Equal(reqs[0].Body, d.Payload) || !strings.Contains(string(d.Payload), strings.Repeat("x", pad)) || d.Status != store.DeliverySucceeded {
			t.Fatalf("+%d: %d requests, delivery %v %v", extra, len(reqs), d.Status, err)
		}
	}
}

// An agent's reply with an emoji (any character above U+FFFF, which SQS allows) is recorded as
// message.sent and run.completed by the worker, straight into the log: no queue saw the text
// before. A carried delivery of such an event puts the text in the delivery queue's message. On
// local mode's SQS (fauxqs, which refuses every character above U+FFFF) the fan-out's send is
// refused: the stream retries the batch until the record ages out to FanoutDLQ, and no subscriber
// gets the event (before the change the message only pointed at the item, and it was delivered).
// The fan-out must not fail, and the subscriber must get the event's envelope byte for byte.
func TestAttackEmojiInACarriedDeliveryIsDelivered(t *testing.T) {
	t.Parallel()
	p := newPath(t, store.Subscription{ID: "sub_e"})
	data := "{\"run_id\":\"run_1\",\"text\":\"Done \U0001F600 \U0001F44D\"}"
	rec := p.record("ws", "evt_e", data)
	want := []byte(p.envelope(rec))
	resp, err := p.fan.Handle(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{rec}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("the fan-out failed the event (the stream retries it until FanoutDLQ): %v %+v", err, resp.BatchItemFailures)
	}
	if failed := p.deliver(p.receive()...); len(failed) != 0 {
		t.Fatalf("failed %+v", failed)
	}
	if reqs := p.requests(); len(reqs) != 1 || !bytes.Equal(reqs[0].Body, want) {
		t.Fatalf("%d requests; want one with the envelope %s", len(reqs), want)
	}
}
