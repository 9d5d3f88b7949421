package delivery

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// Duplicate messages of a delivery, on the real store (DynamoDB Local): in the batch that
// succeeds and after it, standard and FIFO, none sends a second request or records anything. The
// attempt that ended the delivery is recorded on its item by one update; the claim is what keeps a
// duplicate from sending.
func TestDuplicateMessagesOfASucceededDeliverySendNothing(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "delivery")
	st := store.New(db, table, time.Now)
	ctx := context.Background()
	d := store.Delivery{
		ID: "dlv_1", WorkspaceID: "ws", Target: store.TargetCallback, Destination: "https://hooks.example.com/cb", Adapter: "ops",
		EventID: "evt_1", EventType: "run.completed", Payload: json.RawMessage(`{"id":"evt_1"}`),
	}
	if _, _, err := st.CreateDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	signer, err := outbound.NewSharedSigner("adapter-secret-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	schedule, _ := outbound.ParseSchedule("0s,1s")
	cfg := Config{Schedule: schedule, Lease: time.Minute, MaxRequeues: 4, Callbacks: map[string]*outbound.Signer{CallbackKey("ws", "ops"): signer}}
	var posts atomic.Int32
	post := func(context.Context, outbound.Request) outbound.Result {
		posts.Add(1)
		time.Sleep(50 * time.Millisecond) // the duplicate of the batch arrives while the request runs
		return outbound.Result{StatusCode: 200, Latency: 50 * time.Millisecond, ResponseSnippet: "ok"}
	}
	q := &fakeQueue{}
	h := New(cfg, st, q, post, slog.New(slog.DiscardHandler), time.Now)
	body, _ := json.Marshal(queue.Delivery{Version: queue.DeliveryVersion, WorkspaceID: "ws", DeliveryID: "dlv_1"})
	msg := func(id string, fifo bool) events.SQSMessage {
		m := events.SQSMessage{MessageId: id, Body: string(body)}
		if fifo {
			m.Attributes = map[string]string{"MessageGroupId": "sub"}
		}
		return m
	}
	handle := func(ms ...events.SQSMessage) {
		t.Helper()
		resp, err := h.Handle(ctx, events.SQSEvent{Records: ms})
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("handle: %v %+v", err, resp.BatchItemFailures)
		}
	}
	handle(msg("m1", false), msg("m2", false)) // SQS handed the same message out twice at once
	ended, err := st.GetDelivery(ctx, "ws", "dlv_1")
	if err != nil || ended.Status != store.DeliverySucceeded || ended.TotalAttempts != 1 || posts.Load() != 1 {
		t.Fatalf("after the first batch: %d requests, %+v %v", posts.Load(), ended, err)
	}
	handle(msg("m3", false))
	handle(msg("m4", true))
	after, err := st.GetDelivery(ctx, "ws", "dlv_1")
	if err != nil || posts.Load() != 1 || len(q.sent) != 0 || !after.UpdatedAt.Equal(ended.UpdatedAt) || after.TotalAttempts != 1 {
		t.Fatalf("duplicates after the success: %d requests, %d messages sent, %+v %v", posts.Load(), len(q.sent), after, err)
	}
	_, atts, err := st.DeliveryAttempts(ctx, "ws", "dlv_1")
	if err != nil || len(atts) != 1 || atts[0].StatusCode != 200 || atts[0].ResponseSnippet != "ok" || atts[0].LatencyMS != 50 {
		t.Fatalf("attempts: %+v %v", atts, err)
	}
}
