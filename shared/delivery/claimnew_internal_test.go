package delivery

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// A message of the FIFO delivery queue never carries its delivery (the fan-out writes an ordered
// delivery's item first, and every receive reads the attempt due from it): one that does is
// refused and holds its group, nothing is claimed nor sent.
func TestAnOrderedMessageCarryingItsDeliveryIsRefused(t *testing.T) {
	r := newRig(t, "0s", 0, func(int) outbound.Result { return outbound.Result{StatusCode: 200} })
	r.st.absent = true
	vis := &fakeVisibility{}
	r.h.WithOrdered(vis)
	payload, _ := json.Marshal(map[string]any{"id": "evt_1", "type": "run.completed", "workspace_id": "ws", "data": map[string]any{}})
	body, err := queue.Delivery{WorkspaceID: "ws", DeliveryID: store.DeliveryID("ws", "evt_1", "sub_1"), New: &queue.NewDelivery{
		SubscriptionID: "sub_1", EventID: "evt_1", EventType: "run.completed", Payload: string(payload),
	}}.Body()
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := r.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m", ReceiptHandle: "rh-m", Body: string(body), Attributes: map[string]string{"MessageGroupId": "sub_1"}},
	}})
	if len(resp.BatchItemFailures) != 1 || r.st.claims != 0 || r.posts != 0 || !r.st.absent || len(vis.holds) != 1 || vis.holds[0] != ErrorHold {
		t.Fatalf("failures %v, claims %d, posts %d, holds %v", resp.BatchItemFailures, r.st.claims, r.posts, vis.holds)
	}
}
