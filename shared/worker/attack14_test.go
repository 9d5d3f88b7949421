package worker

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/agent"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/outbound"
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

// logByCursor returns the types of the workspace's events in cursor order (gaps allowed), and
// fails the test when an event is in the log twice.
func (r *rig) logByCursor(t *testing.T) []string {
	t.Helper()
	evs, err := r.st.ListEvents(context.Background(), "ws", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var got []string
	for _, e := range evs {
		if seen[e.ID] {
			t.Fatalf("event %s (%s) is in the log twice: %+v", e.ID, e.Type, evs)
		}
		seen[e.ID] = true
		got = append(got, e.Type)
	}
	return got
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
