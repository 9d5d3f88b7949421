package fanout

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/manage"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// With CreateOnClaim, a parallel subscription's delivery whose message stays within
// queue.MaxNewDeliveryBody is not written: its message carries it, with the payload the item
// would have held, byte for byte. Everything else is written first and queued as before: an
// ordered subscription's delivery, a callback, a Telegram reply, a payload too large for the
// message, and one that is not UTF-8 (a message could not carry it byte for byte).
func TestCreateOnClaimCarriesOnlySmallParallelDeliveries(t *testing.T) {
	subs := []store.Subscription{{ID: "sub_par", Events: []string{"*"}}, {ID: "sub_fifo", Events: []string{"*"}, FIFO: true}}
	runs := map[string]store.Run{"run_cb": {ID: "run_cb", ThreadID: "thr", Status: store.RunCompleted, Adapter: "ops", ReplyURL: "https://hooks.example.com/cb"}}
	large := `{"pad":"` + strings.Repeat("x", queue.MaxNewDeliveryBody) + `"}`
	batch := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		eventRecord("1", "evt_small", "run.completed", `{"run_id":"run_cb","callback":true,"text":"a\uffff<b>&"}`),
		eventRecord("2", "evt_large", "run.created", large),
		eventRecord("3", "evt_tg", "message.sent", `{"channel":"telegram","external_id":"-1","text":"hi","telegram_source":"bot"}`),
		eventRecord("4", "evt_bad", "run.created", "{\"text\":\"\xff\"}"),
	}}
	// The same batch without it: what the fan-out writes.
	plain := &fakeStore{created: map[string]store.Delivery{}, subs: subs, runs: runs}
	if resp, _ := New(plain, &fakeQueue{}, manage.MatchEvent, slog.New(slog.DiscardHandler)).Handle(context.Background(), batch); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", resp.BatchItemFailures)
	}
	st := &fakeStore{created: map[string]store.Delivery{}, subs: subs, runs: runs}
	q := &fakeQueue{}
	h := New(st, q, manage.MatchEvent, slog.New(slog.DiscardHandler)).CreateOnClaim()
	if resp, _ := h.Handle(context.Background(), batch); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", resp.BatchItemFailures)
	}
	// The parallel subscription's deliveries of the small events are carried; nothing else is.
	carried := map[string]bool{store.DeliveryID("ws", "evt_small", "sub_par"): true, store.DeliveryID("ws", "evt_tg", "sub_par"): true}
	for id, d := range plain.created {
		if _, written := st.created[id]; written == carried[id] {
			t.Errorf("%s to %s%s: written %v", d.EventID, d.SubscriptionID, d.Target, written)
		}
	}
	if len(st.created) != len(plain.created)-len(carried) || len(q.sent) != len(plain.created)-len(q.ordered["sub_fifo"]) || len(q.ordered["sub_fifo"]) != 4 {
		t.Fatalf("written %d of %d, sent %d, ordered %v", len(st.created), len(plain.created), len(q.sent), q.ordered)
	}
	for _, m := range q.sent {
		if !carried[m.DeliveryID] {
			if m.New != nil {
				t.Errorf("%s carries its delivery", m.DeliveryID)
			}
			continue
		}
		want := plain.created[m.DeliveryID]
		if m.New == nil || m.New.SubscriptionID != "sub_par" || m.New.EventID != want.EventID || m.New.EventType != want.EventType ||
			m.New.Payload != string(want.Payload) || m.WorkspaceID != "ws" {
			t.Fatalf("carried %+v %+v, the item would hold %+v", m, m.New, want)
		}
		body, err := m.Body()
		var back queue.Delivery
		if err != nil || json.Unmarshal(body, &back) != nil || back.New.Payload != string(want.Payload) || len(body) > queue.MaxNewDeliveryBody {
			t.Fatalf("body %s: %v", body, err)
		}
	}
	// The stream's retry of the batch writes nothing new and queues the carrying message again:
	// the copy that comes second loses the claim.
	before := len(q.sent)
	h.Handle(context.Background(), batch)
	again := 0
	for _, m := range q.sent[before:] {
		if carried[m.DeliveryID] && m.New != nil {
			again++
		}
	}
	if again != len(carried) || len(st.created) != len(plain.created)-len(carried) {
		t.Fatalf("the retry queued the carried deliveries %d times, wrote %d", again, len(st.created))
	}
}
