// Package worker consumes the inbound queue: for each message it stores the thread, message and
// run, records the events, calls the agent and finishes the run. Every step is idempotent, so a
// redelivered message is processed once; a message that keeps failing ends in the DLQ.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/agent"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// Store is the part of the store the worker uses.
type Store interface {
	CreateRun(ctx context.Context, th store.Thread, m store.Message, r store.Run) (bool, error)
	StartRun(ctx context.Context, ws, id string) (store.Run, bool, error)
	FinishRun(ctx context.Context, ws, id, status string, result *store.Result, errMsg string) (store.Run, error)
	GetRun(ctx context.Context, ws, id string) (store.Run, error)
	PutBindingStatus(ctx context.Context, b store.BindingStatus) (bool, error)
}

// EventLog appends to workspace logs: a *store.Store, or a *store.LogWriter that group-commits the
// appends of a batch's parallel threads.
type EventLog interface {
	AppendEvents(ctx context.Context, evs []store.Event) ([]store.Event, error)
}

// Event types the worker records.
const (
	EventMessageReceived = "message.received"
	EventRunCreated      = "run.created"
	EventRunCompleted    = "run.completed"
	EventRunFailed       = "run.failed"
	EventBindingStatus   = "binding.status"
)

// Handler handles batches from the inbound queue.
type Handler struct {
	store  Store
	log    EventLog
	agent  agent.Agent
	logger *slog.Logger
}

// New returns a Handler.
func New(st Store, el EventLog, a agent.Agent, logger *slog.Logger) *Handler {
	return &Handler{store: st, log: el, agent: a, logger: logger}
}

// Handle processes a batch. Messages of one thread (FIFO group) are handled in order, different
// threads in parallel. A failed message is reported as a batch item failure, and so is every later
// message of its thread in the batch, so the thread's order holds when SQS redelivers them.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var order []string
	groups := map[string][]events.SQSMessage{}
	for _, rec := range ev.Records {
		g := rec.Attributes["MessageGroupId"]
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], rec)
	}
	var (
		mu       sync.Mutex
		failures = []events.SQSBatchItemFailure{}
		wg       sync.WaitGroup
	)
	for _, g := range order {
		wg.Add(1)
		go func(recs []events.SQSMessage) {
			defer wg.Done()
			for i, rec := range recs {
				if err := h.process(ctx, rec); err != nil {
					h.logger.ErrorContext(ctx, "inbound message failed", "sqs_message_id", rec.MessageId,
						"receive_count", rec.Attributes["ApproximateReceiveCount"], "err", err)
					mu.Lock()
					for _, r := range recs[i:] {
						failures = append(failures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
					}
					mu.Unlock()
					return
				}
			}
		}(groups[g])
	}
	wg.Wait()
	return events.SQSEventResponse{BatchItemFailures: failures}, nil
}

func (h *Handler) process(ctx context.Context, rec events.SQSMessage) error {
	var m queue.Inbound
	if err := json.Unmarshal([]byte(rec.Body), &m); err != nil {
		return fmt.Errorf("decode inbound: %w", err)
	}
	if m.Version != queue.InboundVersion || m.WorkspaceID == "" || m.MessageID == "" {
		return fmt.Errorf("inbound message has version %d or misses ids: not processable", m.Version)
	}
	var first []event // recorded before the message's own events
	switch {
	case m.Binding != nil:
		return h.binding(ctx, &m)
	case m.Event != nil:
		if m.Event.Subject == "" || m.Event.Type == "" || !json.Valid([]byte(m.Event.Data)) {
			return fmt.Errorf("inbound event %q/%q is not processable", m.Event.Subject, m.Event.Type)
		}
		first = append(first, newEvent(m.Event.Subject, m.Event.Type, verbatim(m.Event.Data)))
		if m.RunID == "" {
			return h.append(ctx, m.WorkspaceID, first...) // an event that starts no run
		}
	}
	if m.ThreadID == "" || m.RunID == "" {
		return errors.New("inbound message misses its thread or run id: not processable")
	}
	th := store.Thread{ID: m.ThreadID, WorkspaceID: m.WorkspaceID, Channel: m.Channel, ExternalID: m.ExternalID}
	msg := store.Message{ID: m.MessageID, Direction: "in", Source: m.Source, Text: m.Text, User: m.User, Data: m.Data, CreatedAt: m.ReceivedAt}
	created, err := h.store.CreateRun(ctx, th, msg, store.Run{ID: m.RunID})
	if err != nil {
		return err
	}
	if !created {
		// Redelivered, or reposted with the same idempotency key: carry on from the stored run.
		h.logger.InfoContext(ctx, "run exists; resuming", "run_id", m.RunID)
	}
	// Both opening events in one append: one round of contention on the log instead of two.
	if err := h.append(ctx, m.WorkspaceID, append(first,
		newEvent(m.MessageID, EventMessageReceived, map[string]any{
			"thread_id": m.ThreadID, "message_id": m.MessageID, "source": m.Source, "channel": m.Channel,
			"external_id": m.ExternalID, "user": m.User, "text": m.Text, "data": m.Data,
		}),
		newEvent(m.RunID, EventRunCreated, map[string]any{
			"run_id": m.RunID, "thread_id": m.ThreadID, "message_id": m.MessageID, "status": store.RunQueued,
		}))...); err != nil {
		return err
	}

	run, started, err := h.store.StartRun(ctx, m.WorkspaceID, m.RunID)
	if err != nil {
		return err
	}
	if started {
		run, err = h.runAgent(ctx, &m, run)
		if err != nil {
			return err
		}
	}
	return h.recordFinished(ctx, run)
}

func (h *Handler) runAgent(ctx context.Context, m *queue.Inbound, run store.Run) (store.Run, error) {
	begin := time.Now()
	a := h.agent
	if m.Agent != "" {
		// A role route named the agent. An unknown name fails the run (recorded), not the message.
		named, err := agent.New(m.Agent)
		if err != nil {
			return h.finish(ctx, m, run, store.RunFailed, nil, err.Error(), begin)
		}
		a = named
	}
	data := m.Data
	if len(data) == 0 && m.Event != nil {
		data = json.RawMessage(m.Event.Data) // a run started by an event takes the event as its input data
	}
	reply, aerr := a.Respond(ctx, agent.Request{
		Kind: agent.KindUserSpeak, RunID: m.RunID, Text: m.Text, Data: data,
		Session: agent.Session{ID: m.ThreadID, WorkspaceID: m.WorkspaceID, Channel: m.Channel,
			ExternalID: m.ExternalID, User: m.User},
	})
	status, result, msg := store.RunCompleted, &store.Result{Text: reply.Text()}, ""
	if aerr != nil {
		status, result, msg = store.RunFailed, nil, "agent failed: "+aerr.Error()
	}
	return h.finish(ctx, m, run, status, result, msg, begin)
}

func (h *Handler) finish(ctx context.Context, m *queue.Inbound, run store.Run, status string, result *store.Result, msg string, begin time.Time) (store.Run, error) {
	finished, err := h.store.FinishRun(ctx, m.WorkspaceID, m.RunID, status, result, msg)
	if err != nil {
		// Another delivery of the same message may have finished it first.
		if cur, gerr := h.store.GetRun(ctx, m.WorkspaceID, m.RunID); gerr == nil && cur.Terminal() {
			return cur, nil
		}
		return run, err
	}
	h.logger.InfoContext(ctx, "run finished", "run_id", m.RunID, "status", status, "agent_ms", time.Since(begin).Milliseconds())
	return finished, nil
}

// recordFinished appends run.completed or run.failed for a finished run (idempotently).
func (h *Handler) recordFinished(ctx context.Context, run store.Run) error {
	switch run.Status {
	case store.RunCompleted:
		return h.append(ctx, run.WorkspaceID, newEvent(run.ID, EventRunCompleted, map[string]any{
			"run_id": run.ID, "thread_id": run.ThreadID, "status": run.Status, "result": run.Result,
		}))
	case store.RunFailed:
		return h.append(ctx, run.WorkspaceID, newEvent(run.ID, EventRunFailed, map[string]any{
			"run_id": run.ID, "thread_id": run.ThreadID, "status": run.Status, "error": run.Error,
		}))
	default:
		return errors.New("run " + run.ID + " is " + run.Status + ", not finished")
	}
}

// event is one event to record: its id is derived from its subject and type, so a retry appends
// nothing new.
type event struct {
	subject, typ string
	data         any // encoded with encoding/json, except verbatim
}

// verbatim is event data kept byte for byte (encoding/json would compact a json.RawMessage).
type verbatim string

func newEvent(subject, typ string, data any) event { return event{subject, typ, data} }

// binding stores a connector's report (unless a newer one is stored) and records binding.status.
func (h *Handler) binding(ctx context.Context, m *queue.Inbound) error {
	b := m.Binding
	if b.Channel == "" || b.BindingID == "" || b.Status == "" {
		return errors.New("binding report misses channel, binding id or status: not processable")
	}
	if _, err := h.store.PutBindingStatus(ctx, store.BindingStatus{
		WorkspaceID: m.WorkspaceID, Channel: b.Channel, BindingID: b.BindingID, Status: b.Status, Detail: b.Detail, ReportedAt: b.ReportedAt,
	}); err != nil {
		return err
	}
	return h.append(ctx, m.WorkspaceID, newEvent(m.MessageID, EventBindingStatus, b))
}

func (h *Handler) append(ctx context.Context, ws string, evs ...event) error {
	out := make([]store.Event, len(evs))
	for i, e := range evs {
		b, err := encode(e.data)
		if err != nil {
			return fmt.Errorf("encode %s event: %w", e.typ, err)
		}
		out[i] = store.Event{ID: ids.Derive("evt", ws, e.subject, e.typ), Type: e.typ, WorkspaceID: ws, Data: b}
	}
	_, err := h.log.AppendEvents(ctx, out)
	return err
}

func encode(data any) ([]byte, error) {
	if v, ok := data.(verbatim); ok {
		return []byte(v), nil
	}
	return json.Marshal(data)
}
