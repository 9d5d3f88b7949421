package worker

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/shared/agent"
	"github.com/hookgate/hookgate/shared/store"
)

// Attacks on the session start recorded by the thread's first run (Thread.SessionRun).

// A repost of a finished run under the same idempotency key naming another thread (the generic
// door derives the run id from the key alone, the thread from channel and external id): the worker's
// thread write comes before the run's put, so the new thread is created with the other thread's
// run as its opener. That run made its own thread's session start, so the new thread's first real
// run must not take it for its own.
func TestAttackRepostOnAnotherThreadDoesNotStartItsSession(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, echoing)
	r.handleAll(t, record("1", message("thr_one", "k1", "hello")))
	repost := message("thr_two", "k1", "hello") // same key: same run and message ids
	if failed := r.handle(t, record("2", repost)); len(failed) != 0 {
		t.Fatalf("repost failed %v", failed)
	}
	r.handleAll(t, record("3", message("thr_two", "k2", "first words on two")))
	if got := r.agent.kinds("thr_two"); !slices.Equal(got, []string{agent.KindSessionStart, agent.KindUserSpeak}) {
		t.Fatalf("agent saw %v on thr_two; want its session started before its first turn", got)
	}
}

// The thread's first run is cancelled while the agent answers its first turn: the run's change that
// would record the session start is refused (the run is no longer running). The agent has had
// session_start all the same: the thread's next run must not send it again. (The run is held until
// its turn ends or the hold's timer writes it: the agent waits for the timer.)
func TestAttackFirstRunCancelledDuringItsTurnDoesNotRepeatTheSessionStart(t *testing.T) {
	t.Parallel()
	var r *rig
	r = newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Kind == agent.KindUserSpeak && req.RunID == "c1" {
			r.whenRunExists(t, "c1")
			if _, err := r.st.CancelRun(context.Background(), "ws", "c1", "alice"); err != nil {
				return agent.Reply{}, err
			}
		}
		return echoing(req, n)
	})
	r.handleAll(t, record("1", message("thr_c", "c1", "hello")))
	if run := r.run(t, "c1"); run.Status != store.RunCancelled {
		t.Fatalf("first run %+v; want cancelled", run)
	}
	r.handleAll(t, record("2", message("thr_c", "c2", "again")))
	r.wantKinds(t, "thr_c", agent.KindSessionStart, agent.KindUserSpeak, agent.KindUserSpeak)
}

// The thread's first run waits for approval; the thread's next message runs meanwhile: the
// opener recorded its session start with the waiting turn, so the session is not started again.
func TestAttackNextRunWhileTheFirstWaitsForApproval(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Kind == agent.KindUserSpeak && req.RunID == "w1" {
			return agent.Reply{Actions: []agent.Action{{Type: agent.ActionRequestApproval, Prompt: "Refund?"}}}, nil
		}
		return echoing(req, n)
	})
	r.handleAll(t, record("1", message("thr_w", "w1", "refund")))
	if run := r.run(t, "w1"); run.Status != store.RunWaitingApproval || !run.SessionStarted {
		t.Fatalf("first run %+v; want waiting with its session start recorded", run)
	}
	r.handleAll(t, record("2", message("thr_w", "w2", "hello?")), record("3", message("thr_w", "w3", "still there?")))
	r.wantKinds(t, "thr_w", agent.KindSessionStart, agent.KindUserSpeak, agent.KindUserSpeak, agent.KindUserSpeak)
}

// The thread's first message created its run and never got further (its message went to the DLQ
// with the run left running): the next run starts the session, once.
func TestAttackFirstMessageLostAfterItsRunWasCreated(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, echoing)
	first := message("thr_d", "d1", "hello")
	if _, _, err := r.st.CreateRunWith(context.Background(), store.NewRun{
		Thread:  store.Thread{ID: "thr_d", WorkspaceID: "ws", Channel: first.Channel, ExternalID: first.ExternalID},
		Message: store.Message{ID: first.MessageID, Direction: "in", Source: first.Source, Text: first.Text, CreatedAt: first.ReceivedAt},
		Run:     store.Run{ID: "d1"}, Start: true,
	}); err != nil {
		t.Fatal(err)
	}
	r.handleAll(t, record("2", message("thr_d", "d2", "anyone?")), record("3", message("thr_d", "d3", "hello?")))
	r.wantKinds(t, "thr_d", agent.KindSessionStart, agent.KindUserSpeak, agent.KindUserSpeak)
}

// Threads stored before session_run was kept: one whose session had started gets no second start;
// one whose session had not (its first run failed before it) gets one, once.
func TestAttackLegacyThreadsWithoutSessionRun(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, echoing)
	ctx := context.Background()
	legacy := func(thread string, started bool) {
		m := message(thread, thread+"-old", "old")
		if _, _, err := r.st.CreateRunWith(ctx, store.NewRun{
			Thread:  store.Thread{ID: thread, WorkspaceID: "ws", Channel: m.Channel, ExternalID: m.ExternalID},
			Message: store.Message{ID: m.MessageID, Direction: "in", Source: m.Source, Text: m.Text, CreatedAt: m.ReceivedAt},
			Run:     store.Run{ID: thread + "-old"},
		}); err != nil {
			t.Fatal(err)
		}
		key := map[string]ddbtypes.AttributeValue{
			"pk": &ddbtypes.AttributeValueMemberS{Value: "WS#ws#THR#" + thread}, "sk": &ddbtypes.AttributeValueMemberS{Value: "META"},
		}
		if _, err := r.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &r.table, Key: key, UpdateExpression: aws.String("REMOVE session_run"),
			ConditionExpression: aws.String("attribute_exists(session_run)")}); err != nil {
			t.Fatalf("thread item key: %v", err)
		}
		if started {
			if err := r.st.MarkSessionStarted(ctx, "ws", thread); err != nil {
				t.Fatal(err)
			}
		}
		if th, err := r.st.GetThread(ctx, "ws", thread); err != nil || th.SessionRun != "" || th.SessionStarted != started {
			t.Fatalf("legacy thread %+v, %v", th, err)
		}
	}
	legacy("thr_ls", true)
	legacy("thr_ln", false)
	for i, thread := range []string{"thr_ls", "thr_ln", "thr_ls", "thr_ln"} {
		r.handleAll(t, record(thread+string(rune('0'+i)), message(thread, thread+string(rune('0'+i)), "hi")))
	}
	if got := r.agent.kinds("thr_ls"); !slices.Equal(got, []string{agent.KindUserSpeak, agent.KindUserSpeak}) {
		t.Fatalf("started legacy thread: agent saw %v", got)
	}
	if got := r.agent.kinds("thr_ln"); !slices.Equal(got, []string{agent.KindSessionStart, agent.KindUserSpeak, agent.KindUserSpeak}) {
		t.Fatalf("unstarted legacy thread: agent saw %v", got)
	}
}

// The thread's first run expired (its item gone, RetentionDays) while the thread stayed: the next
// run starts the session again, once.
func TestAttackOpenerRunExpired(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, echoing)
	ctx := context.Background()
	r.handleAll(t, record("1", message("thr_e", "e1", "hello")))
	if _, err := r.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &r.table, Key: map[string]ddbtypes.AttributeValue{
		"pk": &ddbtypes.AttributeValueMemberS{Value: "WS#ws#RUN#e1"}, "sk": &ddbtypes.AttributeValueMemberS{Value: "RUN"},
	}, ConditionExpression: aws.String("attribute_exists(pk)")}); err != nil {
		t.Fatalf("run item key: %v", err)
	}
	if _, err := r.st.GetRun(ctx, "ws", "e1"); err == nil {
		t.Fatal("run still there")
	}
	for i, id := range []string{"e2", "e3"} {
		r.handleAll(t, record(string(rune('2'+i)), message("thr_e", id, "again")))
	}
	r.wantKinds(t, "thr_e", agent.KindSessionStart, agent.KindUserSpeak, agent.KindSessionStart, agent.KindUserSpeak, agent.KindUserSpeak)
}

// flakyLog fails its first append, as a throttled table does once.
type flakyLog struct {
	EventLog
	mu     sync.Mutex
	failed bool
}

func (l *flakyLog) AppendEventsAfter(ctx context.Context, lead string, evs []store.Event) ([]store.Event, error) {
	l.mu.Lock()
	first := !l.failed
	l.failed = true
	l.mu.Unlock()
	if first {
		return nil, errors.New("throttled")
	}
	return l.EventLog.AppendEventsAfter(ctx, lead, evs)
}

// A run created started counts its first attempt before its opening events are appended: a
// failure of that append (a table blip) is retried by the queue, and the retry's StartRun counts a
// second attempt. The retry schedule's length is the number of agent attempts (Config.Retry), so an
// agent that keeps failing must still be called that many times.
func TestAttackFailedOpeningAppendSpendsNoAgentAttempt(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Kind == agent.KindUserSpeak {
			return agent.Reply{}, &agent.Error{Retryable: true, Reason: "agent answered 503"}
		}
		return agent.Reply{}, nil
	})
	r.h.log = &flakyLog{EventLog: r.st}
	m := record("1", message("thr_t", "t1", "hello"))
	for i := 0; i < 10; i++ {
		if failed := r.handle(t, m); len(failed) == 0 {
			break
		}
	}
	run := r.run(t, "t1")
	speaks := 0
	for _, k := range r.agent.kinds("thr_t") {
		if k == agent.KindUserSpeak {
			speaks++
		}
	}
	if run.Status != store.RunFailed || speaks != len(r.h.cfg.Retry) {
		t.Fatalf("run %s after %d agent attempts (%q); want failed after %d", run.Status, speaks, run.Error, len(r.h.cfg.Retry))
	}
}
