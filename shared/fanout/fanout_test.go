package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/manage"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// fakes for the routing logic; the real path (stream → fan-out → queue) runs end to end in local/e2e.
type fakeStore struct {
	mu      sync.Mutex // the fan-out creates a batch's deliveries concurrently
	subs    []store.Subscription
	created map[string]store.Delivery
	failOn  string
	runs    map[string]store.Run
}

func (f *fakeStore) GetRun(_ context.Context, _, id string) (store.Run, error) {
	if r, ok := f.runs[id]; ok {
		return r, nil
	}
	return store.Run{}, apierr.New(apierr.NotFound, "run not found")
}

func (f *fakeStore) ListActiveSubscriptions(context.Context, string) ([]store.Subscription, error) {
	return f.subs, nil
}

func (f *fakeStore) CreateDelivery(_ context.Context, d store.Delivery) (store.Delivery, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d.EventID == f.failOn {
		return store.Delivery{}, false, errors.New("throttled")
	}
	if old, ok := f.created[d.ID]; ok {
		return old, false, nil
	}
	d.Status = store.DeliveryPending
	f.created[d.ID] = d
	return d, true, nil
}

type fakeQueue struct {
	mu     sync.Mutex
	sent   []queue.Delivery
	failOn string // a delivery id whose request fails
	// ordered are the FIFO subscriptions' deliveries, by subscription, in the order sent.
	ordered map[string][]string
	// beforeOrdered, when set, is called at the start of each ordered send.
	beforeOrdered func(m queue.Delivery, sub string)
}

// SendOrdered records an ordered send in ordered (by subscription), or fails on failOn.
func (q *fakeQueue) SendOrdered(_ context.Context, m queue.Delivery, sub string) error {
	if q.beforeOrdered != nil {
		q.beforeOrdered(m, sub)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if m.DeliveryID == q.failOn {
		return errors.New("sqs unavailable")
	}
	if q.ordered == nil {
		q.ordered = map[string][]string{}
	}
	q.ordered[sub] = append(q.ordered[sub], m.DeliveryID)
	return nil
}

func (q *fakeQueue) SendDeliveries(_ context.Context, ms []queue.Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(ms) > 10 {
		return fmt.Errorf("a request of %d messages: SQS takes at most 10", len(ms))
	}
	for _, m := range ms {
		if m.DeliveryID == q.failOn {
			return errors.New("sqs unavailable")
		}
	}
	q.sent = append(q.sent, ms...)
	return nil
}

func str(v string) events.DynamoDBAttributeValue { return events.NewStringAttribute(v) }

func eventRecord(seq, id, typ, data string) events.DynamoDBEventRecord {
	return events.DynamoDBEventRecord{EventName: "INSERT", Change: events.DynamoDBStreamRecord{
		SequenceNumber: seq,
		NewImage: map[string]events.DynamoDBAttributeValue{
			"pk": str("WS#ws#EV"), "sk": str("0000000000000000001"), "kind": str("event"),
			"event_id": str(id), "type": str(typ), "created_at": str("2026-11-25T10:00:00Z"), "data": str(data),
		},
	}}
}

func TestFanOutMatchesFiltersAndSkipsTheFailingEndpoint(t *testing.T) {
	st := &fakeStore{created: map[string]store.Delivery{}, subs: []store.Subscription{
		{ID: "sub_all", Events: []string{"*"}},
		{ID: "sub_runs", Events: []string{"run.*"}},
		{ID: "sub_msg", Events: []string{"message.received"}},
	}}
	q := &fakeQueue{}
	h := New(st, q, manage.MatchEvent, slog.New(slog.DiscardHandler))
	other := eventRecord("1", "evt_x", "x", "{}")
	other.Change.NewImage["kind"] = str("thread") // not an event item
	batch := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		eventRecord("2", "evt_1", "run.completed", `{"run_id":"r"}`),
		other,
		eventRecord("3", "evt_2", "delivery.exhausted", `{"subscription_id":"sub_all","event_type":"run.completed"}`),
		eventRecord("4", "evt_3", "delivery.exhausted", `{"subscription_id":"sub_runs","event_type":"delivery.exhausted"}`),
	}}
	resp, _ := h.Handle(context.Background(), batch)
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", resp.BatchItemFailures)
	}
	got := map[string]bool{}
	for _, d := range st.created {
		got[d.EventID+"→"+d.SubscriptionID] = true
		var env Envelope
		if err := json.Unmarshal(d.Payload, &env); err != nil || env.ID != d.EventID || env.WorkspaceID != "ws" || env.Type != d.EventType {
			t.Fatalf("payload %s", d.Payload)
		}
	}
	want := map[string]bool{"evt_1→sub_all": true, "evt_1→sub_runs": true}
	if len(got) != len(want) || !got["evt_1→sub_all"] || !got["evt_1→sub_runs"] {
		t.Fatalf("deliveries %v, want %v (exhausted never goes to the failing endpoint, nor is a failed report reported)", got, want)
	}
	if len(q.sent) != 2 {
		t.Fatalf("queued %d", len(q.sent))
	}
	// The same batch again (the stream retried): no new deliveries, pending ones queued again.
	h.Handle(context.Background(), batch)
	if len(st.created) != 2 || len(q.sent) != 4 {
		t.Fatalf("retry created %d, queued %d", len(st.created), len(q.sent))
	}
}

func TestFailureReportsTheFirstFailedRecord(t *testing.T) {
	st := &fakeStore{created: map[string]store.Delivery{}, subs: []store.Subscription{{ID: "s", Events: []string{"*"}}}, failOn: "evt_2"}
	q := &fakeQueue{}
	h := New(st, q, manage.MatchEvent, slog.New(slog.DiscardHandler))
	resp, _ := h.Handle(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		eventRecord("10", "evt_1", "run.created", "{}"), eventRecord("11", "evt_2", "run.created", "{}"), eventRecord("12", "evt_3", "run.created", "{}"),
	}})
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "11" {
		t.Fatalf("failures %v", resp.BatchItemFailures)
	}
	// Deliveries are created concurrently, so a later record's may exist (the retry finds it again),
	// but only the records before the failure are queued.
	if len(q.sent) != 1 || q.sent[0].DeliveryID != ids.Derive("dlv", "ws", "evt_1", "s") {
		t.Fatalf("queued %+v, want only evt_1's delivery", q.sent)
	}
}

// Replies go where the user is: a finished adapter run with a replyUrl becomes a callback delivery
// carrying the run, an agent's reply to the Telegram door's message a delivery to the chat through
// the source that received it; nothing else does (a channel named telegram by another door neither).
func TestRepliesBecomeCallbackAndTelegramDeliveries(t *testing.T) {
	st := &fakeStore{created: map[string]store.Delivery{}, runs: map[string]store.Run{
		"run_cb":   {ID: "run_cb", ThreadID: "thr", Status: store.RunCompleted, Adapter: "ops", ReplyURL: "https://hooks.example.com/cb", Result: &store.Result{Text: "done"}},
		"run_none": {ID: "run_none", ThreadID: "thr", Status: store.RunCompleted, Adapter: "ops"},
	}}
	q := &fakeQueue{}
	h := New(st, q, manage.MatchEvent, slog.New(slog.DiscardHandler))
	batch := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		eventRecord("1", "evt_cb", "run.completed", `{"run_id":"run_cb","callback":true}`),
		eventRecord("2", "evt_none", "run.completed", `{"run_id":"run_none"}`),
		eventRecord("3", "evt_created", "run.created", `{"run_id":"run_cb","callback":true}`),
		eventRecord("4", "evt_tg", "message.sent", `{"channel":"telegram","external_id":"-100123","text":"hello","telegram_source":"bot2"}`),
		eventRecord("6", "evt_forged", "message.sent", `{"channel":"telegram","external_id":"-100999","text":"spam"}`),
		eventRecord("5", "evt_web", "message.sent", `{"channel":"web","external_id":"x","text":"hello"}`),
	}}
	if resp, _ := h.Handle(context.Background(), batch); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", resp.BatchItemFailures)
	}
	if len(st.created) != 2 || len(q.sent) != 2 {
		t.Fatalf("created %d deliveries, queued %d; want the callback and the telegram reply", len(st.created), len(q.sent))
	}
	for _, d := range st.created {
		switch d.Target {
		case store.TargetCallback:
			var env struct {
				ID, Type string
				Data     struct {
					RunID  string `json:"runId"`
					Status string
					Result struct{ Text string }
				}
			}
			if err := json.Unmarshal(d.Payload, &env); err != nil || d.Destination != "https://hooks.example.com/cb" || d.Adapter != "ops" ||
				env.ID != "evt_cb" || env.Type != "run.completed" || env.Data.RunID != "run_cb" || env.Data.Status != "completed" || env.Data.Result.Text != "done" {
				t.Errorf("callback delivery = %+v, payload %s (%v)", d, d.Payload, err)
			}
		case store.TargetTelegram:
			if d.Destination != "-100123" || string(d.Payload) != `{"chat_id":"-100123","source":"bot2","text":"hello"}` || d.EventID != "evt_tg" {
				t.Errorf("telegram delivery = %+v, payload %s", d, d.Payload)
			}
		default:
			t.Errorf("unexpected delivery %+v", d)
		}
	}
}

// A large batch is queued ten to a request; when one request fails, the first record it carried is
// reported and every record before it is queued.
func TestQueueFailureReportsTheFirstRecordOfTheFailedRequest(t *testing.T) {
	st := &fakeStore{created: map[string]store.Delivery{}, subs: []store.Subscription{{ID: "s", Events: []string{"*"}}}}
	q := &fakeQueue{failOn: ids.Derive("dlv", "ws", "evt_15", "s")}
	h := New(st, q, manage.MatchEvent, slog.New(slog.DiscardHandler))
	var batch events.DynamoDBEvent
	for i := range 30 {
		batch.Records = append(batch.Records, eventRecord(strconv.Itoa(100+i), fmt.Sprintf("evt_%d", i), "run.created", "{}"))
	}
	resp, _ := h.Handle(context.Background(), batch)
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "110" {
		t.Fatalf("failures %v, want the record of evt_10 (first of the failed request)", resp.BatchItemFailures)
	}
	queued := map[string]bool{}
	for _, m := range q.sent {
		queued[m.DeliveryID] = true
	}
	for i := range 10 {
		if !queued[ids.Derive("dlv", "ws", fmt.Sprintf("evt_%d", i), "s")] {
			t.Fatalf("evt_%d before the failure was not queued", i)
		}
	}
	if len(st.created) != 30 {
		t.Fatalf("created %d deliveries, want 30", len(st.created))
	}
	// The stream retries from the reported record: everything from there on is queued.
	q.failOn = ""
	retry := events.DynamoDBEvent{Records: batch.Records[10:]}
	if resp, _ := h.Handle(context.Background(), retry); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("retry failures %v", resp.BatchItemFailures)
	}
	for i := range 30 {
		if !slices.ContainsFunc(q.sent, func(m queue.Delivery) bool {
			return m.DeliveryID == ids.Derive("dlv", "ws", fmt.Sprintf("evt_%d", i), "s")
		}) {
			t.Fatalf("evt_%d never queued", i)
		}
	}
}

// A request that fails can start in the middle of a record: that record is reported, though part of
// its deliveries went out in the request before.
func TestQueueFailureMidRecordReportsThatRecord(t *testing.T) {
	st := &fakeStore{created: map[string]store.Delivery{}, subs: []store.Subscription{
		{ID: "a", Events: []string{"*"}}, {ID: "b", Events: []string{"*"}}, {ID: "c", Events: []string{"*"}},
	}}
	// Five records of three deliveries: the first request carries records 0-2 and record 3's first
	// delivery; the second, the rest of record 3 and record 4, and fails.
	q := &fakeQueue{failOn: ids.Derive("dlv", "ws", "evt_4", "b")}
	h := New(st, q, manage.MatchEvent, slog.New(slog.DiscardHandler))
	var batch events.DynamoDBEvent
	for i := range 5 {
		batch.Records = append(batch.Records, eventRecord(strconv.Itoa(200+i), fmt.Sprintf("evt_%d", i), "run.created", "{}"))
	}
	resp, _ := h.Handle(context.Background(), batch)
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "203" {
		t.Fatalf("failures %v, want record 203 (evt_3, whose last deliveries were in the failed request)", resp.BatchItemFailures)
	}
	if len(q.sent) != 10 {
		t.Fatalf("queued %d, want the first request's 10", len(q.sent))
	}
}

// A FIFO subscription's deliveries are sent one by one to its group, in the order of their events;
// the other subscriptions' go in batches as before. An ordered send that fails stops the ordered
// sends after it (none may pass it) and is where the stream retries from.
func TestFIFODeliveriesAreSentInEventOrder(t *testing.T) {
	st := &fakeStore{created: map[string]store.Delivery{}, subs: []store.Subscription{
		{ID: "sub_fifo", Events: []string{"*"}, FIFO: true},
		{ID: "sub_par", Events: []string{"*"}},
	}}
	var recs []events.DynamoDBEventRecord
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("evt_%02d", i)
		recs = append(recs, eventRecord(strconv.Itoa(100+i), id, "run.created", "{}"))
		want = append(want, ids.Derive("dlv", "ws", id, "sub_fifo"))
	}
	q := &fakeQueue{failOn: want[17]}
	h := New(st, q, manage.MatchEvent, slog.New(slog.DiscardHandler))
	resp, _ := h.Handle(context.Background(), events.DynamoDBEvent{Records: recs})
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "117" {
		t.Fatalf("failures %v, want the record of the failed ordered send", resp.BatchItemFailures)
	}
	if got := q.ordered["sub_fifo"]; !slices.Equal(got, want[:17]) {
		t.Fatalf("ordered sends %v, want the first 17 in event order", got)
	}
	for _, m := range q.sent {
		if st.created[m.DeliveryID].SubscriptionID == "sub_fifo" {
			t.Fatalf("a FIFO delivery went to the standard queue: %s", m.DeliveryID)
		}
	}
	if !st.created[want[0]].FIFO {
		t.Fatal("the delivery does not say it is ordered")
	}
	// The stream retries from record 117: the rest follow in order.
	q.failOn = ""
	h.Handle(context.Background(), events.DynamoDBEvent{Records: recs[17:]})
	if got := q.ordered["sub_fifo"]; !slices.Equal(got, want) {
		t.Fatalf("ordered sends after the retry %v, want %v", got, want)
	}
}

// Each FIFO subscription's sends are in order, but one subscription's do not wait behind
// another's: a batch of 100 records for many FIFO subscriptions must not outrun the function's
// timeout. Here sub_a's first send goes through only once sub_b's has started.
func TestFIFOSubscriptionsAreSentSideBySide(t *testing.T) {
	st := &fakeStore{created: map[string]store.Delivery{}, subs: []store.Subscription{
		{ID: "sub_a", Events: []string{"*"}, FIFO: true},
		{ID: "sub_b", Events: []string{"*"}, FIFO: true},
	}}
	var recs []events.DynamoDBEventRecord
	want := map[string][]string{}
	for i := range 3 {
		id := fmt.Sprintf("evt_%d", i)
		recs = append(recs, eventRecord(strconv.Itoa(100+i), id, "run.created", "{}"))
		for _, sub := range []string{"sub_a", "sub_b"} {
			want[sub] = append(want[sub], ids.Derive("dlv", "ws", id, sub))
		}
	}
	bStarted := make(chan struct{})
	var once sync.Once
	waited := true
	q := &fakeQueue{beforeOrdered: func(m queue.Delivery, sub string) {
		switch {
		case sub == "sub_b":
			once.Do(func() { close(bStarted) })
		case m.DeliveryID == want["sub_a"][0]:
			select {
			case <-bStarted:
			case <-time.After(30 * time.Second): // sent one after the other: sub_b's never start
				waited = false
			}
		}
	}}
	h := New(st, q, manage.MatchEvent, slog.New(slog.DiscardHandler))
	resp, _ := h.Handle(context.Background(), events.DynamoDBEvent{Records: recs})
	if !waited || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("sub_b's sends waited behind sub_a's (failures %v)", resp.BatchItemFailures)
	}
	for sub, w := range want {
		if got := q.ordered[sub]; !slices.Equal(got, w) {
			t.Fatalf("%s: sent %v, want %v", sub, got, w)
		}
	}
}
