package worker

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/agent"
	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/approval"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/store"
)

// Tests of the held run: a new run this delivery creates is written once, when its turn ends
// within Config.Hold, directly in its final state; the hold's timer writes it running when the turn
// is slower, and any other end of the message writes it before it ends.

// call is one request the store made to DynamoDB: its operation and the key of the item (the
// first item, for a transaction).
type call struct {
	op, pk, sk, cond string
	consistent       bool
}

// meteredDB is the store's DynamoDB with every item request recorded, and every write refused
// while dead (a process that died: nothing it still tries lands).
type meteredDB struct {
	store.DB
	mu    sync.Mutex
	calls []call
	dead  atomic.Bool
}

var errDead = errors.New("the invocation died before this write landed")

func keyOf(item map[string]ddbtypes.AttributeValue) (string, string) {
	return attrS(item, "pk"), attrS(item, "sk")
}

func (d *meteredDB) record(c call) {
	d.mu.Lock()
	d.calls = append(d.calls, c)
	d.mu.Unlock()
}

func (d *meteredDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if d.dead.Load() {
		return nil, errDead
	}
	pk, sk := keyOf(in.Item)
	d.record(call{op: "PutItem", pk: pk, sk: sk, cond: aws.ToString(in.ConditionExpression)})
	return d.DB.PutItem(ctx, in, opts...)
}

func (d *meteredDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if d.dead.Load() {
		return nil, errDead
	}
	pk, sk := keyOf(in.Key)
	d.record(call{op: "UpdateItem", pk: pk, sk: sk, cond: aws.ToString(in.ConditionExpression)})
	return d.DB.UpdateItem(ctx, in, opts...)
}

func (d *meteredDB) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if d.dead.Load() {
		return nil, errDead
	}
	pk, sk := keyOf(in.Key)
	d.record(call{op: "DeleteItem", pk: pk, sk: sk})
	return d.DB.DeleteItem(ctx, in, opts...)
}

func (d *meteredDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if d.dead.Load() {
		return nil, errDead
	}
	for _, it := range in.TransactItems {
		switch {
		case it.Put != nil:
			pk, sk := keyOf(it.Put.Item)
			d.record(call{op: "TransactPut", pk: pk, sk: sk})
		case it.Update != nil:
			pk, sk := keyOf(it.Update.Key)
			d.record(call{op: "TransactUpdate", pk: pk, sk: sk})
		}
	}
	return d.DB.TransactWriteItems(ctx, in, opts...)
}

func (d *meteredDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	pk, sk := keyOf(in.Key)
	d.record(call{op: "GetItem", pk: pk, sk: sk, consistent: aws.ToBool(in.ConsistentRead)})
	return d.DB.GetItem(ctx, in, opts...)
}

// of returns the recorded requests on the thread's and the run's items (thread META, its messages,
// the run), in order, as "op sk" (the run's as "op RUN"); the event log's are left out.
func (d *meteredDB) of(thread, run string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, c := range d.calls {
		switch {
		case c.pk == "WS#ws#RUN#"+run:
			out = append(out, c.op+" RUN")
		case c.pk == "WS#ws#THR#"+thread && c.sk == "META":
			out = append(out, c.op+" META")
		case c.pk == "WS#ws#THR#"+thread && strings.HasPrefix(c.sk, "MSG#"):
			out = append(out, c.op+" MSG")
		}
	}
	return out
}

// runCalls returns the recorded requests on the run's item.
func (d *meteredDB) runCalls(run string) []call {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []call
	for _, c := range d.calls {
		if c.pk == "WS#ws#RUN#"+run {
			out = append(out, c)
		}
	}
	return out
}

// meteredRig is newRig whose worker's store is on a meteredDB.
func meteredRig(t *testing.T, respond func(agent.Request, int) (agent.Reply, error)) (*rig, *meteredDB) {
	t.Helper()
	db, table := emulatortest.Table(t, "worker")
	mdb := &meteredDB{DB: db}
	st := store.New(mdb, table, time.Now)
	sched, err := outbound.ParseSchedule("0s,2s,4s")
	if err != nil {
		t.Fatal(err)
	}
	// The test's own reads and writes go around the meter.
	r := &rig{db: db, table: table, st: store.New(db, table, time.Now), agent: &scripted{respond: respond}, vis: &visibility{}}
	keys, err := approval.NewKeys(time.Now, approvalKey)
	if err != nil {
		t.Fatal(err)
	}
	// A Hold the quick turns end within however loaded the machine.
	cfg := Config{Retry: sched, Lease: time.Minute, Approvals: keys, ApprovalTTL: time.Hour, Hold: time.Minute}
	r.h = New(cfg, st, st, registry{r.agent, 0}, r.vis, slog.New(slog.DiscardHandler), time.Now)
	return r, mdb
}

// heldCheck records, at each user_speak call, whether the run's item was missing from the table:
// the turn was running with its run held back.
type heldCheck struct {
	st      *store.Store
	mu      sync.Mutex
	missing []bool // per user_speak call, in order
}

func (c *heldCheck) see(runID string) {
	_, err := c.st.GetRun(context.Background(), "ws", runID)
	c.mu.Lock()
	c.missing = append(c.missing, apierr.CodeOf(err) == apierr.NotFound)
	c.mu.Unlock()
}

// wantHeld fails the test unless the run's item was missing at each user_speak call as want says.
func (c *heldCheck) wantHeld(t *testing.T, want ...bool) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Equal(c.missing, want) {
		t.Fatalf("run item missing at each agent turn: %v, want %v (true: the turn ran with its run held back)", c.missing, want)
	}
}

// A turn that ends within Hold writes its run once, directly in its final state, with a put that
// creates it: the run costs the thread's write, the run's, and its messages', and one consistent
// read of the run made before the agent is called (a run that exists is not run again).
func TestQuickTurnWritesItsRunOnce(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		respond func(agent.Request, int) (agent.Reply, error)
		status  string
		calls   []string
	}{
		{"completed", echoing, store.RunCompleted,
			[]string{"UpdateItem META", "GetItem RUN", "GetItem META", "PutItem RUN", "PutItem MSG", "PutItem MSG"}},
		{"failed", func(req agent.Request, _ int) (agent.Reply, error) {
			if req.Kind == agent.KindUserSpeak {
				return agent.Reply{}, &agent.Error{Reason: "agent answered 400"}
			}
			return agent.Reply{}, nil
		}, store.RunFailed, // a failed turn's session start is recorded on the thread
			[]string{"UpdateItem META", "GetItem RUN", "GetItem META", "UpdateItem META", "PutItem RUN", "PutItem MSG"}},
		{"waiting_approval", func(req agent.Request, _ int) (agent.Reply, error) {
			if req.Kind == agent.KindUserSpeak {
				return askRefund("refund"), nil
			}
			return agent.Reply{}, nil
		}, store.RunWaitingApproval,
			[]string{"UpdateItem META", "GetItem RUN", "GetItem META", "PutItem RUN", "PutItem MSG", "PutItem MSG"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var held *heldCheck
			r, mdb := meteredRig(t, func(req agent.Request, n int) (agent.Reply, error) {
				if req.Kind == agent.KindUserSpeak {
					held.see(req.RunID)
				}
				return c.respond(req, n)
			})
			held = &heldCheck{st: r.st}
			r.handleAll(t, record("1", message("thr_q", "q1", "hello")))
			held.wantHeld(t, true)
			if got := mdb.of("thr_q", "q1"); !slices.Equal(got, c.calls) {
				t.Fatalf("requests on the thread's and the run's items %v, want %v", got, c.calls)
			}
			runs := mdb.runCalls("q1")
			if len(runs) != 2 || !runs[0].consistent || runs[1].cond != "attribute_not_exists(pk)" {
				t.Fatalf("run item requests %+v; want a consistent read, then one put that creates it", runs)
			}
			run := r.run(t, "q1")
			if run.Status != c.status || run.Attempts != 1 || run.StartedAt == nil || run.SessionStarted != (c.status != store.RunFailed) || run.MessageID != "msg_q1" {
				t.Fatalf("run %+v; want %s at attempt 1, started, with its session start unless failed", run, c.status)
			}
			if c.status == store.RunWaitingApproval && (run.Approval == nil || run.Approval.ID == "" || run.Result.Text != "I can refund 20 EUR.") {
				t.Fatalf("waiting run %+v", run)
			}
			if n := r.markers(t); n != 1 {
				t.Fatalf("%d id markers; want the run's events as one group", n)
			}
			// The message again (its delete was lost): the run is found, and not run again.
			r.handleAll(t, record("1", message("thr_q", "q1", "hello")))
			if got := len(r.agent.kinds("")); got != 2 {
				t.Fatalf("%d agent calls after the redelivery; want 2", got)
			}
		})
	}
}

// The run's item is written as before where no hold applies: Hold 0 creates it running before the
// agent is called and changes it at the turn's end; an adapter's run (stored with its slot before
// it was queued) is started and changed.
func TestRunsNotHeldAreWrittenAsBefore(t *testing.T) {
	t.Parallel()
	r, mdb := meteredRig(t, echoing)
	r.h.cfg.Hold = 0
	r.handleAll(t, record("1", message("thr_z", "z1", "hello")))
	want := []string{"UpdateItem META", "PutItem RUN", "PutItem MSG", "GetItem META", "UpdateItem RUN", "PutItem MSG"}
	if got := mdb.of("thr_z", "z1"); !slices.Equal(got, want) {
		t.Fatalf("Hold 0: requests %v, want %v", got, want)
	}

	r, mdb = meteredRig(t, echoing)
	m := adapterRun(t, r, "thr_ad", "run_ad")
	r.handleAll(t, record("1", m))
	want = []string{"UpdateItem RUN", "GetItem META", "UpdateItem RUN", "PutItem MSG"}
	if got := mdb.of("thr_ad", "run_ad"); !slices.Equal(got, want) {
		t.Fatalf("adapter run: requests %v, want %v", got, want)
	}

	// A message that does not carry its thread's log shard (queued before it was carried): the
	// worker, which did not write the thread, reads the shard before appending the thread's events.
	r, mdb = meteredRig(t, echoing)
	m = adapterRun(t, r, "thr_ae", "run_ae")
	m.LogShard = nil
	r.handleAll(t, record("1", m))
	want = []string{"GetItem META", "UpdateItem RUN", "GetItem META", "UpdateItem RUN", "PutItem MSG"}
	if got := mdb.of("thr_ae", "run_ae"); !slices.Equal(got, want) {
		t.Fatalf("adapter run without its thread's shard: requests %v, want %v", got, want)
	}
}

// A message whose run ended (completed, failed, waiting for approval, cancelled), delivered again
// or reposted under the same idempotency key (same ids, received later), calls no agent and
// records nothing new: the run is read before the agent would be called.
func TestHeldRunThatEndedIsNotRunAgain(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		respond func(agent.Request, int) (agent.Reply, error)
		status  string
		cancel  bool // the turn is retried, then the run cancelled
	}{
		{"completed", echoing, store.RunCompleted, false},
		{"failed", func(req agent.Request, _ int) (agent.Reply, error) {
			if req.Kind == agent.KindUserSpeak {
				return agent.Reply{}, &agent.Error{Reason: "agent answered 400"}
			}
			return agent.Reply{}, nil
		}, store.RunFailed, false},
		{"waiting_approval", func(req agent.Request, _ int) (agent.Reply, error) {
			if req.Kind == agent.KindUserSpeak {
				return askRefund("refund"), nil
			}
			return agent.Reply{}, nil
		}, store.RunWaitingApproval, false},
		{"cancelled", func(req agent.Request, _ int) (agent.Reply, error) {
			if req.Kind == agent.KindUserSpeak {
				return agent.Reply{}, &agent.Error{Retryable: true, Reason: "agent answered 503"}
			}
			return agent.Reply{}, nil
		}, store.RunCancelled, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var held *heldCheck
			r, _ := meteredRig(t, func(req agent.Request, n int) (agent.Reply, error) {
				if req.Kind == agent.KindUserSpeak {
					held.see(req.RunID)
				}
				return c.respond(req, n)
			})
			held = &heldCheck{st: r.st}
			ctx := context.Background()
			m := message("thr_e", "e1", "hello")
			failed := r.handle(t, record("1", m))
			if c.cancel {
				if len(failed) != 1 {
					t.Fatalf("first delivery: failed %v; want it retried", failed)
				}
				if _, err := r.st.CancelRun(ctx, "ws", "e1", "alice"); err != nil {
					t.Fatal(err)
				}
			} else if len(failed) != 0 {
				t.Fatalf("first delivery: failed %v", failed)
			}
			held.wantHeld(t, true)
			calls, evs := r.agent.kinds(""), r.eventTypes(t)
			msgs, err := r.st.ListMessages(ctx, "ws", "thr_e", 10)
			if err != nil {
				t.Fatal(err)
			}
			repost := m
			repost.ReceivedAt = m.ReceivedAt.Add(7 * time.Minute)
			for i, rec := range []string{"1", "2"} { // the same delivery again, then the repost
				again := m
				if i == 1 {
					again = repost
				}
				if failed := r.handle(t, record(rec, again)); len(failed) != 0 {
					t.Fatalf("delivery %s again: failed %v", rec, failed)
				}
			}
			if got := r.agent.kinds(""); !slices.Equal(got, calls) {
				t.Fatalf("agent calls %v after the redelivery and the repost; want still %v", got, calls)
			}
			if got := r.eventTypes(t); !slices.Equal(got, evs) {
				t.Fatalf("events %v after the redelivery and the repost; want still %v", got, evs)
			}
			after, err := r.st.ListMessages(ctx, "ws", "thr_e", 10)
			if err != nil || len(after) != len(msgs) {
				t.Fatalf("messages %+v, %v; want still %d", after, err, len(msgs))
			}
			if run := r.run(t, "e1"); run.Status != c.status {
				t.Fatalf("run %s, want %s", run.Status, c.status)
			}
		})
	}
}

// A turn slower than Hold: the hold's timer writes the run running, its first attempt counted,
// before it appends the opening events, and the turn's end changes it as before.
func TestSlowHeldRunIsWrittenWhenTheHoldEnds(t *testing.T) {
	t.Parallel()
	var held *heldCheck
	var r *rig
	var mdb *meteredDB
	type seen struct {
		run  store.Run
		err  error
		evs  []string
		runs []call
	}
	got := make(chan seen, 1)
	r, mdb = meteredRig(t, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Kind == agent.KindUserSpeak {
			held.see(req.RunID)
			evs := r.waitForEvents(2) // the hold ends while the agent answers
			run, err := r.st.GetRun(context.Background(), "ws", req.RunID)
			got <- seen{run, err, evs, mdb.runCalls(req.RunID)}
		}
		return echoing(req, n)
	})
	held = &heldCheck{st: r.st}
	r.h.cfg.Hold = 2 * time.Second // long enough that the agent is called within it, however loaded the machine
	r.handleAll(t, record("1", message("thr_s", "s1", "hello")))
	held.wantHeld(t, true)
	s := <-got
	if !slices.Equal(s.evs, turnTypes[:2]) || s.err != nil || s.run.Status != store.RunRunning || s.run.Attempts != 1 {
		t.Fatalf("when the opening events were in the log: %v, run %+v %v; want the run there, running at attempt 1", s.evs, s.run, s.err)
	}
	if len(s.runs) != 2 || s.runs[1].op != "PutItem" || s.runs[1].cond != "attribute_not_exists(pk)" {
		t.Fatalf("run item requests when the opening events were in the log %+v; want the read, then the timer's put", s.runs)
	}
	r.onceEach(t, turnTypes...)
	if run := r.run(t, "s1"); run.Status != store.RunCompleted || run.Attempts != 1 || !run.SessionStarted || run.EventsLead != "" {
		t.Fatalf("run %+v; want completed at attempt 1, its session start recorded, no events lead", run)
	}
	want := []string{"UpdateItem META", "GetItem RUN", "GetItem META", "PutItem RUN", "PutItem MSG", "UpdateItem RUN", "PutItem MSG"}
	if got := mdb.of("thr_s", "s1"); !slices.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
}

// A held run's agent fails retryably: the message ends with the run written, its attempt counted
// (the retry schedule counts on it), and its opening events after it; the retry is the second
// attempt.
func TestHeldRunsRetriedAttemptIsCounted(t *testing.T) {
	t.Parallel()
	var held *heldCheck
	var r *rig
	var attempts []int
	r, _ = meteredRig(t, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Kind != agent.KindUserSpeak {
			return agent.Reply{}, nil
		}
		held.see(req.RunID)
		if run, err := r.st.GetRun(context.Background(), "ws", req.RunID); err == nil {
			attempts = append(attempts, run.Attempts)
		}
		if n == 2 {
			return agent.Reply{}, &agent.Error{Retryable: true, Reason: "agent answered 503"}
		}
		return echoing(req, n)
	})
	held = &heldCheck{st: r.st}
	m := message("thr_r", "r1", "hello")
	if failed := r.handle(t, record("1", m)); !slices.Equal(failed, []string{"1"}) {
		t.Fatalf("failed %v; want the message retried", failed)
	}
	if len(r.vis.calls) != 1 || r.vis.calls[0].delay != 2*time.Second {
		t.Fatalf("postponed %+v; want the schedule's second delay, 2s (the first attempt counted)", r.vis.calls)
	}
	if run := r.run(t, "r1"); run.Status != store.RunRunning || run.Attempts != 1 || run.StartedAt == nil {
		t.Fatalf("run after the retried turn %+v; want running at attempt 1", run)
	}
	r.onceEach(t, turnTypes[:2]...)
	if msgs, err := r.st.ListMessages(context.Background(), "ws", "thr_r", 10); err != nil || len(msgs) != 1 || msgs[0].ID != "msg_r1" {
		t.Fatalf("messages %+v, %v; want the inbound one", msgs, err)
	}
	r.handleAll(t, record("1", m))
	held.wantHeld(t, true, false)
	if !slices.Equal(attempts, []int{2}) {
		t.Fatalf("the agent saw the run at attempts %v; want the retry as attempt 2", attempts)
	}
	r.onceEach(t, turnTypes...)
	if run := r.run(t, "r1"); run.Status != store.RunCompleted || run.Attempts != 2 {
		t.Fatalf("run %+v; want completed at attempt 2", run)
	}
	r.wantKinds(t, "thr_r", agent.KindSessionStart, agent.KindUserSpeak, agent.KindUserSpeak)
}

// The worker dies while its run is held (the agent answered; nothing after lands): no run item is
// left, nor its message or events, so the message delivered again creates the run anew, at its
// first attempt, and every event and message is recorded once. A repost received later writes its
// message once too.
func TestCrashWithinTheHoldLeavesNoRun(t *testing.T) {
	t.Parallel()
	for _, repost := range []bool{false, true} {
		t.Run(map[bool]string{false: "redelivered", true: "reposted"}[repost], func(t *testing.T) {
			t.Parallel()
			var held *heldCheck
			var mdb *meteredDB
			var r *rig
			r, mdb = meteredRig(t, func(req agent.Request, n int) (agent.Reply, error) {
				if req.Kind == agent.KindUserSpeak {
					held.see(req.RunID)
					if len(held.missing) == 1 {
						mdb.dead.Store(true)
					}
				}
				return echoing(req, n)
			})
			held = &heldCheck{st: r.st}
			ctx := context.Background()
			m := message("thr_c", "c1", "hello")
			m.ReceivedAt = m.ReceivedAt.Add(-10 * time.Minute) // a repost 7 minutes later is still before the reply
			if failed := r.handle(t, record("1", m)); !slices.Equal(failed, []string{"1"}) {
				t.Fatalf("failed %v; want the message failed", failed)
			}
			mdb.dead.Store(false)
			if _, err := r.st.GetRun(ctx, "ws", "c1"); apierr.CodeOf(err) != apierr.NotFound {
				t.Fatalf("run after the crash: %v; want none", err)
			}
			if msgs, err := r.st.ListMessages(ctx, "ws", "thr_c", 10); err != nil || len(msgs) != 0 {
				t.Fatalf("messages after the crash %+v, %v; want none", msgs, err)
			}
			if evs := r.eventTypes(t); len(evs) != 0 {
				t.Fatalf("events after the crash %v; want none", evs)
			}
			again := record("1", m)
			if repost {
				m.ReceivedAt = m.ReceivedAt.Add(7 * time.Minute)
				again = record("2", m)
			}
			r.handleAll(t, again)
			held.wantHeld(t, true, true)
			r.onceEach(t, turnTypes...)
			if run := r.run(t, "c1"); run.Status != store.RunCompleted || run.Attempts != 1 {
				t.Fatalf("run %+v; want completed at attempt 1", run)
			}
			msgs, err := r.st.ListMessages(ctx, "ws", "thr_c", 10)
			if err != nil || len(msgs) != 2 || msgs[0].ID != "msg_c1" || !msgs[0].CreatedAt.Equal(m.ReceivedAt) || msgs[1].Direction != "out" {
				t.Fatalf("messages %+v, %v; want the inbound one (received at %s) and the reply", msgs, err, m.ReceivedAt)
			}
			// The session was started by the turn that died: the agent has it again (README: treat
			// session_start as idempotent).
			r.wantKinds(t, "thr_c", agent.KindSessionStart, agent.KindUserSpeak, agent.KindSessionStart, agent.KindUserSpeak)
		})
	}
}

// A held run's turn asks for approval: the run is written once, waiting, with its request; the
// decision continues it as before, every event once and in order.
func TestApprovalOfAHeldRun(t *testing.T) {
	t.Parallel()
	var held *heldCheck
	r, mdb := meteredRig(t, func(req agent.Request, n int) (agent.Reply, error) {
		switch req.Kind {
		case agent.KindUserSpeak:
			held.see(req.RunID)
			return askRefund("refund"), nil
		case agent.KindApproval:
			return speak("Refunded."), nil
		}
		return agent.Reply{}, nil
	})
	held = &heldCheck{st: r.st}
	ctx := context.Background()
	m := message("thr_a", "a1", "refund please")
	r.handleAll(t, record("1", m))
	held.wantHeld(t, true)
	if runs := mdb.runCalls("a1"); len(runs) != 2 || runs[1].op != "PutItem" {
		t.Fatalf("run item requests %+v; want the read and one put", runs)
	}
	run := r.run(t, "a1")
	if run.Status != store.RunWaitingApproval || run.Approval == nil || run.Approval.Prompt != "Refund 20 EUR?" || run.ReplyID == "" {
		t.Fatalf("run %+v; want waiting with its request and reply", run)
	}
	if len(r.decisionLinks(t)) == 0 {
		t.Fatal("run.requires_approval carries no decisions")
	}
	if _, err := r.st.DecideRun(ctx, "ws", "a1", store.Decision{RequestID: run.Approval.ID, Approved: true, By: "boss", Option: "refund"}); err != nil {
		t.Fatal(err)
	}
	r.handleAll(t, record("2", decidedMessage(m)))
	r.handleAll(t, record("1", m))
	r.onceEach(t, EventMessageReceived, EventRunCreated, EventMessageSent, EventRunRequiresApproval, EventMessageSent, EventRunCompleted)
	if run := r.run(t, "a1"); run.Status != store.RunCompleted || run.Result.Text != "Refunded." {
		t.Fatalf("run %+v; want completed", run)
	}
	r.wantKinds(t, "thr_a", agent.KindSessionStart, agent.KindUserSpeak, agent.KindApproval)
}

// While a run is held its item does not exist: cancelling it is NotFound, as before the worker
// picked its message up, and the turn ends as it would have.
func TestCancelOfAHeldRunIsNotFound(t *testing.T) {
	t.Parallel()
	var r *rig
	var cancelErr error
	r, _ = meteredRig(t, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Kind == agent.KindUserSpeak {
			_, cancelErr = r.st.CancelRun(context.Background(), "ws", req.RunID, "alice")
		}
		return echoing(req, n)
	})
	r.handleAll(t, record("1", message("thr_x", "x1", "hello")))
	if apierr.CodeOf(cancelErr) != apierr.NotFound {
		t.Fatalf("cancel while held: %v; want NotFound", cancelErr)
	}
	if run := r.run(t, "x1"); run.Status != store.RunCompleted {
		t.Fatalf("run %+v; want completed", run)
	}
	r.onceEach(t, turnTypes...)
}

// A session start made by a held run whose turn then fails retryably is recorded on the thread
// (no change of the run records it), and the retry does not start the session again.
func TestHeldRunsSessionStartBeforeARetriedTurn(t *testing.T) {
	t.Parallel()
	var held *heldCheck
	r, _ := meteredRig(t, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Kind == agent.KindUserSpeak {
			held.see(req.RunID)
			if n == 2 {
				return agent.Reply{}, &agent.Error{Retryable: true, Reason: "agent answered 503"}
			}
		}
		return echoing(req, n)
	})
	held = &heldCheck{st: r.st}
	m := message("thr_ss", "ss1", "hello")
	if failed := r.handle(t, record("1", m)); len(failed) != 1 {
		t.Fatalf("failed %v; want the message retried", failed)
	}
	if th, err := r.st.GetThread(context.Background(), "ws", "thr_ss"); err != nil || !th.SessionStarted || th.SessionRun != "ss1" {
		t.Fatalf("thread %+v, %v; want its session start recorded, owed by ss1", th, err)
	}
	r.handleAll(t, record("1", m))
	held.wantHeld(t, true, false)
	r.wantKinds(t, "thr_ss", agent.KindSessionStart, agent.KindUserSpeak, agent.KindUserSpeak)
}

// whenRunExists waits (up to 20 s) until the run's item is in the table.
func (r *rig) whenRunExists(t *testing.T, id string) {
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if _, err := r.st.GetRun(context.Background(), "ws", id); err == nil {
			return
		}
	}
	t.Errorf("run %s not written within 20 s", id)
}
