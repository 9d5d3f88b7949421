package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/shared/agent"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

var turnTypes = []string{EventMessageReceived, EventRunCreated, EventMessageSent, EventRunCompleted}

// markers counts the workspace's event id markers: one per group of events appended.
func (r *rig) markers(t *testing.T) int {
	t.Helper()
	out, err := r.db.Scan(context.Background(), &dynamodb.ScanInput{
		TableName: &r.table, ConsistentRead: aws.Bool(true), Select: types.SelectCount,
		FilterExpression:          aws.String("begins_with(pk, :p)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "WS#ws#EVID#"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return int(out.Count)
}

// onceEach fails the test unless the log holds each event once, at cursors 1, 2, 3, … with these
// types in this order.
func (r *rig) onceEach(t *testing.T, want ...string) {
	t.Helper()
	evs, ok := r.logOnce(t, 1000)
	if !ok {
		t.FailNow()
	}
	var got []string
	for i, e := range evs {
		if e.Cursor != int64(i+1) {
			t.Fatalf("event %d %s (%s) at cursor %d: after a gap", i, e.ID, e.Type, e.Cursor)
		}
		got = append(got, e.Type)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// A turn that ends within Hold appends its opening and closing events as one group: one reservation
// and one id marker for the run's four events instead of two of each. The run's change names the
// group's lead, and a redelivery of the message appends nothing.
func TestQuickTurnAppendsItsEventsAsOneGroup(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, echoing)
	r.h.cfg.Hold = time.Minute // the turn ends within it however loaded the machine
	m := message("thr_q", "q1", "hello")
	r.handleAll(t, record("1", m))
	r.onceEach(t, turnTypes...)
	if n := r.markers(t); n != 1 {
		t.Fatalf("%d id markers for one quick turn; want 1", n)
	}
	if lead, want := r.run(t, "q1").EventsLead, ids.Derive("evt", "ws", m.MessageID, EventMessageReceived); lead != want {
		t.Fatalf("run's events lead %q, want message.received's id %q", lead, want)
	}
	r.handleAll(t, record("2", m))
	r.onceEach(t, turnTypes...)
	r.wantKinds(t, "thr_q", agent.KindSessionStart, agent.KindUserSpeak)

	// Without the hold (Config.Hold 0: the form before it), the same turn takes two groups.
	r0 := newRig(t, 0, echoing)
	r0.h.cfg.Hold = 0
	r0.handleAll(t, record("1", message("thr_q", "q1", "hello")))
	r0.onceEach(t, turnTypes...)
	if n := r0.markers(t); n != 2 {
		t.Fatalf("%d id markers without the hold; want 2", n)
	}
}

// A turn that takes longer than Hold does not keep its thread's readers waiting for the user's
// message: the opening events are in the log while the agent is still answering, and the closing
// events follow as a group of their own.
func TestSlowTurnsOpeningEventsAreInTheLogWhileTheAgentAnswers(t *testing.T) {
	t.Parallel()
	seen := make(chan []string, 1)
	var r *rig
	r = newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Kind == agent.KindUserSpeak {
			seen <- r.waitForEvents(2)
		}
		return echoing(req, n)
	})
	r.handleAll(t, record("1", message("thr_s", "s1", "hello")))
	if got := <-seen; !slices.Equal(got, turnTypes[:2]) {
		t.Fatalf("while the agent answered the log held %v; want %v", got, turnTypes[:2])
	}
	r.onceEach(t, turnTypes...)
	if n := r.markers(t); n != 2 {
		t.Fatalf("%d id markers; want 2 (the opening group, then the closing one)", n)
	}
	if lead := r.run(t, "s1").EventsLead; lead != "" {
		t.Fatalf("run's events lead %q; want none", lead)
	}
}

// waitForEvents waits (up to 20 s) until the log holds n events, and returns their types.
func (r *rig) waitForEvents(n int) []string {
	var got []string
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		evs, err := r.st.ListEvents(context.Background(), "ws", 0, 100)
		got = got[:0]
		for _, e := range evs {
			got = append(got, e.Type)
		}
		if err == nil && len(evs) >= n {
			break
		}
	}
	return got
}

// The turn's events are appended as one group, then settled again in parts by every later path
// that settles the run: the stale decision (the run waits, nothing was decided), the redelivered
// message, and the decided turn. None appends an event twice, and the decided turn's events follow.
func TestHeldGroupIsFoundByEveryLaterSettle(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) {
		switch req.Kind {
		case agent.KindUserSpeak:
			return askRefund("refund"), nil
		case agent.KindApproval:
			return speak("Refunded."), nil
		}
		return agent.Reply{}, nil
	})
	r.h.cfg.Hold = time.Minute // the turn ends within it however loaded the machine
	m := message("thr_h", "h1", "refund please")
	r.handleAll(t, record("1", m))
	asked := []string{EventMessageReceived, EventRunCreated, EventMessageSent, EventRunRequiresApproval}
	r.onceEach(t, asked...)
	if n := r.markers(t); n != 1 {
		t.Fatalf("%d id markers; want 1", n)
	}
	r.handleAll(t, record("2", decidedMessage(m))) // stale: nothing decided yet
	r.handleAll(t, record("3", m))                 // the message again (its delete was lost)
	r.onceEach(t, asked...)
	run := r.run(t, "h1")
	if _, err := r.st.DecideRun(context.Background(), "ws", "h1", store.Decision{RequestID: run.Approval.ID, Approved: true, By: "boss", Option: "refund"}); err != nil {
		t.Fatal(err)
	}
	r.handleAll(t, record("4", decidedMessage(m)))
	r.handleAll(t, record("5", decidedMessage(m)))
	r.handleAll(t, record("6", m))
	done := append(slices.Clip(asked), EventMessageSent, EventRunCompleted)
	r.onceEach(t, done...)
	if run := r.run(t, "h1"); run.Status != store.RunCompleted || run.EventsLead != "" {
		t.Fatalf("run %s with events lead %q; want completed, its last turn's events a group of their own", run.Status, run.EventsLead)
	}
}

// failFirst is an event log whose first append fails (a throttled table), after which it tells.
type failFirst struct {
	EventLog
	once   sync.Once
	failed chan struct{}
}

func (l *failFirst) AppendEventsAfter(ctx context.Context, lead string, evs []store.Event) ([]store.Event, error) {
	first := false
	l.once.Do(func() { first = true })
	if first {
		defer close(l.failed)
		return nil, errors.New("throttled")
	}
	return l.EventLog.AppendEventsAfter(ctx, lead, evs)
}

// The hold's own append of the opening events fails while the agent answers: the turn appends them
// with its closing events, so the message succeeds at once with every event in order.
func TestTurnAppendsTheOpeningEventsTheHoldFailedToAppend(t *testing.T) {
	t.Parallel()
	log := &failFirst{failed: make(chan struct{})}
	r := newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Kind == agent.KindUserSpeak {
			<-log.failed
		}
		return echoing(req, n)
	})
	log.EventLog = r.st
	r.h.log = log
	r.handleAll(t, record("1", message("thr_f", "f1", "hello")))
	r.onceEach(t, turnTypes...)
	if n := r.markers(t); n != 1 {
		t.Fatalf("%d id markers; want 1", n)
	}
}

// A run cancelled while its agent answers: the turn's change is refused, and the opening events
// it held are appended alone (the run's change does not name them), once. A held run can be
// cancelled only once the hold's timer wrote it: here its append of the opening events fails, so
// that the turn still holds them.
func TestHeldOpeningOfARunCancelledDuringItsTurn(t *testing.T) {
	t.Parallel()
	log := &failFirst{failed: make(chan struct{})}
	var r *rig
	r = newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Kind == agent.KindUserSpeak {
			<-log.failed // the timer wrote the run, and failed to append the opening events
			if _, err := r.st.CancelRun(context.Background(), "ws", "c1", "alice"); err != nil {
				return agent.Reply{}, err
			}
		}
		return echoing(req, n)
	})
	log.EventLog = r.st
	r.h.log = log
	m := message("thr_c", "c1", "hello")
	r.handleAll(t, record("1", m))
	r.handleAll(t, record("2", m))
	r.onceEach(t, turnTypes[:2]...)
	if run := r.run(t, "c1"); run.Status != store.RunCancelled || run.EventsLead != "" {
		t.Fatalf("run %s with events lead %q; want cancelled, no lead", run.Status, run.EventsLead)
	}
}

// A turn whose agent fails for good within Hold: run.failed is appended in the opening's group.
func TestQuickFailedTurnAppendsItsEventsAsOneGroup(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Kind == agent.KindUserSpeak {
			return agent.Reply{}, &agent.Error{Reason: "agent answered 400"}
		}
		return agent.Reply{}, nil
	})
	r.h.cfg.Hold = time.Minute // the turn ends within it however loaded the machine
	m := message("thr_x", "x1", "hello")
	r.handleAll(t, record("1", m))
	r.handleAll(t, record("2", m))
	r.onceEach(t, EventMessageReceived, EventRunCreated, EventRunFailed)
	if n := r.markers(t); n != 1 {
		t.Fatalf("%d id markers; want 1", n)
	}
}

// A retryable failure ends the message without ending the turn: the opening events are appended
// alone when the message's handling ends, before the retry.
func TestRetriedTurnAppendsItsOpeningEventsBeforeTheRetry(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Kind == agent.KindUserSpeak && n < 3 {
			return agent.Reply{}, &agent.Error{Retryable: true, Reason: fmt.Sprintf("agent answered 503 (%d)", n)}
		}
		return echoing(req, n)
	})
	m := message("thr_r", "r1", "hello")
	if failed := r.handle(t, record("1", m)); !slices.Equal(failed, []string{"1"}) {
		t.Fatalf("failed %v; want the message retried", failed)
	}
	r.onceEach(t, turnTypes[:2]...)
	r.handleAll(t, record("1", m))
	r.onceEach(t, turnTypes...)
}

// A webhook's event was recorded before, by a copy that started no run (no route for its role
// then), and a later copy of the same delivery starts a run whose turn ends within Hold. A
// redelivery of that message settles the run again: its closing events are found, not appended
// twice.
func TestRunStartedByAnEventRecordedBeforeSettlesAgainOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, echoing)
	r.h.cfg.Hold = time.Minute // the turn ends within it however loaded the machine
	m := message("thr_e", "e1", "")
	m.Event = &queue.Event{Subject: "stripe\x00evt_1", Type: "payment.succeeded", Data: `{"amount":20}`}
	alone := m
	alone.RunID, alone.ThreadID, alone.Group = "", "", "grp_e"
	r.handleAll(t, record("1", alone))
	r.handleAll(t, record("2", m))
	r.handleAll(t, record("3", m)) // the message again (its delete was lost)
	r.onceEach(t, "payment.succeeded", EventMessageReceived, EventRunCreated, EventMessageSent, EventRunCompleted)
}
