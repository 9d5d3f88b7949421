package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/agent"
	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// Attacks on the held opening events (commit 3291f93): a new run's message.received and
// run.created appended in one group with its closing events.

// faultDB is the store's DynamoDB with a hook before each PutItem: an error it returns is the
// call's (the write is not made).
type faultDB struct {
	store.DB
	mu  sync.Mutex
	put func(in *dynamodb.PutItemInput) error
}

func (f *faultDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	f.mu.Lock()
	hook := f.put
	f.mu.Unlock()
	if hook != nil {
		if err := hook(in); err != nil {
			return nil, err
		}
	}
	return f.DB.PutItem(ctx, in, opts...)
}

func (f *faultDB) setPut(hook func(in *dynamodb.PutItemInput) error) {
	f.mu.Lock()
	f.put = hook
	f.mu.Unlock()
}

func attrS(item map[string]ddbtypes.AttributeValue, k string) string {
	if v, ok := item[k].(*ddbtypes.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// faultRig is newRig on a faultDB, with a store clock the test can move forward (a redelivery
// that comes after the queue's visibility timeout).
func faultRig(t *testing.T, respond func(agent.Request, int) (agent.Reply, error)) (*rig, *faultDB, *atomic.Int64) {
	t.Helper()
	db, table := emulatortest.Table(t, "worker")
	fdb := &faultDB{DB: db}
	skew := &atomic.Int64{}
	st := store.New(fdb, table, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	sched, err := outbound.ParseSchedule("0s,2s,4s")
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{db: db, table: table, st: st, agent: &scripted{respond: respond}, vis: &visibility{}}
	cfg := Config{Retry: sched, Lease: time.Minute, ApprovalTTL: time.Hour, Hold: DefaultHold}
	r.h = New(cfg, st, st, registry{r.agent, 0}, r.vis, slog.New(slog.DiscardHandler), time.Now)
	return r, fdb, skew
}

// logOnce reads up to limit events of the workspace's log, in cursor order, and reports each event
// that is in it twice; ok is false when one was.
func (r *rig) logOnce(t *testing.T, limit int) (evs []store.Event, ok bool) {
	t.Helper()
	evs, err := r.st.ListEvents(context.Background(), "ws", 0, limit)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	ok = true
	for _, e := range evs {
		if seen[e.ID] {
			t.Errorf("event %s (%s, %s) is in the log twice", e.ID, e.Type, e.Data)
			ok = false
		}
		seen[e.ID] = true
	}
	return evs, ok
}

// threadsOnce reads up to limit events of the workspace's log, reports each event that is in it
// twice, and returns each thread's event types in cursor order.
func (r *rig) threadsOnce(t *testing.T, limit int) map[string][]string {
	t.Helper()
	evs, _ := r.logOnce(t, limit)
	byThread := map[string][]string{}
	for _, e := range evs {
		var d struct {
			Thread string `json:"thread_id"`
		}
		_ = json.Unmarshal(e.Data, &d)
		byThread[d.Thread] = append(byThread[d.Thread], e.Type)
	}
	return byThread
}

// logByCursor returns the types of the workspace's events in cursor order (gaps allowed), and
// fails the test when an event is in the log twice.
func (r *rig) logByCursor(t *testing.T) []string {
	t.Helper()
	evs, ok := r.logOnce(t, 1000)
	if !ok {
		t.FailNow()
	}
	return typesOf(evs)
}

// A quick turn's group [message.received, run.created, message.sent, run.completed] is claimed,
// and the Lambda dies while its four writes are in flight: run.created, message.sent and
// run.completed land, message.received does not (nor does the deferred flush's write of it). The
// message comes back after the queue's visibility timeout (540 s, well past the reservation's
// staleAfter), and the retry moves message.received to a new cursor: after run.completed. Before
// the hold the opening events were placed before the agent was called, so a crash could never put
// the user's message after the run's end.
func TestAttack14CrashMidGroupKeepsOpeningBeforeClosing(t *testing.T) {
	t.Parallel()
	r, fdb, skew := faultRig(t, echoing)
	var dead atomic.Bool
	dead.Store(true)
	fdb.setPut(func(in *dynamodb.PutItemInput) error {
		if dead.Load() && attrS(in.Item, "kind") == store.KindEvent && attrS(in.Item, "type") == EventMessageReceived {
			return errors.New("the invocation died before this write landed")
		}
		return nil
	})
	m := message("thr_crash", "cr1", "hello")
	if failed := r.handle(t, record("1", m)); !slices.Equal(failed, []string{"1"}) {
		t.Fatalf("failed %v; want the message retried", failed)
	}
	dead.Store(false)
	skew.Store(int64(10 * time.Minute)) // the redelivery after the visibility timeout
	r.handleAll(t, record("1", m))
	r.handleAll(t, record("1", m))
	got := r.logByCursor(t)
	if len(got) != 4 {
		t.Fatalf("log %v; want the run's four events", got)
	}
	if slices.Index(got, EventMessageReceived) > slices.Index(got, EventRunCompleted) ||
		slices.Index(got, EventMessageReceived) > slices.Index(got, EventMessageSent) {
		t.Fatalf("log in cursor order %v: the user's message.received after the run's closing events", got)
	}
}

// startFails is a Store whose StartRun is throttled: a delivery that dies right after appending
// a run's opening events.
type startFails struct{ Store }

func (startFails) StartRun(context.Context, string, string) (store.Run, bool, error) {
	return store.Run{}, false, errors.New("throttled")
}

// Two deliveries of one new run at once (a repost under the same idempotency key, or a delivery
// whose visibility ran out): A created the run, its quick turn ended, and its group of four has
// reserved cursors 1-4 but not yet claimed the marker of message.received. B appends the opening
// events alone (cursors 5-6, same marker) and dies. A's claim finds B's marker: the opening events
// are where B put them, and the closing events are claimed at A's cursors 3-4, before them.
func TestAttack14ConcurrentOpeningClaimKeepsOpeningBeforeClosing(t *testing.T) {
	t.Parallel()
	r, fdb, _ := faultRig(t, echoing)
	// A's turn must end within its hold for its group of four, however loaded the machine.
	r.h.cfg.Hold = time.Minute
	m := message("thr_dup", "dup1", "hello")
	lead := ids.Derive("evt", "ws", m.MessageID, EventMessageReceived)
	b := New(r.h.cfg, startFails{r.st}, r.st, registry{r.agent, 0}, r.vis, slog.New(slog.DiscardHandler), time.Now)
	var once sync.Once
	var bFailed []string
	fdb.setPut(func(in *dynamodb.PutItemInput) error {
		l, _ := in.Item["ids"].(*ddbtypes.AttributeValueMemberL)
		if attrS(in.Item, "pk") == "WS#ws#EVID#"+lead && l != nil && len(l.Value) == 4 {
			once.Do(func() {
				rb := &rig{h: b}
				bFailed = rb.handle(t, record("2", m))
			})
		}
		return nil
	})
	r.handleAll(t, record("1", m))
	if !slices.Equal(bFailed, []string{"2"}) {
		t.Fatalf("B failed %v; want it to die after the opening events", bFailed)
	}
	r.handleAll(t, record("2", m)) // B's message again
	got := r.logByCursor(t)
	if len(got) != 4 {
		t.Fatalf("log %v; want the run's four events", got)
	}
	if slices.Index(got, EventMessageReceived) > slices.Index(got, EventRunCompleted) {
		t.Fatalf("log in cursor order %v: message.received after run.completed", got)
	}
}

// chaos injects failures into the worker's store and event log calls: before the call (nothing
// applied) or after it (applied, its answer lost), each with probability p.
type chaos struct {
	mu  sync.Mutex
	rnd *rand.Rand
	p   float64
	on  atomic.Bool
}

// roll says whether to fail this call, and whether after applying it.
func (c *chaos) roll() (fail, after bool) {
	if !c.on.Load() {
		return false, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rnd.Float64() < c.p, c.rnd.Intn(2) == 0
}

var errChaos = errors.New("chaos: injected failure")

func hit[T any](c *chaos, f func() (T, error)) (T, error) {
	fail, after := c.roll()
	if !fail {
		return f()
	}
	var zero T
	if after {
		f()
	}
	return zero, errChaos
}

type chaosLog struct {
	EventLog
	c *chaos
}

func (l chaosLog) AppendEventsAfter(ctx context.Context, lead string, evs []store.Event) ([]store.Event, error) {
	return hit(l.c, func() ([]store.Event, error) { return l.EventLog.AppendEventsAfter(ctx, lead, evs) })
}

type chaosStore struct {
	Store
	c *chaos
}

type started struct {
	run store.Run
	ok  bool
}

type held struct {
	h  store.Held
	ok bool
}

func (s chaosStore) CreateRunWith(ctx context.Context, nr store.NewRun) (store.Run, bool, error) {
	v, err := hit(s.c, func() (started, error) { r, ok, err := s.Store.CreateRunWith(ctx, nr); return started{r, ok}, err })
	return v.run, v.ok, err
}

func (s chaosStore) HoldRun(ctx context.Context, nr store.NewRun) (store.Held, bool, error) {
	v, err := hit(s.c, func() (held, error) { h, ok, err := s.Store.HoldRun(ctx, nr); return held{h, ok}, err })
	return v.h, v.ok, err
}

func (s chaosStore) PutHeld(ctx context.Context, h store.Held) (store.Run, bool, error) {
	v, err := hit(s.c, func() (started, error) { r, ok, err := s.Store.PutHeld(ctx, h); return started{r, ok}, err })
	return v.run, v.ok, err
}

func (s chaosStore) FinishHeld(ctx context.Context, h store.Held, f store.Finish) (store.Run, error) {
	return hit(s.c, func() (store.Run, error) { return s.Store.FinishHeld(ctx, h, f) })
}

func (s chaosStore) StartRun(ctx context.Context, ws, id string) (store.Run, bool, error) {
	v, err := hit(s.c, func() (started, error) { r, ok, err := s.Store.StartRun(ctx, ws, id); return started{r, ok}, err })
	return v.run, v.ok, err
}

func (s chaosStore) FinishRunWith(ctx context.Context, ws, id string, f store.Finish) (store.Run, error) {
	return hit(s.c, func() (store.Run, error) { return s.Store.FinishRunWith(ctx, ws, id, f) })
}

func (s chaosStore) EnsureReply(ctx context.Context, r store.Run) error {
	_, err := hit(s.c, func() (bool, error) { return true, s.Store.EnsureReply(ctx, r) })
	return err
}

func (s chaosStore) ReleaseSlot(ctx context.Context, r store.Run) error {
	_, err := hit(s.c, func() (bool, error) { return true, s.Store.ReleaseSlot(ctx, r) })
	return err
}

func (s chaosStore) RenewSlot(ctx context.Context, r store.Run, lease time.Duration) error {
	_, err := hit(s.c, func() (bool, error) { return true, s.Store.RenewSlot(ctx, r, lease) })
	return err
}

func (s chaosStore) MarkSessionStarted(ctx context.Context, ws, id string) error {
	_, err := hit(s.c, func() (bool, error) { return true, s.Store.MarkSessionStarted(ctx, ws, id) })
	return err
}

// Runs of every kind (quick, slower than Hold, asking approval, failing once retryably, failing
// for good) with failures injected before and after store and log calls, each message delivered
// until it succeeds, sometimes twice at once, then again: every run's events are in the log once,
// its opening events before its closing ones, and its run ends.
func TestAttack14ChaosEveryEventOnceAndInOrder(t *testing.T) {
	t.Parallel()
	const hold = 30 * time.Millisecond
	var r *rig
	behave := func(run string) int { return int(run[len(run)-1]-'0') % 5 }
	r, _, _ = faultRig(t, func(req agent.Request, n int) (agent.Reply, error) {
		b := behave(req.RunID)
		if req.Kind == agent.KindSessionStart {
			return agent.Reply{}, nil
		}
		if req.Kind == agent.KindApproval {
			return speak("done after approval"), nil
		}
		switch b {
		case 1:
			time.Sleep(2 * hold)
		case 2:
			return agent.Reply{Actions: []agent.Action{
				{Type: agent.ActionSpeak, Text: "may I?"},
				{Type: agent.ActionRequestApproval, Prompt: "May I?"},
			}}, nil
		case 3:
			// A held run (not written yet) is at its first attempt.
			run, err := r.st.GetRun(context.Background(), "ws", req.RunID)
			if err != nil && apierr.CodeOf(err) != apierr.NotFound {
				return agent.Reply{}, &agent.Error{Retryable: true, Reason: "run unreadable: " + err.Error()}
			}
			if run.Attempts <= 1 {
				return agent.Reply{}, &agent.Error{Retryable: true, Reason: "503"}
			}
		case 4:
			return agent.Reply{}, &agent.Error{Reason: "400"}
		}
		return speak("echo: " + req.Text), nil
	})
	c := &chaos{rnd: rand.New(rand.NewSource(time.Now().UnixNano())), p: 0.15}
	r.h.cfg.Hold = hold
	r.h.store = chaosStore{r.h.store, c}
	r.h.log = chaosLog{store.NewLogWriter(r.st), c}
	c.on.Store(true)

	deliver := func(rec events.SQSMessage) {
		for try := 0; ; try++ {
			if try > 60 {
				t.Errorf("message %s still failing after %d deliveries", rec.MessageId, try)
				return
			}
			raw, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{rec}})
			out, err := lambda.NewHandler(r.h.Handle).Invoke(context.Background(), raw)
			if err != nil {
				t.Error(err)
				return
			}
			var resp events.SQSEventResponse
			_ = json.Unmarshal(out, &resp)
			if len(resp.BatchItemFailures) == 0 {
				return
			}
		}
	}
	twice := func(rec events.SQSMessage, both bool) {
		if !both {
			deliver(rec)
			return
		}
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() { defer wg.Done(); deliver(rec) }()
		}
		wg.Wait()
	}
	const runs = 20 // four of each behaviour
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := fmt.Sprintf("ch%02d", i)
			m := message("thr_"+run, run, "hi "+run)
			rec := record("s"+run, m)
			twice(rec, i%3 == 0)
			if behave(run) == 2 {
				var req store.Run
				for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
					if req = r.run(t, run); req.Status == store.RunWaitingApproval {
						break
					}
				}
				if req.Status == store.RunWaitingApproval {
					if _, err := r.st.DecideRun(context.Background(), "ws", run, store.Decision{RequestID: req.Approval.ID, Approved: true, By: "boss"}); err != nil {
						t.Error(err)
						return
					}
					twice(record("d"+run, decidedMessage(m)), i%2 == 0)
				}
			}
			deliver(rec)
		}()
	}
	wg.Wait()
	c.on.Store(false)

	byThread := r.threadsOnce(t, 1000)
	for i := range runs {
		run := fmt.Sprintf("ch%02d", i)
		got := byThread["thr_"+run]
		st := r.run(t, run)
		var want []string
		switch st.Status {
		case store.RunCompleted:
			want = []string{EventMessageReceived, EventRunCreated, EventMessageSent, EventRunCompleted}
			if behave(run) == 2 {
				want = []string{EventMessageReceived, EventRunCreated, EventMessageSent, EventRunRequiresApproval, EventMessageSent, EventRunCompleted}
			}
		case store.RunFailed:
			want = []string{EventMessageReceived, EventRunCreated, EventRunFailed}
			if behave(run) == 2 && slices.Contains(got, EventRunRequiresApproval) {
				want = []string{EventMessageReceived, EventRunCreated, EventMessageSent, EventRunRequiresApproval, EventRunFailed}
			}
		default:
			t.Errorf("run %s is %s after every delivery succeeded; events %v", run, st.Status, got)
			continue
		}
		sorted := slices.Clone(got)
		slices.Sort(sorted)
		w := slices.Clone(want)
		slices.Sort(w)
		if !slices.Equal(sorted, w) {
			t.Errorf("run %s (%s, behaviour %d): events %v, want %v", run, st.Status, behave(run), got, want)
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("run %s (%s, behaviour %d): events out of order %v, want %v", run, st.Status, behave(run), got, want)
		}
	}
}

// Each new message delivered three times at once (a repost under the same idempotency key, or a
// delivery whose visibility ran out), with a quick agent: each delivery finds no run and holds it,
// with its opening events; the first to end its turn writes the run and groups the events, the
// others find the run ended and append the opening events alone. Every event once, the opening
// events before the closing ones, one reply. (The agent may be called by each: as before the hold,
// when a delivery finds the run running, it runs it too.)
func TestAttack14SimultaneousDeliveriesOfANewRun(t *testing.T) {
	t.Parallel()
	r, _, _ := faultRig(t, echoing)
	r.h.log = store.NewLogWriter(r.st)
	const runs = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	invokes := map[string]int{} // by thread
	for i := range runs {
		m := message(fmt.Sprintf("thr_sim%02d", i), fmt.Sprintf("sim%02d", i), "hello")
		start := make(chan struct{})
		for k := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for try := 0; try < 20; try++ {
					mu.Lock()
					invokes[m.ThreadID]++
					mu.Unlock()
					raw, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{record(fmt.Sprint(k), m)}})
					out, err := lambda.NewHandler(r.h.Handle).Invoke(context.Background(), raw)
					var resp events.SQSEventResponse
					if err == nil && json.Unmarshal(out, &resp) == nil && len(resp.BatchItemFailures) == 0 {
						return
					}
				}
				t.Errorf("run %s: a delivery kept failing", m.RunID)
			}()
		}
		close(start)
	}
	wg.Wait()
	byThread := r.threadsOnce(t, 1000)
	for i := range runs {
		th := fmt.Sprintf("thr_sim%02d", i)
		if got := byThread[th]; !slices.Equal(got, turnTypes) {
			t.Errorf("thread %s: events %v, want %v", th, got, turnTypes)
		}
		msgs, err := r.st.ListMessages(context.Background(), "ws", th, 10)
		if err != nil || len(msgs) != 2 || msgs[0].Direction != "in" || msgs[1].Direction != "out" {
			t.Errorf("thread %s: messages %+v, %v; want the inbound one and one reply", th, msgs, err)
		}
		if run := r.run(t, fmt.Sprintf("sim%02d", i)); run.Status != store.RunCompleted {
			t.Errorf("thread %s: run %s; want completed", th, run.Status)
		}
		// Each delivery that holds the run may run its turn (session start, then the message),
		// but none runs it twice.
		calls := map[string]int{}
		for _, k := range r.agent.kinds(th) {
			calls[k]++
		}
		if calls[agent.KindSessionStart] > invokes[th] || calls[agent.KindUserSpeak] > invokes[th] || calls[agent.KindUserSpeak] == 0 {
			t.Errorf("thread %s: agent calls %v for %d deliveries", th, calls, invokes[th])
		}
	}
}

// once fails the nth call of one method of the worker's store or log, before it is applied or
// after (applied, its answer lost).
type oneFault struct {
	method string
	nth    int
	after  bool
	mu     sync.Mutex
	calls  map[string]int
}

func (f *oneFault) hit(method string) (fail, after bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[method]++
	return method == f.method && f.calls[method] == f.nth, f.after
}

func faultCall[T any](f *oneFault, method string, call func() (T, error)) (T, error) {
	fail, after := f.hit(method)
	if !fail {
		return call()
	}
	var zero T
	if after {
		call()
	}
	return zero, errors.New("injected: " + method)
}

type faultStore struct {
	Store
	f *oneFault
}

func (s faultStore) CreateRunWith(ctx context.Context, nr store.NewRun) (store.Run, bool, error) {
	v, err := faultCall(s.f, "CreateRunWith", func() (started, error) { r, ok, err := s.Store.CreateRunWith(ctx, nr); return started{r, ok}, err })
	return v.run, v.ok, err
}

func (s faultStore) HoldRun(ctx context.Context, nr store.NewRun) (store.Held, bool, error) {
	v, err := faultCall(s.f, "HoldRun", func() (held, error) { h, ok, err := s.Store.HoldRun(ctx, nr); return held{h, ok}, err })
	return v.h, v.ok, err
}

func (s faultStore) PutHeld(ctx context.Context, h store.Held) (store.Run, bool, error) {
	v, err := faultCall(s.f, "PutHeld", func() (started, error) { r, ok, err := s.Store.PutHeld(ctx, h); return started{r, ok}, err })
	return v.run, v.ok, err
}

func (s faultStore) FinishHeld(ctx context.Context, h store.Held, fin store.Finish) (store.Run, error) {
	return faultCall(s.f, "FinishHeld", func() (store.Run, error) { return s.Store.FinishHeld(ctx, h, fin) })
}

func (s faultStore) StartRun(ctx context.Context, ws, id string) (store.Run, bool, error) {
	v, err := faultCall(s.f, "StartRun", func() (started, error) { r, ok, err := s.Store.StartRun(ctx, ws, id); return started{r, ok}, err })
	return v.run, v.ok, err
}

func (s faultStore) GetRun(ctx context.Context, ws, id string) (store.Run, error) {
	return faultCall(s.f, "GetRun", func() (store.Run, error) { return s.Store.GetRun(ctx, ws, id) })
}

func (s faultStore) FinishRunWith(ctx context.Context, ws, id string, fin store.Finish) (store.Run, error) {
	return faultCall(s.f, "FinishRunWith", func() (store.Run, error) { return s.Store.FinishRunWith(ctx, ws, id, fin) })
}

func (s faultStore) EnsureReply(ctx context.Context, r store.Run) error {
	_, err := faultCall(s.f, "EnsureReply", func() (bool, error) { return true, s.Store.EnsureReply(ctx, r) })
	return err
}

func (s faultStore) ReleaseSlot(ctx context.Context, r store.Run) error {
	_, err := faultCall(s.f, "ReleaseSlot", func() (bool, error) { return true, s.Store.ReleaseSlot(ctx, r) })
	return err
}

func (s faultStore) RenewSlot(ctx context.Context, r store.Run, lease time.Duration) error {
	_, err := faultCall(s.f, "RenewSlot", func() (bool, error) { return true, s.Store.RenewSlot(ctx, r, lease) })
	return err
}

func (s faultStore) GetThread(ctx context.Context, ws, id string) (store.Thread, error) {
	return faultCall(s.f, "GetThread", func() (store.Thread, error) { return s.Store.GetThread(ctx, ws, id) })
}

type faultLog struct {
	EventLog
	f *oneFault
}

func (l faultLog) AppendEventsAfter(ctx context.Context, lead string, evs []store.Event) ([]store.Event, error) {
	return faultCall(l.f, "AppendEventsAfter", func() ([]store.Event, error) { return l.EventLog.AppendEventsAfter(ctx, lead, evs) })
}

// Every store and log call of the approval flow (a new run whose turn asks for approval, quick or
// slower than Hold; the decision; the decided turn; every message delivered again after) fails
// once, as its 1st, 2nd, 3rd or 4th call, before it is applied or after: each message is delivered
// until it succeeds. The thread's events are each in the log once, in the flow's order.
func TestAttack14EveryCallFailsOnceInTheApprovalFlow(t *testing.T) {
	t.Parallel()
	var slow sync.Map
	r, _, _ := faultRig(t, func(req agent.Request, n int) (agent.Reply, error) {
		switch req.Kind {
		case agent.KindUserSpeak:
			if _, ok := slow.Load(req.RunID); ok {
				time.Sleep(DefaultHold + 50*time.Millisecond)
			}
			return agent.Reply{Actions: []agent.Action{
				{Type: agent.ActionSpeak, Text: "may I?"},
				{Type: agent.ActionRequestApproval, Prompt: "May I?"},
			}}, nil
		case agent.KindApproval:
			return speak("done"), nil
		}
		return agent.Reply{}, nil
	})
	want := []string{EventMessageReceived, EventRunCreated, EventMessageSent, EventRunRequiresApproval, EventMessageSent, EventRunCompleted}
	methods := []string{"CreateRunWith", "HoldRun", "PutHeld", "FinishHeld", "StartRun", "GetRun", "FinishRunWith", "EnsureReply", "ReleaseSlot", "RenewSlot", "GetThread", "AppendEventsAfter"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	runs := map[string]string{} // run id → its case's name, for the cases that got this far
	// play runs the flow with the nth call of method failing (before it is applied, or after).
	play := func(method string, nth int, after, isSlow bool) *oneFault {
		name := fmt.Sprintf("%s#%d/after=%v/slow=%v", method, nth, after, isSlow)
		run := fmt.Sprintf("f%s%d%v%v", method, nth, after, isSlow)
		if isSlow {
			slow.Store(run, true)
		}
		f := &oneFault{method: method, nth: nth, after: after}
		h := New(r.h.cfg, faultStore{r.st, f}, faultLog{store.NewLogWriter(r.st), f}, registry{r.agent, 0}, r.vis, slog.New(slog.DiscardHandler), time.Now)
		deliver := func(rec events.SQSMessage) bool {
			for try := 0; try < 10; try++ {
				raw, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{rec}})
				out, err := lambda.NewHandler(h.Handle).Invoke(context.Background(), raw)
				var resp events.SQSEventResponse
				if err == nil && json.Unmarshal(out, &resp) == nil && len(resp.BatchItemFailures) == 0 {
					return true
				}
			}
			t.Errorf("%s: message %s kept failing", name, rec.MessageId)
			return false
		}
		m := message("thr_"+run, run, "hello")
		if !deliver(record("1", m)) {
			return f
		}
		got, err := r.st.GetRun(context.Background(), "ws", run)
		if err != nil || got.Status != store.RunWaitingApproval {
			t.Errorf("%s: run %s %v; want waiting", name, got.Status, err)
			return f
		}
		deliver(record("2", decidedMessage(m))) // stale
		if _, err := r.st.DecideRun(context.Background(), "ws", run, store.Decision{RequestID: got.Approval.ID, Approved: true, By: "boss"}); err != nil {
			t.Error(err)
			return f
		}
		deliver(record("3", decidedMessage(m)))
		deliver(record("4", decidedMessage(m)))
		deliver(record("5", m))
		mu.Lock()
		runs[run] = name
		mu.Unlock()
		return f
	}
	// A clean flow's calls of each method, quick and slow: a case whose nth is beyond them would
	// inject nothing.
	calls := map[bool]map[string]int{}
	for _, isSlow := range []bool{false, true} {
		calls[isSlow] = play("none", 1, false, isSlow).calls
	}
	cases := 0
	defer func() { t.Logf("%d cases, each with one injected failure", cases) }()
	sem := make(chan struct{}, 8)
	for _, method := range methods {
		for nth := 1; nth <= 4; nth++ {
			for _, after := range []bool{false, true} {
				for _, isSlow := range []bool{false, true} {
					if nth > calls[isSlow][method] {
						continue
					}
					cases++
					wg.Add(1)
					go func() {
						defer wg.Done()
						sem <- struct{}{}
						defer func() { <-sem }()
						if f := play(method, nth, after, isSlow); f.calls[method] < nth {
							t.Errorf("%s#%d/after=%v/slow=%v: the failure was not injected", method, nth, after, isSlow)
						}
					}()
				}
			}
		}
	}
	wg.Wait()
	// The log once (not once per case: each read of the whole log costs the emulator what the
	// cases together write), each case's thread's events once each and in order.
	byThread := r.threadsOnce(t, 10000)
	for run, name := range runs {
		if got := byThread["thr_"+run]; !slices.Equal(got, want) {
			t.Errorf("%s: events %v, want %v", name, got, want)
		}
	}
}

// Turns that end right about when Hold does (the timer fires while the turn takes the events), and
// appends that fail now and then (the timer's among them): every event once, in order.
func TestAttack14TurnsEndingAsTheHoldEnds(t *testing.T) {
	t.Parallel()
	const hold = 4 * time.Millisecond
	var mu sync.Mutex
	rnd := rand.New(rand.NewSource(time.Now().UnixNano()))
	r, _, _ := faultRig(t, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Kind == agent.KindUserSpeak {
			mu.Lock()
			d := time.Duration(rnd.Int63n(int64(2 * hold)))
			mu.Unlock()
			time.Sleep(d)
		}
		return echoing(req, n)
	})
	c := &chaos{rnd: rand.New(rand.NewSource(time.Now().UnixNano())), p: 0.2}
	c.on.Store(true)
	r.h.cfg.Hold = hold
	r.h.log = chaosLog{store.NewLogWriter(r.st), c}
	const runs = 40
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := message(fmt.Sprintf("thr_edge%02d", i), fmt.Sprintf("edge%02d", i), "hello")
			for try := 0; try < 30; try++ {
				raw, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{record("1", m)}})
				out, err := lambda.NewHandler(r.h.Handle).Invoke(context.Background(), raw)
				var resp events.SQSEventResponse
				if err == nil && json.Unmarshal(out, &resp) == nil && len(resp.BatchItemFailures) == 0 {
					return
				}
			}
			t.Errorf("run %s kept failing", m.RunID)
		}()
	}
	wg.Wait()
	byThread := r.threadsOnce(t, 1000)
	for i := range runs {
		th := fmt.Sprintf("thr_edge%02d", i)
		if got := byThread[th]; !slices.Equal(got, turnTypes) {
			t.Errorf("thread %s: events %v, want %v", th, got, turnTypes)
		}
	}
}

// A webhook event was recorded alone first (its first copy matched no route, or was queued as an
// event that starts no run), and a later copy of the same delivery (the door resends a copy whose
// queueing it could not record) starts a run: same event id. The run's quick turn appends
// [event, message.received, run.created, message.sent, run.completed]: the event is found in its
// marker of one, and the other four are claimed as a group led by message.received. The run's
// change names the event as the lead, whose marker holds none of them: the message delivered again
// looks the closing events up after the event, then by message.sent's own marker, finds neither,
// and appends them a second time.
func TestAttack14RunWhoseInboundEventWasRecordedAloneBefore(t *testing.T) {
	t.Parallel()
	r, _, _ := faultRig(t, echoing)
	ev := &queue.Event{Subject: "github\x00delivery-1", Type: "issue.opened", Data: `{"n":1}`}
	alone := queue.Inbound{Version: queue.InboundVersion, WorkspaceID: "ws", MessageID: "msg_ev1", Source: "github", ReceivedAt: time.Now(), Group: "grp_ev1", Event: ev}
	r.handleAll(t, record("1", alone))
	m := message("thr_ev1", "evrun1", "issue.opened")
	m.MessageID, m.Source, m.Event = "msg_ev1", "github", ev
	r.handleAll(t, record("2", m))
	r.handleAll(t, record("2", m)) // its delete was lost
	got := r.logByCursor(t)
	if want := []string{"issue.opened", EventMessageReceived, EventRunCreated, EventMessageSent, EventRunCompleted}; !slices.Equal(got, want) {
		t.Fatalf("log %v, want %v", got, want)
	}
}
