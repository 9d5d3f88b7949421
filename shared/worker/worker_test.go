package worker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hookgate/hookgate/shared/agent"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// memStore is a small fake for the batch logic; the real store path runs in the store and
// local-stack integration tests on DynamoDB Local.
type memStore struct {
	mu       sync.Mutex
	runs     map[string]store.Run
	events   []store.Event
	bindings []store.BindingStatus
	failOn   string // CreateRun fails for this run id
}

func (m *memStore) PutBindingStatus(_ context.Context, b store.BindingStatus) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bindings = append(m.bindings, b)
	return true, nil
}

func (m *memStore) CreateRun(_ context.Context, th store.Thread, msg store.Message, r store.Run) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.ID == m.failOn {
		return false, errors.New("table unavailable")
	}
	if _, ok := m.runs[r.ID]; ok {
		return false, nil
	}
	m.runs[r.ID] = store.Run{ID: r.ID, WorkspaceID: th.WorkspaceID, ThreadID: th.ID, MessageID: msg.ID, Status: store.RunQueued}
	return true, nil
}

func (m *memStore) StartRun(_ context.Context, _, id string) (store.Run, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.runs[id]
	if r.Terminal() {
		return r, false, nil
	}
	r.Status, r.Attempts = store.RunRunning, r.Attempts+1
	m.runs[id] = r
	return r, true, nil
}

func (m *memStore) FinishRun(_ context.Context, _, id, status string, res *store.Result, e string) (store.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.runs[id]
	r.Status, r.Result, r.Error = status, res, e
	m.runs[id] = r
	return r, nil
}

func (m *memStore) GetRun(_ context.Context, _, id string) (store.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runs[id], nil
}

func (m *memStore) AppendEvents(_ context.Context, evs []store.Event) ([]store.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]store.Event, 0, len(evs))
next:
	for _, e := range evs {
		for _, x := range m.events {
			if x.ID == e.ID {
				out = append(out, x)
				continue next
			}
		}
		e.Cursor = int64(len(m.events) + 1)
		m.events = append(m.events, e)
		out = append(out, e)
	}
	return out, nil
}

func record(id, group, run string) events.SQSMessage {
	body, _ := json.Marshal(queue.Inbound{
		Version: queue.InboundVersion, WorkspaceID: "ws", ThreadID: group, MessageID: "msg-" + run, RunID: run,
		Channel: "c", ExternalID: group, Text: "text of " + run, ReceivedAt: time.Now(),
	})
	return events.SQSMessage{MessageId: id, Body: string(body), Attributes: map[string]string{"MessageGroupId": group}}
}

func handle(t *testing.T, st *memStore, ev events.SQSEvent) []string {
	t.Helper()
	h := New(st, st, agent.Echo{}, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	raw, _ := json.Marshal(ev)
	out, err := lambda.NewHandler(h.Handle).Invoke(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	return ids
}

// A failure fails the rest of its thread in the batch (FIFO order holds on redelivery); other
// threads are unaffected.
func TestFailureHoldsBackTheRestOfItsThreadOnly(t *testing.T) {
	st := &memStore{runs: map[string]store.Run{}, failOn: "r2"}
	failed := handle(t, st, events.SQSEvent{Records: []events.SQSMessage{
		record("1", "A", "r1"), record("2", "A", "r2"), record("3", "A", "r3"),
		record("4", "B", "r4"), record("5", "B", "r5"),
		{MessageId: "6", Body: "not json", Attributes: map[string]string{"MessageGroupId": "C"}},
	}})
	if want := []string{"2", "3", "6"}; !slices.Equal(failed, want) {
		t.Fatalf("batch item failures %v, want %v", failed, want)
	}
	for _, id := range []string{"r1", "r4", "r5"} {
		if r := st.runs[id]; r.Status != store.RunCompleted || r.Result == nil || r.Result.Text != "text of "+id {
			t.Fatalf("run %s = %+v", id, r)
		}
	}
	if _, ok := st.runs["r3"]; ok {
		t.Fatal("r3 ran although the message before it in its thread failed")
	}
}

func TestRedeliveryAddsNothing(t *testing.T) {
	st := &memStore{runs: map[string]store.Run{}}
	batch := events.SQSEvent{Records: []events.SQSMessage{record("1", "A", "r1")}}
	if failed := handle(t, st, batch); len(failed) != 0 {
		t.Fatal(failed)
	}
	n := len(st.events)
	if failed := handle(t, st, batch); len(failed) != 0 {
		t.Fatal(failed)
	}
	if len(st.events) != n || n != 3 || st.runs["r1"].Attempts != 1 {
		t.Fatalf("events %d → %d, attempts %d", n, len(st.events), st.runs["r1"].Attempts)
	}
	types := []string{st.events[0].Type, st.events[1].Type, st.events[2].Type}
	if !slices.Equal(types, []string{EventMessageReceived, EventRunCreated, EventRunCompleted}) {
		t.Fatalf("event types %v", types)
	}
}

func inboundRecord(id string, m queue.Inbound) events.SQSMessage {
	m.Version, m.WorkspaceID = queue.InboundVersion, "ws"
	body, _ := json.Marshal(m)
	return events.SQSMessage{MessageId: id, Body: string(body), Attributes: map[string]string{"MessageGroupId": m.GroupID()}}
}

// An event without a run is recorded once, even when redelivered; an event with a run comes
// first in the log, before the message and run it starts; a binding report is stored and logged.
func TestEventsRunsAndBindings(t *testing.T) {
	st := &memStore{runs: map[string]store.Run{}}
	only := queue.Inbound{MessageID: "m1", Group: "g", Event: &queue.Event{Subject: "dk1", Type: "webhook.stripe.charge_succeeded", Data: `{"payload":{"id":"evt_1"}}`}}
	routed := queue.Inbound{MessageID: "m2", ThreadID: "t2", RunID: "r2", Channel: "webhook.stripe", ExternalID: "dk2", Text: "webhook.stripe.charge_succeeded",
		Event: &queue.Event{Subject: "dk2", Type: "webhook.stripe.charge_succeeded", Data: `{}`}}
	bind := queue.Inbound{MessageID: "m3", Group: "b", Binding: &queue.Binding{Channel: "slack", BindingID: "b1", Status: "connected", ReportedAt: time.Now()}}
	if failed := handle(t, st, events.SQSEvent{Records: []events.SQSMessage{
		inboundRecord("1", only), inboundRecord("2", only), inboundRecord("3", routed), inboundRecord("4", bind),
	}}); len(failed) != 0 {
		t.Fatalf("failures %v", failed)
	}
	var types []string
	for _, e := range st.events {
		types = append(types, e.Type)
	}
	slices.Sort(types)
	want := []string{"binding.status", "message.received", "run.completed", "run.created", "webhook.stripe.charge_succeeded", "webhook.stripe.charge_succeeded"}
	if !slices.Equal(types, want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	if r := st.runs["r2"]; r.Status != store.RunCompleted || r.ThreadID != "t2" {
		t.Fatalf("routed run = %+v", r)
	}
	if len(st.bindings) != 1 || st.bindings[0].Status != "connected" {
		t.Fatalf("bindings = %+v", st.bindings)
	}
	bad := queue.Inbound{MessageID: "m5", Group: "g", Event: &queue.Event{Subject: "x", Type: "t", Data: `{`}}
	if failed := handle(t, st, events.SQSEvent{Records: []events.SQSMessage{inboundRecord("5", bad)}}); !slices.Equal(failed, []string{"5"}) {
		t.Fatalf("an event with invalid data was not reported: %v", failed)
	}
}
