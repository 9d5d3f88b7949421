package queue

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"
)

// batchSQS records the batches the sender asks SQS to send, refusing bodies as SQS does.
type batchSQS struct {
	fakeSQS
	batches []*sqs.SendMessageBatchInput
}

func (f *batchSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	for _, e := range in.Entries {
		if sqsRefuses(*e.MessageBody) {
			return nil, &smithy.GenericAPIError{Code: "InvalidMessageContents", Message: "Invalid characters found"}
		}
	}
	f.batches = append(f.batches, in)
	return &sqs.SendMessageBatchOutput{}, nil
}

// A message that carries its delivery is version 2, and its payload comes back byte for byte from
// a body SQS accepts, whatever characters the event holds (SQS refuses U+FFFE and U+FFFF: they are
// escaped, and decode to the same string). A message that points at an item stays version 1.
func TestAMessageCarryingItsDeliveryKeepsEveryByte(t *testing.T) {
	for _, payload := range []string{
		`{"id":"evt_1","type":"run.completed","created_at":"2026-11-25T10:00:00Z","workspace_id":"ws","data":{"text":"plain"}}`,
		"{\"id\":\"evt_1\",\"data\":{\"text\":\"a\uffff b \ufffe\",\"html\":\"<b>&amp;</b>\",\"u\":\"\\u2028\\u0001 \u00e9 \U0001F600\",\"q\":\"\\\"\\\\\"}}",
	} {
		m := Delivery{WorkspaceID: "ws", DeliveryID: "dlv_1", Trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			New: &NewDelivery{SubscriptionID: "sub_1", EventID: "evt_1", EventType: "run.completed", Payload: payload}}
		api := &batchSQS{}
		if err := NewDeliverySender(api, "q").SendDeliveries(context.Background(), []Delivery{m, {WorkspaceID: "ws", DeliveryID: "dlv_2"}}); err != nil {
			t.Fatalf("%q: %v", payload, err)
		}
		var got, pointer Delivery
		if err := json.Unmarshal([]byte(*api.batches[0].Entries[0].MessageBody), &got); err != nil {
			t.Fatal(err)
		}
		if got.Version != DeliveryNewVersion || got.New == nil || got.New.Payload != payload || got.New.SubscriptionID != "sub_1" || got.Trace != m.Trace {
			t.Fatalf("carried %q, came back %+v %+v", payload, got, got.New)
		}
		if err := json.Unmarshal([]byte(*api.batches[0].Entries[1].MessageBody), &pointer); err != nil || pointer.Version != DeliveryVersion || pointer.New != nil {
			t.Fatalf("a pointing message: %+v %v", pointer, err)
		}
		if strings.Contains(*api.batches[0].Entries[0].MessageBody, `\u003c`) {
			t.Fatalf("HTML escaping grows the body: %s", *api.batches[0].Entries[0].MessageBody)
		}
	}
}

// A delivery function that knows only version 1 (every one before messages carried deliveries)
// reads a carrying message as an unknown version: it fails it (SQS redelivers it, then keeps it in
// the DLQ), never takes it for a message whose delivery no longer exists. This is its check, as it
// was written.
func TestACarryingMessageIsAnUnknownVersionToAnOlderDeliveryFunction(t *testing.T) {
	body, err := Delivery{WorkspaceID: "ws", DeliveryID: "dlv_1", New: &NewDelivery{SubscriptionID: "sub_1", EventID: "evt_1", EventType: "t", Payload: "{}"}}.Body()
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Version    int    `json:"v"`
		DeliveryID string `json:"delivery_id"`
	}
	err = json.Unmarshal(body, &m)
	const olderVersion = 1 // queue.DeliveryVersion before this one
	if refused := err != nil || m.Version != olderVersion || m.DeliveryID == ""; !refused {
		t.Fatalf("an older delivery function would take %s for a pointing message", body)
	}
	if DeliveryVersion != olderVersion {
		t.Fatalf("DeliveryVersion changed to %d: every message the delivery function and the sweep send would be refused by an older one", DeliveryVersion)
	}
}

// Ten carrying messages of the largest body a batch holds stay within one 64 KiB chunk: SQS bills
// them one request, as ten pointing messages.
func TestTenCarryingMessagesAreOneSQSRequest(t *testing.T) {
	if 10*MaxNewDeliveryBody > 64<<10 {
		t.Fatalf("ten bodies of %d bytes are more than one 64 KiB chunk", MaxNewDeliveryBody)
	}
}

// An ordered delivery's message is received again after every wait: it must point at an item.
func TestAnOrderedMessageCannotCarryItsDelivery(t *testing.T) {
	api := &fakeSQS{}
	s := NewDeliverySender(api, "q").WithOrdered("q.fifo")
	err := s.SendOrdered(context.Background(), Delivery{WorkspaceID: "ws", DeliveryID: "dlv_1", New: &NewDelivery{SubscriptionID: "sub_1", Payload: "{}"}}, "sub_1")
	if err == nil || len(api.sent) != 0 {
		t.Fatalf("sent %d, err %v", len(api.sent), err)
	}
}
