// Package worker is WorkerFunction's handler: per inbound message it stores thread, message and run, calls
// the agent and ends the turn, idempotently, so a redelivered message is processed once.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/agent"
	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/approval"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/trace"
)

// Store is the part of the store the worker uses.
type Store interface {
	CreateRunWith(ctx context.Context, nr store.NewRun) (store.Run, bool, error)
	HoldRun(ctx context.Context, nr store.NewRun) (store.Held, bool, error)
	PutHeld(ctx context.Context, h store.Held) (store.Run, bool, error)
	FinishHeld(ctx context.Context, h store.Held, f store.Finish) (store.Run, error)
	UncountStart(ctx context.Context, ws, id string) error
	GetRun(ctx context.Context, ws, id string) (store.Run, error)
	StartRun(ctx context.Context, ws, id string) (store.Run, bool, error)
	FinishRunWith(ctx context.Context, ws, id string, f store.Finish) (store.Run, error)
	EnsureReply(ctx context.Context, r store.Run) error
	GetThread(ctx context.Context, ws, id string) (store.Thread, error)
	MarkSessionStarted(ctx context.Context, ws, id string) error
	ListMessages(ctx context.Context, ws, thread string, limit int) ([]store.Message, error)
	AddMessage(ctx context.Context, ws, thread string, m store.Message) (bool, error)
	RenewSlot(ctx context.Context, r store.Run, lease time.Duration) error
	ReleaseSlot(ctx context.Context, r store.Run) error
	PutBindingStatus(ctx context.Context, b store.BindingStatus) (bool, error)
	LearnThreadShard(ws, thread string, shard int)
}

// EventLog appends to workspace logs: a *store.Store, or a *store.LogWriter that group-commits the
// appends of a batch's parallel threads.
type EventLog interface {
	AppendEventsAfter(ctx context.Context, lead string, evs []store.Event) ([]store.Event, error)
}

// Agents finds the agent a run calls by name among the run's workspace's own agents ("" is the
// workspace's default), with how many earlier turns it takes (agent.Workspaces). A name the
// workspace has no agent for is a NotFound error; any other error is an outage.
type Agents interface {
	Get(ctx context.Context, ws, name string) (agent.Agent, int, error)
}

// Visibility postpones the next delivery of messages that failed: SQS redelivers each when its
// visibility timeout ends, so the retry waits d.
type Visibility interface {
	Postpone(ctx context.Context, receiptHandles []string, d time.Duration) error
}

// Event types the worker records.
const (
	EventMessageReceived     = "message.received"
	EventMessageSent         = "message.sent"
	EventRunCreated          = "run.created"
	EventRunCompleted        = "run.completed"
	EventRunFailed           = "run.failed"
	EventRunRequiresApproval = "run.requires_approval"
	EventBindingStatus       = "binding.status"
)

// Config is the worker's policy.
type Config struct {
	// Retry is the delay before each agent attempt of a run (outbound.Schedule's form); its length
	// is the number of attempts before the run fails.
	Retry outbound.Schedule
	// Lease is how long the run's in-flight slot is held from when the run starts.
	Lease time.Duration
	// FailureDelay postpones a message that failed for another reason than its agent (a throttled
	// table, a bug): SQS redelivers it then, until the DLQ takes it, instead of holding its thread
	// for the queue's whole visibility timeout. It doubles with each receive, up to
	// maxFailureDelay. 0 leaves it to the visibility timeout.
	FailureDelay time.Duration
	// MessageTime is the longest one message may take (the longest agent timeout and a margin for
	// the table): a message is started only while the invocation has at least this much time left;
	// the rest of its thread is handed back, visible again at once. 0 never hands back.
	MessageTime time.Duration
	// Approvals signs the decision tokens of each run.requires_approval; nil records none.
	Approvals *approval.Keys
	// ApprovalTTL is how long a request's decision tokens hold.
	ApprovalTTL time.Duration
	// Hold is how long a new run's opening events (message.received, run.created) wait for its
	// first turn to end, so that they are appended with its closing events as one group: one
	// reservation of cursors and one id marker instead of two of each. The run's item (and its
	// message) waits too, so that such a turn writes it once, in its final state, instead of
	// creating it and then changing it. A longer turn's run is written, and its opening events
	// appended alone, once Hold has passed. 0, and a run an event starts, write the run and append
	// the events before the agent is called.
	Hold time.Duration
}

// DefaultHold is Config.Hold unless the stack's OpeningHoldMilliseconds says otherwise: readers of
// a slower turn see its opening events this much later.
const DefaultHold = 250 * time.Millisecond

// Handler handles batches from the inbound queue.
type Handler struct {
	cfg        Config
	store      Store
	log        EventLog
	agents     Agents
	visibility Visibility
	metrics    *metrics.Emitter
	logger     *slog.Logger
	now        func() time.Time
}

// New returns a Handler.
func New(cfg Config, st Store, el EventLog, agents Agents, vis Visibility, logger *slog.Logger, now func() time.Time) *Handler {
	return &Handler{cfg: cfg, store: st, log: el, agents: agents, visibility: vis, logger: logger, now: now}
}

// WithMetrics makes the worker count runs by outcome and time agent calls, flushed after each batch.
func (h *Handler) WithMetrics(m *metrics.Emitter) *Handler {
	h.metrics = m
	return h
}

// retryLater is the error of a message whose agent call should be tried again after delay.
type retryLater struct {
	delay time.Duration
	err   error
}

func (r *retryLater) Error() string { return fmt.Sprintf("retry in %s: %v", r.delay, r.err) }
func (r *retryLater) Unwrap() error { return r.err }

// GiveBack hands a whole batch back unprocessed after err (the stack's seed could not be written:
// nothing of the batch can run): every message is a batch item failure, visible again after its
// failure delay. Not a function error, which would hold every message of the batch, and so each of
// their threads, for the queue's whole visibility timeout (540 s) after one DynamoDB blip.
func (h *Handler) GiveBack(ctx context.Context, ev events.SQSEvent, err error) events.SQSEventResponse {
	resp := events.SQSEventResponse{BatchItemFailures: make([]events.SQSBatchItemFailure, 0, len(ev.Records))}
	byDelay := map[time.Duration][]string{}
	for _, r := range ev.Records {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
		d := h.failureDelay(r, err)
		byDelay[d] = append(byDelay[d], r.ReceiptHandle)
	}
	h.logger.ErrorContext(ctx, "batch handed back", "messages", len(ev.Records), "err", err)
	for d, handles := range byDelay {
		if d > 0 {
			h.postpone(ctx, handles, d)
		}
	}
	return resp
}

// postpone makes the received messages visible again after d; what it cannot postpone returns
// after the queue's visibility timeout.
func (h *Handler) postpone(ctx context.Context, handles []string, d time.Duration) {
	if h.visibility == nil {
		return
	}
	if err := h.visibility.Postpone(ctx, handles, d); err != nil {
		h.logger.WarnContext(ctx, "could not postpone failed messages; they return after the queue's visibility timeout", "err", err)
	}
}

// errUnprocessable marks a message no retry can process (malformed, or naming nothing): it fails
// with the plain FailureDelay on every receive, so it reaches InboundDLQ in 20 receives, without the
// doubling meant to outlast an outage.
var errUnprocessable = errors.New("not processable")

// maxFailureDelay caps the doubling of FailureDelay: a message that keeps failing while the table
// is down (FailureDelay 10 s: 10 s, 20 s, … 15 min) reaches InboundDLQ after its 20 receives in about
// 3.5 hours, not in 3.5 minutes of an outage.
const maxFailureDelay = 15 * time.Minute

// failureDelay is how long a message that failed for another reason than its agent waits before
// SQS delivers it again: FailureDelay, doubled for each earlier receive, at most maxFailureDelay
// (an unprocessable message: FailureDelay). 0 leaves it to the queue's visibility timeout.
func (h *Handler) failureDelay(rec events.SQSMessage, err error) time.Duration {
	d := h.cfg.FailureDelay
	if d <= 0 || errors.Is(err, errUnprocessable) {
		return d
	}
	n, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
	for i := 1; i < n && d < maxFailureDelay; i++ {
		d *= 2
	}
	return min(d, maxFailureDelay)
}

// Handle processes a batch. Messages of one thread (FIFO group) are handled in order, different
// threads in parallel. A failed message is reported as a batch item failure, and so is every later
// message of its thread in the batch, so the thread's order holds when SQS redelivers them; their
// visibility is set to the retry's delay (FailureDelay for other errors), so the thread waits just
// that long. Before each message the remaining time is checked: with less than MessageTime left,
// the rest of the thread is handed back the same way, visible again at once, so a batch of slow
// agent calls never outruns the function's timeout.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	defer h.metrics.Flush()
	var (
		mu       sync.Mutex
		failures = []events.SQSBatchItemFailure{}
		wg       sync.WaitGroup
	)
	// giveBack reports recs as failed and makes them visible again after delay (none: after the
	// queue's visibility timeout).
	giveBack := func(recs []events.SQSMessage, delay time.Duration, postpone bool) {
		handles := make([]string, 0, len(recs))
		mu.Lock()
		for _, r := range recs {
			failures = append(failures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
			handles = append(handles, r.ReceiptHandle)
		}
		mu.Unlock()
		if postpone {
			h.postpone(ctx, handles, delay)
		}
	}
	for _, group := range queue.ByGroup(ev.Records) {
		wg.Add(1)
		go func(recs []events.SQSMessage) {
			defer wg.Done()
			for i, rec := range recs {
				if left, short := h.shortOfTime(ctx); short {
					h.logger.InfoContext(ctx, "too little time left for another message; handing the rest of the thread back",
						"sqs_message_id", rec.MessageId, "left", left.String(), "handed_back", len(recs)-i)
					giveBack(recs[i:], 0, true)
					return
				}
				// Each message carries the trace of the request that queued it (the attribute).
				ctx := trace.NewContext(ctx, queue.InboundTrace(rec.MessageAttributes))
				err := h.process(ctx, rec)
				if err == nil {
					continue
				}
				delay := h.failureDelay(rec, err)
				var rl *retryLater
				if errors.As(err, &rl) {
					delay = rl.delay
					h.metrics.Count(metrics.Runs, 1, "Outcome", OutcomeRetry)
					h.logger.WarnContext(ctx, "agent call failed; retrying later", "sqs_message_id", rec.MessageId, "retry_in", delay.String(), "err", rl.err)
				} else {
					h.logger.ErrorContext(ctx, "inbound message failed", "sqs_message_id", rec.MessageId,
						"receive_count", rec.Attributes["ApproximateReceiveCount"], "retry_in", delay.String(), "err", err)
				}
				giveBack(recs[i:], delay, delay > 0)
				return
			}
		}(group)
	}
	wg.Wait()
	return events.SQSEventResponse{BatchItemFailures: failures}, nil
}

// shortOfTime reports whether the invocation has less than MessageTime left, and how much it has.
func (h *Handler) shortOfTime(ctx context.Context) (time.Duration, bool) {
	deadline, ok := ctx.Deadline()
	if !ok || h.cfg.MessageTime <= 0 {
		return 0, false
	}
	left := deadline.Sub(h.now())
	return left, left < h.cfg.MessageTime
}

func (h *Handler) process(ctx context.Context, rec events.SQSMessage) (err error) {
	var m queue.Inbound
	if err := json.Unmarshal([]byte(rec.Body), &m); err != nil {
		return fmt.Errorf("decode inbound: %w: %w", err, errUnprocessable)
	}
	if m.Version != queue.InboundVersion || m.WorkspaceID == "" || m.MessageID == "" {
		return fmt.Errorf("inbound message has version %d or misses ids: %w", m.Version, errUnprocessable)
	}
	in := &inbound{Inbound: &m}
	var first []event // recorded before the message's own events
	switch {
	case m.Binding != nil:
		return h.binding(ctx, &m)
	case m.Decided:
		receives, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
		return h.decided(ctx, in, receives)
	case m.Event != nil:
		if m.Event.Subject == "" || m.Event.Type == "" || !json.Valid([]byte(m.Event.Data)) {
			return fmt.Errorf("inbound event %q/%q: %w", m.Event.Subject, m.Event.Type, errUnprocessable)
		}
		first = append(first, newEvent(m.Event.Subject, m.Event.Type, verbatim(m.Event.Data)))
		if m.RunID == "" {
			// An event that starts no run: its sender promises no order among its webhooks, so
			// it may go to any shard of the log.
			first[0].spread = true
			return h.append(ctx, &m, first...)
		}
	}
	if m.ThreadID == "" || m.RunID == "" {
		return fmt.Errorf("inbound message misses its thread or run id: %w", errUnprocessable)
	}
	// A run this delivery creates is held (see Config.Hold), unless an event starts it: the event
	// may be in the log already (a copy that started no run), and its marker then holds none of the
	// group that later settles look for after it.
	hold := h.cfg.Hold > 0 && len(first) == 0
	if m.Stored && m.LogShard != nil {
		h.store.LearnThreadShard(m.WorkspaceID, m.ThreadID, *m.LogShard) // the adapter wrote the thread
	}
	var run store.Run
	var held store.Held
	started := false
	if !m.Stored {
		// The run is created started: this delivery runs it now.
		th := store.Thread{ID: m.ThreadID, WorkspaceID: m.WorkspaceID, Channel: m.Channel, ExternalID: m.ExternalID}
		msg := store.Message{ID: m.MessageID, Direction: "in", Source: m.Source, Text: m.Text, User: m.User, Data: m.Data, CreatedAt: m.ReceivedAt}
		nr := store.NewRun{Thread: th, Message: msg, Run: store.Run{ID: m.RunID, User: m.User, Agent: m.Agent}, Start: true}
		var err error
		if hold {
			// Not written yet, but read: a run that exists is never held, nor run again here.
			held, started, err = h.store.HoldRun(ctx, nr)
			run = held.Run
		} else {
			run, started, err = h.store.CreateRunWith(ctx, nr)
		}
		if err != nil {
			return err
		}
		if !started {
			// Redelivered, or reposted with the same idempotency key: carry on from the stored run.
			h.logger.InfoContext(ctx, "run exists; resuming", "run_id", m.RunID)
		}
	}
	// Both opening events in one append: one round of contention on the log instead of two.
	opening := append(first,
		newEvent(m.MessageID, EventMessageReceived, map[string]any{
			"thread_id": m.ThreadID, "message_id": m.MessageID, "source": m.Source, "channel": m.Channel,
			"external_id": m.ExternalID, "user": m.User, "text": m.Text, "data": m.Data,
		}),
		newEvent(m.RunID, EventRunCreated, map[string]any{
			"run_id": m.RunID, "thread_id": m.ThreadID, "message_id": m.MessageID, "status": store.RunQueued,
		}))
	if started && hold {
		// A run this delivery created: its turn is run with the run and its opening events held
		// back, and every end of the message writes what the turn did not.
		in.opening = h.hold(ctx, &m, held, opening)
		defer func() {
			if ferr := in.flushOpening(ctx, h); ferr != nil {
				err = errors.Join(err, ferr)
			}
		}()
	} else if err := h.append(ctx, &m, opening...); err != nil {
		if started {
			// No agent was called: the retry's StartRun counts this attempt again.
			if uerr := h.store.UncountStart(ctx, m.WorkspaceID, m.RunID); uerr != nil {
				h.logger.WarnContext(ctx, "run's first attempt stays counted", "run_id", m.RunID, "err", uerr)
			}
		}
		return err
	}

	if !started {
		var err error
		if run, started, err = h.store.StartRun(ctx, m.WorkspaceID, m.RunID); err != nil {
			return err
		}
		if !started {
			return h.resettle(ctx, in, run) // redelivered after its turn ended, or cancelled meanwhile
		}
	}
	if err := h.store.RenewSlot(ctx, run, h.cfg.Lease); err != nil {
		return err
	}
	return h.speak(ctx, in, run)
}

// speak runs the user_speak turn of a started run, opening the agent's session first when this is
// the thread's first message.
func (h *Handler) speak(ctx context.Context, m *inbound, run store.Run) error {
	ag, history, err := h.agents.Get(ctx, m.WorkspaceID, m.Agent)
	if err != nil {
		return h.agentUnusable(ctx, m, run, err)
	}
	th, err := h.store.GetThread(ctx, m.WorkspaceID, m.ThreadID)
	if err != nil {
		return err
	}
	sess := session(m.Inbound, th)
	req := agent.Request{Kind: agent.KindUserSpeak, RunID: run.ID, Session: sess, Text: m.Text, Data: m.Data}
	if len(req.Data) == 0 && m.Event != nil {
		req.Data = json.RawMessage(m.Event.Data) // a run started by an event takes the event as its input
	}
	if n := history; n > 0 {
		// The thread's last n messages before this one, which is among them unless its run is held
		// (not written yet).
		msgs, err := h.store.ListMessages(ctx, m.WorkspaceID, m.ThreadID, n+1)
		if err != nil {
			return err
		}
		msgs = slices.DeleteFunc(msgs, func(msg store.Message) bool { return msg.ID == m.MessageID })
		for _, msg := range msgs[max(len(msgs)-n, 0):] {
			role := "user"
			if msg.Direction == "out" {
				role = "assistant"
			}
			req.History = append(req.History, agent.Turn{Role: role, Text: msg.Text})
		}
	}
	started, err := h.sessionStarted(ctx, th, run)
	if err != nil {
		return err
	}
	owner := false // this run made the session start, and records it with its turn
	if !started {
		if _, err := h.respond(ctx, ag, agent.Request{Kind: agent.KindSessionStart, RunID: run.ID, Session: sess}); err != nil {
			return h.agentFailed(ctx, m, run, err)
		}
		if owner = th.SessionRun == run.ID; owner {
			run.SessionStarted = true // conclude's change records it
		} else if err := h.store.MarkSessionStarted(ctx, m.WorkspaceID, m.ThreadID); err != nil {
			return err
		}
	}
	begin := h.now()
	reply, err := h.respond(ctx, ag, req)
	if err != nil {
		if owner {
			// No change of the run records this turn's session start: the thread does, so that
			// the retry, or the thread's next run, does not start the session again.
			if err := h.store.MarkSessionStarted(ctx, m.WorkspaceID, m.ThreadID); err != nil {
				return err
			}
		}
		return h.agentFailed(ctx, m, run, err)
	}
	h.logger.InfoContext(ctx, "agent replied", "run_id", run.ID, "actions", len(reply.Actions), "agent_ms", h.now().Sub(begin).Milliseconds())
	return h.conclude(ctx, m, run, reply, "speak", "")
}

// sessionStarted reports whether the agent has had session_start for the run's thread: the thread
// records it, or the run that opened the thread recorded on its own item that it made it for this
// thread (then the thread records it too, so that later runs read only the thread). Runs of a
// thread are handled one at a time (the inbound queue's group is the thread), so the opening run
// is done with its turn. The opener may be another thread's: a repost of a run under the same
// idempotency key with another external id opens a thread in the run's name without writing it.
func (h *Handler) sessionStarted(ctx context.Context, th store.Thread, run store.Run) (bool, error) {
	if th.SessionStarted || th.SessionRun == "" || th.SessionRun == run.ID {
		return th.SessionStarted, nil
	}
	opener, err := h.store.GetRun(ctx, th.WorkspaceID, th.SessionRun)
	switch {
	case apierr.CodeOf(err) == apierr.NotFound:
		return false, nil // expired: start the session again rather than never
	case err != nil:
		return false, err
	case !opener.SessionStarted || opener.ThreadID != th.ID:
		return false, nil // it failed before its session start, or started another thread's
	}
	return true, h.store.MarkSessionStarted(ctx, th.WorkspaceID, th.ID)
}

// OutcomeRetry is the Runs outcome of an agent call retried later; the others are run statuses.
const OutcomeRetry = "retry"

// respond calls the agent and times the call (AgentLatency, by ok or error).
func (h *Handler) respond(ctx context.Context, ag agent.Agent, req agent.Request) (agent.Reply, error) {
	begin := h.now()
	reply, err := ag.Respond(ctx, req)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	h.metrics.Millis(metrics.AgentLatency, h.now().Sub(begin), "Outcome", outcome)
	return reply, err
}

func session(m *queue.Inbound, th store.Thread) agent.Session {
	return agent.Session{ID: th.ID, WorkspaceID: th.WorkspaceID, Channel: th.Channel, ExternalID: th.ExternalID, User: m.User}
}

// agentUnusable fails the run whose agent is not one of its workspace's (a route or adapter named
// an agent the workspace does not have, or no longer has): no other workspace's agent is ever
// called. An error reading the workspace's agents is returned, so the message is retried.
func (h *Handler) agentUnusable(ctx context.Context, m *inbound, run store.Run, err error) error {
	switch apierr.CodeOf(err) {
	case apierr.NotFound, apierr.Invalid:
		h.logger.WarnContext(ctx, "run names an agent its workspace does not have", "run_id", run.ID, "agent", m.Agent, "err", err)
		return h.fail(ctx, m, run, apierr.MessageOf(err))
	}
	return fmt.Errorf("find agent of run %s: %w", run.ID, err)
}

// agentFailed retries a retryable agent failure through the queue while the schedule allows, and
// otherwise fails the run with the reason.
func (h *Handler) agentFailed(ctx context.Context, m *inbound, run store.Run, err error) error {
	reason := "agent failed"
	var ae *agent.Error
	if errors.As(err, &ae) {
		reason = "agent failed: " + ae.Reason
		// The host goes to the log only: the run's error and run.failed reach every subscriber.
		h.logger.WarnContext(ctx, "agent call failed", "run_id", run.ID, "agent", m.Agent, "agent_host", ae.Host, "reason", ae.Reason)
	}
	if agent.Retryable(err) {
		if delay, ok := h.cfg.Retry.Next(run.Attempts, 0, 0); ok {
			return &retryLater{delay: delay, err: err}
		}
		reason += fmt.Sprintf(" (after %d attempts)", run.Attempts)
	}
	return h.fail(ctx, m, run, reason)
}

func (h *Handler) fail(ctx context.Context, m *inbound, run store.Run, reason string) error {
	done, err := h.finish(ctx, m, run, store.Finish{Status: store.RunFailed, Error: reason})
	if err != nil && apierr.CodeOf(err) != apierr.Conflict {
		return err
	}
	if err == nil {
		h.metrics.Count(metrics.Runs, 1, "Outcome", string(store.RunFailed))
	}
	h.logger.WarnContext(ctx, "run failed", "run_id", run.ID, "reason", reason)
	if err != nil {
		if err := m.flushOpening(ctx, h); err != nil { // as in conclude
			return err
		}
		return h.resettle(ctx, m, done) // another delivery ended it first
	}
	return h.settle(ctx, m, done)
}

// conclude ends the turn with the agent's reply: a request for approval pauses the run, anything
// else completes it. The reply message is stored with the run's change; turn names the turn
// ("speak", or the decision it follows) so that each turn's reply has its own id.
func (h *Handler) conclude(ctx context.Context, m *inbound, run store.Run, reply agent.Reply, turn, previous string) error {
	text := reply.Text()
	f := store.Finish{Status: store.RunCompleted, Result: &store.Result{Text: text}, ThreadID: m.ThreadID, SessionStarted: run.SessionStarted}
	if a := reply.Approval(); a != nil {
		f.Status, f.Approval = store.RunWaitingApproval, &store.Approval{
			ID: ids.Derive("apr", m.WorkspaceID, run.ID, turn), Prompt: a.Prompt, Options: a.Options,
			Approvers: Approvers(a.Approvers, run.Approvers), ExpiresAt: h.now().UTC().Add(h.cfg.ApprovalTTL).Truncate(time.Second),
		}
	}
	if text != "" {
		f.Reply = &store.Message{
			ID: ids.Derive("msg", m.WorkspaceID, run.ID, "reply", turn), Direction: "out", Source: "agent",
			Text: text, RunID: run.ID, CreatedAt: h.now().UTC(),
		}
	} else if previous != "" {
		f.Result.Text = previous // an approved run whose agent says nothing more keeps what it said
	}
	done, err := h.finish(ctx, m, run, f)
	if err != nil && apierr.CodeOf(err) != apierr.Conflict {
		return err
	}
	if err == nil {
		h.metrics.Count(metrics.Runs, 1, "Outcome", string(f.Status))
	}
	if err != nil {
		// Conflict: cancelled meanwhile, or another delivery ended the turn first; settle what is,
		// after the opening events (alone: the run's change does not name them as the lead).
		if err := m.flushOpening(ctx, h); err != nil {
			return err
		}
		// This turn's session start is recorded on the thread instead, since not on the run.
		if run.SessionStarted && !done.SessionStarted {
			if err := h.store.MarkSessionStarted(ctx, m.WorkspaceID, m.ThreadID); err != nil {
				return err
			}
		}
		return h.resettle(ctx, m, done)
	}
	return h.settle(ctx, m, done)
}

// finish ends the run's turn with f, after the held opening events it takes (lead): a run this
// delivery still holds is written once, in its final state; any other is changed. A Conflict
// error (the run is not running) comes with the run as it is.
func (h *Handler) finish(ctx context.Context, m *inbound, run store.Run, f store.Finish) (store.Run, error) {
	f.EventsLead = m.lead() // first: it ends the hold, so that the timer writes the run no more
	held := m.unwritten()
	if held == nil {
		return h.store.FinishRunWith(ctx, m.WorkspaceID, run.ID, f)
	}
	done, err := h.store.FinishHeld(ctx, *held, f)
	if err == nil || apierr.CodeOf(err) == apierr.Conflict {
		m.written()
	}
	return done, err
}

// resettle settles a run this delivery did not just finish itself: the turn that finished it may
// have died between the run's change and its reply message (FinishRunWith's two writes), so the
// reply is stored first, if it is missing.
func (h *Handler) resettle(ctx context.Context, m *inbound, run store.Run) error {
	if err := h.store.EnsureReply(ctx, run); err != nil {
		return err
	}
	return h.settle(ctx, m, run)
}

// settle records what a run's state calls for, idempotently, and frees its slot once it no longer
// counts as in flight. It runs after every turn and on every redelivery, so a crash between the
// run's change and its events loses nothing.
func (h *Handler) settle(ctx context.Context, m *inbound, run store.Run) error {
	base := map[string]any{"run_id": run.ID, "thread_id": run.ThreadID, "status": run.Status}
	if run.Adapter != "" {
		base["adapter"] = run.Adapter
	}
	if run.ReplyURL != "" {
		base["callback"] = true
	}
	with := func(extra map[string]any) map[string]any {
		out := make(map[string]any, len(base)+len(extra))
		for k, v := range base {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	var evs []event
	if run.ReplyID != "" && (run.Status == store.RunCompleted || run.Status == store.RunWaitingApproval) {
		evs = append(evs, h.sent(m.Inbound, run.ReplyID, run.ID, run.Result.Text))
	}
	switch run.Status {
	case store.RunCompleted:
		evs = append(evs, newEvent(run.ID, EventRunCompleted, with(map[string]any{"result": run.Result})))
	case store.RunFailed:
		evs = append(evs, newEvent(run.ID, EventRunFailed, with(map[string]any{"error": run.Error})))
	case store.RunWaitingApproval:
		evs = append(evs, newEvent(run.ID+"@"+run.Approval.RequestedAt.Format(time.RFC3339Nano), EventRunRequiresApproval,
			with(h.approvalData(run))))
	}
	// cancelled and denied were recorded by whoever cancelled or denied the run.
	if err := h.appendClosing(ctx, m, run, evs); err != nil {
		return err
	}
	if run.Status == store.RunQueued || run.Status == store.RunRunning {
		return nil // another delivery of this message holds it
	}
	return h.store.ReleaseSlot(ctx, run)
}

// appendClosing appends a turn's closing events: after the opening events that this delivery held
// back and took (as one group), else after the group the run's change names (the turn's opening
// events, when its delivery held them), else as a group of their own.
func (h *Handler) appendClosing(ctx context.Context, m *inbound, run store.Run, evs []event) error {
	o := m.opening
	held := o != nil && o.pending()
	if held {
		evs = append(slices.Clip(o.evs), evs...)
	}
	if len(evs) == 0 {
		return nil
	}
	if err := h.appendAfter(ctx, m.Inbound, run.EventsLead, evs...); err != nil {
		return err
	}
	if held {
		o.done()
	}
	return nil
}

// Approvers are who may decide a request for approval: those the agent's request_approval
// names, else those of the run's adapter, else anyone holding a token (approval.Any).
func Approvers(asked, adapters []string) []string {
	switch {
	case len(asked) > 0:
		return asked
	case len(adapters) > 0:
		return adapters
	}
	return []string{approval.Any}
}

// approvalData is what run.requires_approval carries: the request, and per approver and option
// a signed, expiring decision token (with the adapter route to POST it to). Only the workspace's
// subscribers get the tokens; the adapter's run view shows the request without them.
func (h *Handler) approvalData(run store.Run) map[string]any {
	a := run.Approval
	d := map[string]any{"prompt": a.Prompt, "options": a.Options, "result": run.Result}
	if a.ID == "" {
		return d // requested before requests had ids: no tokens
	}
	d["approval_id"], d["approvers"], d["expires_at"] = a.ID, a.Approvers, a.ExpiresAt
	if h.cfg.Approvals != nil {
		base := ""
		if run.Adapter != "" {
			base = "/webhook/" + run.Adapter + "/threads/" + run.ThreadID + "/runs/" + run.ID
		}
		d["decisions"] = h.cfg.Approvals.Links(approval.Request{
			Workspace: run.WorkspaceID, RunID: run.ID, RequestID: a.ID, Approvers: a.Approvers, Options: a.Options,
			Expires: a.ExpiresAt, Base: base,
		})
	}
	return d
}

// sent is the message.sent event of an outbound message. A reply to a message of the Telegram
// door names the Telegram source that received it: the fan-out sends such replies, and only
// those, to the chat through that source's bot.
func (h *Handler) sent(m *queue.Inbound, msgID, runID, text string) event {
	data := map[string]any{
		"thread_id": m.ThreadID, "message_id": msgID, "run_id": runID, "text": text,
		"channel": m.Channel, "external_id": m.ExternalID,
	}
	if m.Source == queue.SourceTelegram && m.TelegramSource != "" {
		data["telegram_source"] = m.TelegramSource
		if m.CallbackQueryID != "" {
			data["callback_query_id"] = m.CallbackQueryID // the Telegram reply answers the button press
		}
	}
	return newEvent(msgID, EventMessageSent, data)
}

// decided hands a human's decision to the agent. An approved run continues with the agent's
// answer; a denied run has ended, and the agent's answer is only recorded.
func (h *Handler) decided(ctx context.Context, m *inbound, receives int) error {
	run, err := h.store.GetRun(ctx, m.WorkspaceID, m.RunID)
	if err != nil {
		if apierr.CodeOf(err) == apierr.NotFound {
			return fmt.Errorf("decision for a run that does not exist: %w", errUnprocessable)
		}
		return err
	}
	if run.Approval == nil || run.Approval.Decision == "" || run.Approval.DecidedAt == nil {
		if run.Status == store.RunWaitingApproval {
			// The decided turn asked for approval again and may have died before its reply and
			// its event: what it left undone is done here (both are idempotent).
			return h.resettle(ctx, m, run)
		}
		return nil // a stale decision message: the run has moved on
	}
	turn := "decision@" + run.Approval.DecidedAt.Format(time.RFC3339Nano)
	previous := ""
	if run.Result != nil {
		previous = run.Result.Text
	}
	if run.Status == store.RunQueued || run.Status == store.RunRunning {
		started, ok, err := h.store.StartRun(ctx, m.WorkspaceID, run.ID)
		if err != nil {
			return err
		}
		if !ok {
			return h.resettle(ctx, m, started)
		}
		run = started
	} else if run.Status != store.RunDenied {
		return h.resettle(ctx, m, run) // completed, cancelled, or waiting for a later approval
	}
	ag, _, err := h.agents.Get(ctx, m.WorkspaceID, m.Agent)
	if err != nil {
		if c := apierr.CodeOf(err); run.Status == store.RunDenied && (c == apierr.NotFound || c == apierr.Invalid) {
			return nil // nobody to tell of the denial
		}
		return h.agentUnusable(ctx, m, run, err)
	}
	th, err := h.store.GetThread(ctx, m.WorkspaceID, run.ThreadID)
	if err != nil {
		return err
	}
	a := run.Approval
	reply, err := h.respond(ctx, ag, agent.Request{
		Kind: agent.KindApproval, RunID: run.ID, Session: session(m.Inbound, th),
		Decision: &agent.Decision{Approved: a.Decision == store.DecisionApproved, Option: a.Option, Approver: a.DecidedBy, Comment: a.Comment},
	})
	if run.Status == store.RunDenied {
		return h.noteDenied(ctx, m, run, turn, reply, err, receives)
	}
	if err != nil {
		return h.agentFailed(ctx, m, run, err)
	}
	return h.conclude(ctx, m, run, reply, turn, previous)
}

// noteDenied records what the agent answered to a denial; the run stays denied. A failing agent
// is retried on the schedule (counted by SQS receives) and then left alone.
func (h *Handler) noteDenied(ctx context.Context, m *inbound, run store.Run, turn string, reply agent.Reply, err error, receives int) error {
	if err != nil {
		if delay, ok := h.cfg.Retry.Next(receives, 0, 0); ok && agent.Retryable(err) {
			return &retryLater{delay: delay, err: err}
		}
		h.logger.WarnContext(ctx, "agent was not told of a denial", "run_id", run.ID, "err", err)
		return nil
	}
	text := reply.Text()
	if text == "" {
		return nil
	}
	msg := store.Message{
		ID: ids.Derive("msg", m.WorkspaceID, run.ID, "reply", turn), Direction: "out", Source: "agent",
		Text: text, RunID: run.ID, CreatedAt: *run.Approval.DecidedAt, // fixed, so a retry adds nothing
	}
	if _, err := h.store.AddMessage(ctx, m.WorkspaceID, run.ThreadID, msg); err != nil {
		return err
	}
	return h.append(ctx, m.Inbound, h.sent(m.Inbound, msg.ID, run.ID, text))
}

// event is one event to record: its id is derived from its subject and type, so a retry appends
// nothing new.
type event struct {
	subject, typ string
	data         any  // encoded with encoding/json, except verbatim
	spread       bool // store.Event.Spread
}

// verbatim is event data kept byte for byte (encoding/json would compact a json.RawMessage).
type verbatim string

func newEvent(subject, typ string, data any) event {
	return event{subject: subject, typ: typ, data: data}
}

// id is the event's id in workspace ws.
func (e event) id(ws string) string { return ids.Derive("evt", ws, e.subject, e.typ) }

// binding stores a connector's report (unless a newer one is stored) and records binding.status.
func (h *Handler) binding(ctx context.Context, m *queue.Inbound) error {
	b := m.Binding
	if b.Channel == "" || b.BindingID == "" || b.Status == "" {
		return fmt.Errorf("binding report misses channel, binding id or status: %w", errUnprocessable)
	}
	if _, err := h.store.PutBindingStatus(ctx, store.BindingStatus{
		WorkspaceID: m.WorkspaceID, Channel: b.Channel, BindingID: b.BindingID, Status: b.Status, Detail: b.Detail, ReportedAt: b.ReportedAt,
	}); err != nil {
		return err
	}
	return h.append(ctx, m, newEvent(m.MessageID, EventBindingStatus, b))
}

// widgetChannel is the channel of the web widget's threads (widget.Channel), the only threads
// whose event index is read (by the widget's stream): other threads' events get no copy there (a
// message that names no channel, such as an approval's decision, keeps the copies).
const widgetChannel = "web"

// append records evs with the message's trace, so that their deliveries continue it.
func (h *Handler) append(ctx context.Context, m *queue.Inbound, evs ...event) error {
	return h.appendAfter(ctx, m, "", evs...)
}

// appendAfter is append after the group led by event id lead (store.Store.AppendEventsAfter).
func (h *Handler) appendAfter(ctx context.Context, m *queue.Inbound, lead string, evs ...event) error {
	ws := m.WorkspaceID
	tp := ""
	if p := trace.FromContext(ctx); p.Valid() {
		tp = p.String()
	}
	out := make([]store.Event, len(evs))
	for i, e := range evs {
		b, err := encode(e.data)
		if err != nil {
			return fmt.Errorf("encode %s event: %w", e.typ, err)
		}
		out[i] = store.Event{ID: e.id(ws), Type: e.typ, WorkspaceID: ws, Data: b, Trace: tp,
			Unread: m.Channel != "" && m.Channel != widgetChannel, Spread: e.spread}
	}
	_, err := h.log.AppendEventsAfter(ctx, lead, out)
	return err
}

func encode(data any) ([]byte, error) {
	if v, ok := data.(verbatim); ok {
		return []byte(v), nil
	}
	return queue.Marshal(data) // texts cost what the doors' limits counted
}
