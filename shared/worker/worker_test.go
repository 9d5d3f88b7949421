package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/agent"
	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/approval"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// The worker runs on the real store (DynamoDB Local); only the agent and SQS's visibility
// change are in-process stand-ins, so the tests can script failures and count calls.
func TestMain(m *testing.M) { os.Exit(emulatortest.Run(m)) }

// scripted is an agent whose answer to the n-th call (from 1) the test decides.
type scripted struct {
	mu      sync.Mutex
	calls   []agent.Request
	respond func(r agent.Request, n int) (agent.Reply, error)
	// respondCtx, when set, sees each call's context (its trace).
	respondCtx func(context.Context)
}

func (s *scripted) Respond(ctx context.Context, r agent.Request) (agent.Reply, error) {
	if s.respondCtx != nil {
		s.respondCtx(ctx)
	}
	s.mu.Lock()
	s.calls = append(s.calls, r)
	n := len(s.calls)
	s.mu.Unlock()
	return s.respond(r, n)
}

// kinds returns the kinds of the calls so far, for one thread ("" for all).
func (s *scripted) kinds(thread string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.calls {
		if thread == "" || c.Session.ID == thread {
			out = append(out, c.Kind)
		}
	}
	return out
}

func speak(text string) agent.Reply {
	return agent.Reply{Actions: []agent.Action{{Type: agent.ActionSpeak, Text: text}}}
}

// echoing speaks the text back, and says nothing to session starts.
func echoing(r agent.Request, _ int) (agent.Reply, error) {
	if r.Kind != agent.KindUserSpeak {
		return agent.Reply{}, nil
	}
	return speak("echo: " + r.Text), nil
}

type registry struct {
	a       agent.Agent
	history int
}

func (r registry) Get(_ context.Context, _, name string) (agent.Agent, int, error) {
	if name == "missing" {
		return nil, 0, apierr.New(apierr.NotFound, `agent "missing" is not an agent of this workspace`)
	}
	return r.a, r.history, nil
}

type postponed struct {
	handles []string
	delay   time.Duration
}

type visibility struct {
	mu    sync.Mutex
	calls []postponed
}

func (v *visibility) Postpone(_ context.Context, handles []string, d time.Duration) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls = append(v.calls, postponed{handles, d})
	return nil
}

type rig struct {
	db    *dynamodb.Client
	table string
	st    *store.Store
	agent *scripted
	vis   *visibility
	h     *Handler
}

func newRig(t *testing.T, history int, respond func(agent.Request, int) (agent.Reply, error)) *rig {
	t.Helper()
	db, table := emulatortest.Table(t, "worker")
	st := store.New(db, table, time.Now)
	sched, err := outbound.ParseSchedule("0s,2s,4s")
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{db: db, table: table, st: st, agent: &scripted{respond: respond}, vis: &visibility{}}
	keys, err := approval.NewKeys(time.Now, approvalKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Retry: sched, Lease: time.Minute, Approvals: keys, ApprovalTTL: time.Hour, Hold: DefaultHold}
	r.h = New(cfg, st, st, registry{r.agent, history}, r.vis, slog.New(slog.DiscardHandler), time.Now)
	return r
}

const approvalKey = "test-approval-signing-key-0123"

// message is a queue message for a run on a thread, as an inbound door queues it.
func message(thread, run, text string) queue.Inbound {
	return queue.Inbound{
		Version: queue.InboundVersion, WorkspaceID: "ws", ThreadID: thread, MessageID: "msg_" + run, RunID: run,
		Source: "generic", Channel: "demo", ExternalID: thread, Text: text, User: "alice", ReceivedAt: time.Now(),
	}
}

func record(sqsID string, m queue.Inbound) events.SQSMessage {
	body, _ := json.Marshal(m)
	return events.SQSMessage{MessageId: sqsID, ReceiptHandle: "rh-" + sqsID, Body: string(body),
		Attributes: map[string]string{"MessageGroupId": m.GroupID(), "ApproximateReceiveCount": "1"}}
}

// handle pushes a batch through the real Lambda decoder and returns the failed message ids.
func (r *rig) handle(t *testing.T, recs ...events.SQSMessage) []string {
	t.Helper()
	raw, _ := json.Marshal(events.SQSEvent{Records: recs})
	out, err := lambda.NewHandler(r.h.Handle).Invoke(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	slices.Sort(failed)
	return failed
}

// handleAll pushes a batch through handle and fails the test when any of its messages failed.
func (r *rig) handleAll(t *testing.T, recs ...events.SQSMessage) {
	t.Helper()
	if failed := r.handle(t, recs...); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
}

// wantKinds fails the test unless the agent saw exactly these calls for the thread, in order.
func (r *rig) wantKinds(t *testing.T, thread string, want ...string) {
	t.Helper()
	if got := r.agent.kinds(thread); !slices.Equal(got, want) {
		t.Fatalf("agent saw %v, want %v", got, want)
	}
}

func (r *rig) run(t *testing.T, id string) store.Run {
	t.Helper()
	run, err := r.st.GetRun(context.Background(), "ws", id)
	if err != nil {
		t.Fatalf("run %s: %v", id, err)
	}
	return run
}

func (r *rig) eventTypes(t *testing.T) []string {
	t.Helper()
	evs, err := r.st.ListEvents(context.Background(), "ws", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return typesOf(evs)
}

// typesOf is the types of evs, in their order.
func typesOf(evs []store.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func TestSessionStartsOnceThenEveryMessageIsSpoken(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, echoing)
	r.handleAll(t, record("1", message("thr_a", "r1", "hello")), record("2", message("thr_a", "r2", "again")))
	r.wantKinds(t, "thr_a", agent.KindSessionStart, agent.KindUserSpeak, agent.KindUserSpeak)
	for id, want := range map[string]string{"r1": "echo: hello", "r2": "echo: again"} {
		if run := r.run(t, id); run.Status != store.RunCompleted || run.Result == nil || run.Result.Text != want {
			t.Fatalf("run %s = %+v", id, run)
		}
	}
	want := []string{EventMessageReceived, EventRunCreated, EventMessageSent, EventRunCompleted, EventMessageReceived, EventRunCreated, EventMessageSent, EventRunCompleted}
	if got := r.eventTypes(t); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	msgs, err := r.st.ListMessages(context.Background(), "ws", "thr_a", 10)
	// Both inbound messages were received before the first reply was made.
	if err != nil || len(msgs) != 4 || msgs[2].Direction != "out" || msgs[2].Text != "echo: hello" || msgs[2].RunID != "r1" || msgs[3].Text != "echo: again" {
		t.Fatalf("messages %+v %v", msgs, err)
	}
	// A redelivery of a finished message calls nobody and records nothing new.
	if failed := r.handle(t, record("1", message("thr_a", "r1", "hello"))); len(failed) != 0 {
		t.Fatalf("redelivery failed %v", failed)
	}
	if n := len(r.agent.kinds("")); n != 3 || len(r.eventTypes(t)) != len(want) {
		t.Fatalf("redelivery: %d agent calls, %d events", n, len(r.eventTypes(t)))
	}
}

// A turn that died between the run's change and its reply message (FinishRunWith's two writes,
// done here by taking the message away after the turn) is completed by the redelivery: the reply
// is stored once, the agent is not called again, and no event repeats.
func TestRedeliveryStoresAReplyTheTurnDiedBefore(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, echoing)
	ctx := context.Background()
	r.handleAll(t, record("1", message("thr_a", "r1", "hello")))
	msgs, err := r.st.ListMessages(ctx, "ws", "thr_a", 10)
	if err != nil || len(msgs) != 2 || msgs[1].Direction != "out" {
		t.Fatalf("messages %+v %v", msgs, err)
	}
	reply := msgs[1]
	sk := "MSG#" + reply.CreatedAt.UTC().Format("20060102T150405.000000000Z") + "#" + reply.ID // the store's key of a message
	if _, err := r.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &r.table, Key: map[string]ddbtypes.AttributeValue{
		"pk": &ddbtypes.AttributeValueMemberS{Value: "WS#ws#THR#thr_a"}, "sk": &ddbtypes.AttributeValueMemberS{Value: sk},
	}}); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := r.st.ListMessages(ctx, "ws", "thr_a", 10); len(msgs) != 1 {
		t.Fatalf("the reply was not taken away: %d messages", len(msgs))
	}
	events := len(r.eventTypes(t))
	if failed := r.handle(t, record("1", message("thr_a", "r1", "hello"))); len(failed) != 0 {
		t.Fatalf("redelivery failed %v", failed)
	}
	msgs, err = r.st.ListMessages(ctx, "ws", "thr_a", 10)
	if err != nil || len(msgs) != 2 || msgs[1].ID != reply.ID || msgs[1].Text != "echo: hello" || !msgs[1].CreatedAt.Equal(reply.CreatedAt) {
		t.Fatalf("messages after the redelivery %+v %v", msgs, err)
	}
	if n := len(r.agent.kinds("")); n != 2 || len(r.eventTypes(t)) != events {
		t.Fatalf("redelivery: %d agent calls (session start and one turn), %d events (was %d)", n, len(r.eventTypes(t)), events)
	}
}

// A retryable failure holds back its thread only: its message and the thread's later ones are
// batch item failures, postponed by the schedule's delay, while other threads go on.
func TestRetryableFailureHoldsBackOnlyItsThread(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Session.ID == "thr_flaky" && req.Kind == agent.KindUserSpeak && req.Text == "first" {
			return agent.Reply{}, &agent.Error{Retryable: true, Reason: "agent answered 503"}
		}
		return echoing(req, n)
	})
	failed := r.handle(t,
		record("a1", message("thr_flaky", "ra1", "first")),
		record("b1", message("thr_ok", "rb1", "fine")),
		record("a2", message("thr_flaky", "ra2", "second")),
	)
	if !slices.Equal(failed, []string{"a1", "a2"}) {
		t.Fatalf("failed %v, want a1 a2", failed)
	}
	if len(r.vis.calls) != 1 || !slices.Equal(r.vis.calls[0].handles, []string{"rh-a1", "rh-a2"}) || r.vis.calls[0].delay != 2*time.Second {
		t.Fatalf("postponed %+v, want rh-a1 rh-a2 by 2s", r.vis.calls)
	}
	if run := r.run(t, "ra1"); run.Status != store.RunRunning || run.Attempts != 1 {
		t.Fatalf("flaky run %+v", run)
	}
	if _, err := r.st.GetRun(context.Background(), "ws", "ra2"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("the thread's later message was processed out of order: %v", err)
	}
	if run := r.run(t, "rb1"); run.Status != store.RunCompleted {
		t.Fatalf("other thread %+v", run)
	}
}

func TestFlakyAgentCompletesDeadAgentFails(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) {
		switch {
		case req.Kind != agent.KindUserSpeak:
			return agent.Reply{}, nil
		case req.Session.ID == "thr_dead":
			return agent.Reply{}, &agent.Error{Retryable: true, Reason: "agent timed out after 25s"}
		case req.Session.ID == "thr_flaky" && n <= 3: // call 1 is its session start, 2 and 3 its first tries
			return agent.Reply{}, &agent.Error{Retryable: true, Reason: "agent answered 502"}
		}
		return speak("recovered"), nil
	})
	flaky := record("f", message("thr_flaky", "rf", "hi"))
	var delays []time.Duration
	for i := 0; i < 5; i++ {
		failed := r.handle(t, flaky)
		if len(failed) == 0 {
			break
		}
		delays = append(delays, r.vis.calls[len(r.vis.calls)-1].delay)
	}
	if run := r.run(t, "rf"); run.Status != store.RunCompleted || run.Result.Text != "recovered" || run.Attempts != 3 {
		t.Fatalf("flaky run %+v", run)
	}
	if !slices.Equal(delays, []time.Duration{2 * time.Second, 4 * time.Second}) {
		t.Fatalf("retry delays %v, want the schedule's 2s 4s", delays)
	}

	dead := record("d", message("thr_dead", "rd", "hi"))
	for i := 0; i < 3; i++ {
		failed := r.handle(t, dead)
		if i < 2 && len(failed) != 1 || i == 2 && len(failed) != 0 {
			t.Fatalf("delivery %d: failed %v", i+1, failed)
		}
	}
	run := r.run(t, "rd")
	if run.Status != store.RunFailed || run.Error != "agent failed: agent timed out after 25s (after 3 attempts)" || run.CompletedAt == nil {
		t.Fatalf("dead run %+v", run)
	}
	evs, _ := r.st.ListEvents(context.Background(), "ws", 0, 100)
	last := evs[len(evs)-1]
	var data map[string]any
	_ = json.Unmarshal(last.Data, &data)
	if last.Type != EventRunFailed || data["run_id"] != "rd" || data["error"] != run.Error {
		t.Fatalf("last event %s %s", last.Type, last.Data)
	}
}

func TestPermanentFailureAndUnknownAgentFailAtOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Kind == agent.KindUserSpeak {
			return agent.Reply{}, &agent.Error{Reason: "agent answered 400"}
		}
		return agent.Reply{}, nil
	})
	missing := message("thr_m", "rm", "hi")
	missing.Agent = "missing"
	r.handleAll(t, record("p", message("thr_p", "rp", "hi")), record("m", missing))
	if run := r.run(t, "rp"); run.Status != store.RunFailed || run.Error != "agent failed: agent answered 400" {
		t.Fatalf("run %+v", run)
	}
	if run := r.run(t, "rm"); run.Status != store.RunFailed || run.Error != `agent "missing" is not an agent of this workspace` {
		t.Fatalf("run %+v", run)
	}
	if len(r.vis.calls) != 0 {
		t.Fatalf("a permanent failure was postponed: %+v", r.vis.calls)
	}
}

func TestHistoryIsTheThreadsEarlierMessages(t *testing.T) {
	t.Parallel()
	r := newRig(t, 3, echoing)
	for i, text := range []string{"one", "two", "three"} {
		if failed := r.handle(t, record(fmt.Sprint(i), message("thr_h", fmt.Sprint("r", i), text))); len(failed) != 0 {
			t.Fatal(failed)
		}
	}
	r.agent.mu.Lock()
	last := r.agent.calls[len(r.agent.calls)-1]
	r.agent.mu.Unlock()
	// Bounded to 3, oldest first, without the message being answered.
	want := []agent.Turn{{Role: "assistant", Text: "echo: one"}, {Role: "user", Text: "two"}, {Role: "assistant", Text: "echo: two"}}
	if last.Text != "three" || !slices.Equal(last.History, want) {
		t.Fatalf("history %+v", last.History)
	}
}

// adapterRun stores a run as the adapter does (holding a slot) and returns its queue message.
func adapterRun(t *testing.T, r *rig, thread, run string) queue.Inbound {
	t.Helper()
	m := message(thread, run, "refund please")
	m.Stored, m.Source, m.Channel = true, "adapter", "adapter.ops"
	_, _, err := r.st.CreateRunWith(context.Background(), store.NewRun{
		Thread:  store.Thread{ID: thread, WorkspaceID: "ws", Channel: m.Channel, ExternalID: thread},
		Message: store.Message{ID: m.MessageID, Direction: "in", Source: "adapter", Text: m.Text, User: "alice", CreatedAt: m.ReceivedAt},
		Run:     store.Run{ID: run, Adapter: "ops", User: "alice", Approvers: []string{"boss"}},
		Slot:    &store.Slot{Pool: store.SlotPool("ws", "ops"), Index: 0, Lease: time.Minute},
	})
	if err != nil {
		t.Fatal(err)
	}
	if sh, ok := r.st.KnownThreadShard("ws", thread); ok {
		m.LogShard = &sh // as the adapter queues it (adapter.Handler.enqueue)
	}
	return m
}

func (r *rig) slotHeld(t *testing.T) bool {
	t.Helper()
	free, err := r.st.FreeSlots(context.Background(), store.SlotPool("ws", "ops"), 1)
	if err != nil {
		t.Fatal(err)
	}
	return len(free) == 0
}

// decisionLinks returns the decisions of the latest run.requires_approval event.
func (r *rig) decisionLinks(t *testing.T) []approval.Link {
	t.Helper()
	evs, err := r.st.ListEvents(context.Background(), "ws", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var data struct{ Decisions []approval.Link }
	for _, e := range evs {
		if e.Type == EventRunRequiresApproval {
			data.Decisions = nil
			if err := json.Unmarshal(e.Data, &data); err != nil {
				t.Fatal(err)
			}
		}
	}
	return data.Decisions
}

func TestApproversAreTheAgentsThenTheAdaptersThenAnyone(t *testing.T) {
	for _, c := range []struct{ asked, adapters, want []string }{
		{[]string{"cfo"}, []string{"boss"}, []string{"cfo"}},
		{nil, []string{"boss", "cto"}, []string{"boss", "cto"}},
		{nil, nil, []string{approval.Any}},
	} {
		if got := Approvers(c.asked, c.adapters); !slices.Equal(got, c.want) {
			t.Errorf("Approvers(%v, %v) = %v, want %v", c.asked, c.adapters, got, c.want)
		}
	}
}

// askRefund is an agent's reply that offers a refund of 20 EUR and asks for approval of it.
func askRefund(options ...string) agent.Reply {
	return agent.Reply{Actions: []agent.Action{
		{Type: agent.ActionSpeak, Text: "I can refund 20 EUR."},
		{Type: agent.ActionRequestApproval, Prompt: "Refund 20 EUR?", Options: options},
	}}
}

func decidedMessage(m queue.Inbound) queue.Inbound {
	d := m
	d.MessageID, d.Decided, d.Text = m.MessageID+"-decided", true, ""
	return d
}

func TestApprovalPausesTheRunUntilApproved(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) {
		switch req.Kind {
		case agent.KindUserSpeak:
			return askRefund("refund", "refuse"), nil
		case agent.KindApproval:
			if !req.Decision.Approved || req.Decision.Approver != "boss" || req.Decision.Option != "refund" {
				return agent.Reply{}, &agent.Error{Reason: fmt.Sprintf("unexpected decision %+v", req.Decision)}
			}
			return speak("Refunded."), nil
		}
		return agent.Reply{}, nil
	})
	m := adapterRun(t, r, "thr_ap", "run_ap")
	if !r.slotHeld(t) {
		t.Fatal("the adapter's run holds no slot")
	}
	if failed := r.handle(t, record("1", m)); len(failed) != 0 {
		t.Fatal(failed)
	}
	run := r.run(t, "run_ap")
	if run.Status != store.RunWaitingApproval || run.Approval == nil || run.Approval.Prompt != "Refund 20 EUR?" || run.Result.Text != "I can refund 20 EUR." {
		t.Fatalf("waiting run %+v", run)
	}
	if r.slotHeld(t) {
		t.Fatal("a run waiting for a human still holds its in-flight slot")
	}
	if got := r.eventTypes(t); !slices.Equal(got[len(got)-2:], []string{EventMessageSent, EventRunRequiresApproval}) {
		t.Fatalf("events %v", got)
	}
	req := run.Approval
	if req.ID == "" || !slices.Equal(req.Approvers, []string{"boss"}) || req.ExpiresAt.Before(time.Now().Add(59*time.Minute)) || req.ExpiresAt.After(time.Now().Add(time.Hour)) {
		t.Fatalf("approval request %+v: want an id, the adapter's approvers and an expiry an hour away", req)
	}
	// The event carries one token per approver and option, and one to deny; each verifies for
	// exactly what it says.
	links := r.decisionLinks(t)
	keys, _ := approval.NewKeys(time.Now, approvalKey)
	base := "/webhook/ops/threads/thr_ap/runs/run_ap/"
	want := []approval.Link{{Approver: "boss", Decision: approval.Approve, Option: "refund"}, {Approver: "boss", Decision: approval.Approve, Option: "refuse"}, {Approver: "boss", Decision: approval.Deny}}
	if len(links) != len(want) {
		t.Fatalf("decisions %+v", links)
	}
	for i, l := range links {
		tok, err := keys.Verify(l.Token)
		w := approval.Token{Workspace: "ws", RunID: "run_ap", RequestID: req.ID, Approver: want[i].Approver, Decision: want[i].Decision, Option: want[i].Option, Expires: req.ExpiresAt}
		if err != nil || tok != w || l.Path != base+want[i].Decision+"?token="+l.Token {
			t.Errorf("decision %d %+v: token %+v %v, want %+v", i, l, tok, err, w)
		}
	}
	// A stale decision message (none recorded) does nothing.
	if failed := r.handle(t, record("x", decidedMessage(m))); len(failed) != 0 || len(r.agent.kinds("")) != 2 {
		t.Fatalf("stale decision: failed %v, calls %v", failed, r.agent.kinds(""))
	}
	if _, err := r.st.DecideRun(context.Background(), "ws", "run_ap", store.Decision{RequestID: req.ID, Approved: true, By: "boss", Option: "refund"}); err != nil {
		t.Fatal(err)
	}
	if failed := r.handle(t, record("2", decidedMessage(m))); len(failed) != 0 {
		t.Fatal(failed)
	}
	run = r.run(t, "run_ap")
	if run.Status != store.RunCompleted || run.Result.Text != "Refunded." || run.Approval.Decision != store.DecisionApproved {
		t.Fatalf("approved run %+v", run)
	}
	r.wantKinds(t, "", agent.KindSessionStart, agent.KindUserSpeak, agent.KindApproval)
	if got := r.eventTypes(t); !slices.Equal(got[len(got)-2:], []string{EventMessageSent, EventRunCompleted}) {
		t.Fatalf("events %v", got)
	}
	msgs, _ := r.st.ListMessages(context.Background(), "ws", "thr_ap", 10)
	if len(msgs) != 3 || msgs[2].Text != "Refunded." {
		t.Fatalf("messages %+v", msgs)
	}
}

func TestDeniedRunStaysDeniedAndTheAgentIsTold(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) {
		switch req.Kind {
		case agent.KindUserSpeak:
			return agent.Reply{Actions: []agent.Action{{Type: agent.ActionRequestApproval, Prompt: "Delete the account?"}}}, nil
		case agent.KindApproval:
			if req.Decision.Approved {
				return agent.Reply{}, &agent.Error{Reason: "told approved"}
			}
			return speak("Understood, I will not delete it."), nil
		}
		return agent.Reply{}, nil
	})
	m := adapterRun(t, r, "thr_dn", "run_dn")
	if failed := r.handle(t, record("1", m)); len(failed) != 0 {
		t.Fatal(failed)
	}
	run := r.run(t, "run_dn")
	if run.Status != store.RunWaitingApproval || run.Result != nil {
		t.Fatalf("waiting run %+v", run)
	}
	if _, err := r.st.DecideRun(context.Background(), "ws", "run_dn", store.Decision{RequestID: run.Approval.ID, Approved: false, By: "alice"}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second is a redelivery: nothing more is recorded
		if failed := r.handle(t, record("2", decidedMessage(m))); len(failed) != 0 {
			t.Fatal(failed)
		}
	}
	if run := r.run(t, "run_dn"); run.Status != store.RunDenied {
		t.Fatalf("denied run %+v", run)
	}
	msgs, _ := r.st.ListMessages(context.Background(), "ws", "thr_dn", 10)
	if len(msgs) != 2 || msgs[1].Text != "Understood, I will not delete it." {
		t.Fatalf("messages %+v", msgs)
	}
	got := r.eventTypes(t)
	if got[len(got)-1] != EventMessageSent || slices.Contains(got, EventRunCompleted) {
		t.Fatalf("events %v", got)
	}
	if n := slices.Index(got, EventMessageSent); n != len(got)-1 {
		t.Fatalf("the denial's reply was recorded twice: %v", got)
	}
}

func TestCancelledRunIsNotRun(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, echoing)
	m := adapterRun(t, r, "thr_c", "run_c")
	if _, err := r.st.CancelRun(context.Background(), "ws", "run_c", "alice"); err != nil {
		t.Fatal(err)
	}
	if failed := r.handle(t, record("1", m)); len(failed) != 0 {
		t.Fatal(failed)
	}
	if n := len(r.agent.kinds("")); n != 0 {
		t.Fatalf("the agent was called %d times for a cancelled run", n)
	}
	if run := r.run(t, "run_c"); run.Status != store.RunCancelled {
		t.Fatalf("run %+v", run)
	}
	if r.slotHeld(t) {
		t.Fatal("a cancelled run still holds its slot")
	}
}

func TestBindingReportIsStoredAndRecorded(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, echoing)
	m := queue.Inbound{Version: queue.InboundVersion, WorkspaceID: "ws", MessageID: "msg_b", Group: "binding",
		Binding: &queue.Binding{Channel: "whatsapp", BindingID: "b1", Status: "connected", ReportedAt: time.Now()}}
	if failed := r.handle(t, record("1", m)); len(failed) != 0 {
		t.Fatal(failed)
	}
	if got := r.eventTypes(t); !slices.Equal(got, []string{EventBindingStatus}) {
		t.Fatalf("events %v", got)
	}
}

func TestUnprocessableMessagesFail(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, echoing)
	bad := events.SQSMessage{MessageId: "bad", Body: "{not json", Attributes: map[string]string{"MessageGroupId": "g"}}
	old := record("old", message("thr_o", "ro", "hi"))
	old.Body = `{"v":99,"workspace_id":"ws","message_id":"m"}`
	if failed := r.handle(t, bad, old); !slices.Equal(failed, []string{"bad", "old"}) {
		t.Fatalf("failed %v", failed)
	}
}

// A decided turn that asks for approval again ends with the run waiting and its decision cleared.
// If that turn died before its reply (FinishRunWith's second write), the decided message comes
// back to a run with no decision: it is not a stale one to drop, and the reply is stored then.
func TestRedeliveredDecisionStoresTheReplyOfARepeatedRequest(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) {
		return agent.Reply{Actions: []agent.Action{
			{Type: agent.ActionSpeak, Text: fmt.Sprintf("turn %d", n)},
			{Type: agent.ActionRequestApproval, Prompt: "Go on?", Options: []string{"yes"}},
		}}, nil
	})
	ctx := context.Background()
	m := adapterRun(t, r, "thr_ap", "run_ap")
	if failed := r.handle(t, record("1", m)); len(failed) != 0 {
		t.Fatal(failed)
	}
	run := r.run(t, "run_ap")
	if _, err := r.st.DecideRun(ctx, "ws", "run_ap", store.Decision{RequestID: run.Approval.ID, Approved: true, By: "boss", Option: "yes"}); err != nil {
		t.Fatal(err)
	}
	if failed := r.handle(t, record("2", decidedMessage(m))); len(failed) != 0 {
		t.Fatal(failed)
	}
	run = r.run(t, "run_ap")
	msgs, _ := r.st.ListMessages(ctx, "ws", "thr_ap", 10)
	if run.Status != store.RunWaitingApproval || run.Approval.Decision != "" || len(msgs) != 3 {
		t.Fatalf("after the decided turn: %+v, %d messages", run, len(msgs))
	}
	reply := msgs[2]
	sk := "MSG#" + reply.CreatedAt.UTC().Format("20060102T150405.000000000Z") + "#" + reply.ID
	if _, err := r.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &r.table, Key: map[string]ddbtypes.AttributeValue{
		"pk": &ddbtypes.AttributeValueMemberS{Value: "WS#ws#THR#thr_ap"}, "sk": &ddbtypes.AttributeValueMemberS{Value: sk},
	}}); err != nil {
		t.Fatal(err)
	}
	events, calls := len(r.eventTypes(t)), len(r.agent.kinds(""))
	if failed := r.handle(t, record("2", decidedMessage(m))); len(failed) != 0 {
		t.Fatal(failed)
	}
	msgs, _ = r.st.ListMessages(ctx, "ws", "thr_ap", 10)
	if len(msgs) != 3 || msgs[2].ID != reply.ID || msgs[2].Text != reply.Text {
		t.Fatalf("messages after the redelivered decision: %+v", msgs)
	}
	if len(r.eventTypes(t)) != events || len(r.agent.kinds("")) != calls {
		t.Fatalf("the redelivery added events (%d, was %d) or agent calls (%d, was %d)", len(r.eventTypes(t)), events, len(r.agent.kinds("")), calls)
	}
}

// The failure delay doubles with each receive, up to maxFailureDelay; 0 leaves the message to the
// queue's visibility timeout, and a batch handed back whole is then not postponed at all.
func TestFailureDelayDoublesPerReceive(t *testing.T) {
	h := &Handler{cfg: Config{FailureDelay: 10 * time.Second}}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 320 * time.Second, 640 * time.Second, maxFailureDelay, maxFailureDelay}
	var total time.Duration
	for i, w := range want {
		rec := events.SQSMessage{Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(i + 1)}}
		if got := h.failureDelay(rec, errors.New("table unreachable")); got != w {
			t.Fatalf("receive %d: %v, want %v", i+1, got, w)
		}
	}
	for i := range 20 { // InboundDLQ takes a message after 20 receives
		total += h.failureDelay(events.SQSMessage{Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(i + 1)}}, errors.New("table unreachable"))
	}
	// A message no retry can process reaches the DLQ in 20 plain delays, not in hours.
	if got := h.failureDelay(events.SQSMessage{Attributes: map[string]string{"ApproximateReceiveCount": "9"}}, fmt.Errorf("decode: %w", errUnprocessable)); got != 10*time.Second {
		t.Fatalf("an unprocessable message waits %v", got)
	}
	if total < 3*time.Hour {
		t.Fatalf("20 receives span %v: an outage of that long dead-letters the queue", total)
	}
	vis := &visibility{}
	h = &Handler{cfg: Config{FailureDelay: 0}, visibility: vis, logger: slog.New(slog.DiscardHandler)}
	resp := h.GiveBack(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "a", ReceiptHandle: "ra"}}}, errors.New("down"))
	if len(resp.BatchItemFailures) != 1 || len(vis.calls) != 0 {
		t.Fatalf("FailureDelay 0: failures %+v, postponed %+v", resp.BatchItemFailures, vis.calls)
	}
}

// The run that opens a thread records its session start on its own item, in the change that ends
// its turn: the thread's first turn writes nothing to the thread for it. The thread's next run
// finds it there, and the thread records it from then on.
func TestSessionStartIsRecordedWithTheFirstTurn(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, echoing)
	ctx := context.Background()
	r.handleAll(t, record("1", message("thr_s", "s1", "hello")))
	th, err := r.st.GetThread(ctx, "ws", "thr_s")
	if err != nil || th.SessionStarted || th.SessionRun != "s1" {
		t.Fatalf("thread after its first turn: %+v, %v; want its session owed by s1 and nothing recorded there", th, err)
	}
	if run := r.run(t, "s1"); !run.SessionStarted || run.Status != store.RunCompleted {
		t.Fatalf("first run %+v; want completed with its session start recorded", run)
	}
	r.handleAll(t, record("2", message("thr_s", "s2", "again")))
	if th, err := r.st.GetThread(ctx, "ws", "thr_s"); err != nil || !th.SessionStarted {
		t.Fatalf("thread after its second turn: %+v, %v; want its session start recorded", th, err)
	}
	r.handleAll(t, record("3", message("thr_s", "s3", "more")))
	r.wantKinds(t, "thr_s", agent.KindSessionStart, agent.KindUserSpeak, agent.KindUserSpeak, agent.KindUserSpeak)
}

// A first turn whose session start succeeded and whose user_speak failed: the retry, and the
// thread's next run, do not start the session again.
func TestSessionStartBeforeAFailedTurnIsNotRepeated(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Kind == agent.KindUserSpeak && n == 2 {
			return agent.Reply{}, &agent.Error{Retryable: true, Reason: "agent answered 502"}
		}
		return echoing(req, n)
	})
	first := record("1", message("thr_f", "f1", "hello"))
	if failed := r.handle(t, first); len(failed) != 1 {
		t.Fatalf("first delivery: failed %v; want it retried", failed)
	}
	if failed := r.handle(t, first); len(failed) != 0 {
		t.Fatalf("retry: failed %v", failed)
	}
	r.handleAll(t, record("2", message("thr_f", "f2", "again")))
	r.wantKinds(t, "thr_f", agent.KindSessionStart, agent.KindUserSpeak, agent.KindUserSpeak, agent.KindUserSpeak)
}

// A first run whose session start failed: the thread's next run starts the session.
func TestSessionStartThatFailedIsMadeByTheNextRun(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Kind == agent.KindSessionStart && n == 1 {
			return agent.Reply{}, &agent.Error{Reason: "agent answered 400"}
		}
		return echoing(req, n)
	})
	r.handleAll(t, record("1", message("thr_x", "x1", "hello")))
	if run := r.run(t, "x1"); run.Status != store.RunFailed || run.SessionStarted {
		t.Fatalf("first run %+v; want failed without a session start", run)
	}
	r.handleAll(t, record("2", message("thr_x", "x2", "again")), record("3", message("thr_x", "x3", "more")))
	r.wantKinds(t, "thr_x", agent.KindSessionStart, agent.KindSessionStart, agent.KindUserSpeak, agent.KindUserSpeak)
}

// A run that asks for approval twice, saying nothing more after the first decision: each turn's
// events lead with the same reply's message.sent, and each is in the log once, the second
// request's included.
func TestSecondApprovalWithoutNewTextIsRecorded(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) {
		switch req.Kind {
		case agent.KindUserSpeak:
			return askRefund(), nil
		case agent.KindApproval:
			if req.Decision.Comment == "" {
				return agent.Reply{Actions: []agent.Action{{Type: agent.ActionRequestApproval, Prompt: "Really?"}}}, nil
			}
			return agent.Reply{}, nil
		}
		return agent.Reply{}, nil
	})
	ctx := context.Background()
	m := adapterRun(t, r, "thr_2a", "run_2a")
	for i, comment := range []string{"", "", "sure"} {
		if i > 0 {
			run := r.run(t, "run_2a")
			if _, err := r.st.DecideRun(ctx, "ws", "run_2a", store.Decision{RequestID: run.Approval.ID, Approved: true, By: "boss", Comment: comment}); err != nil {
				t.Fatal(err)
			}
			m = decidedMessage(m)
			m.MessageID += strconv.Itoa(i)
		}
		if failed := r.handle(t, record(strconv.Itoa(i), m)); len(failed) != 0 {
			t.Fatalf("turn %d: failed %v", i, failed)
		}
		if i == 0 { // the first turn's message again: its events are in the log once
			if failed := r.handle(t, record("again", m)); len(failed) != 0 {
				t.Fatalf("repeat: failed %v", failed)
			}
		}
	}
	if run := r.run(t, "run_2a"); run.Status != store.RunCompleted || run.Result.Text != "I can refund 20 EUR." {
		t.Fatalf("run %+v", run)
	}
	count := map[string]int{}
	for _, typ := range r.eventTypes(t) {
		count[typ]++
	}
	if count[EventRunRequiresApproval] != 2 || count[EventMessageSent] != 1 || count[EventRunCompleted] != 1 || count[EventMessageReceived] != 1 {
		t.Fatalf("events %v; want two requests for approval, one reply, one completion", count)
	}
}
