package fanout

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/manage"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// The tests below give the fan-out batches of several log shards (lanes: one per partition key).
// None of them times anything: where a lane must run while another waits, the waiting one waits
// for what the other does, and gives up (the test then fails) only after laneWait.

const laneWait = 10 * time.Second

// shardRecord is an event record of workspace ws's log shard, keyed as the table's stream keys it.
func shardRecord(seq int, ws string, shard int, id, typ, data string) events.DynamoDBEventRecord {
	r := eventRecord(strconv.Itoa(seq), id, typ, data)
	pk, sk := str(store.EventPK(ws, shard)), str(fmt.Sprintf("%019d", seq))
	r.Change.NewImage["pk"], r.Change.NewImage["sk"] = pk, sk
	r.Change.Keys = map[string]events.DynamoDBAttributeValue{"pk": pk, "sk": sk}
	return r
}

// laneStore is the fake store with hooks: it counts the audience loads by workspace, and calls
// beforeGetRun at the start of each GetRun.
type laneStore struct {
	*fakeStore
	mu           sync.Mutex
	loads        map[string]int
	beforeGetRun func(id string)
}

func (s *laneStore) ListActiveSubscriptions(ctx context.Context, ws string) ([]store.Subscription, error) {
	s.mu.Lock()
	s.loads[ws]++
	s.mu.Unlock()
	return s.fakeStore.ListActiveSubscriptions(ctx, ws)
}

func (s *laneStore) GetRun(ctx context.Context, ws, id string) (store.Run, error) {
	if s.beforeGetRun != nil {
		s.beforeGetRun(id)
	}
	return s.fakeStore.GetRun(ctx, ws, id)
}

func newLaneStore(subs ...store.Subscription) *laneStore {
	return &laneStore{fakeStore: &fakeStore{created: map[string]store.Delivery{}, subs: subs}, loads: map[string]int{}}
}

// sentOf is what the fake queue sent of these deliveries (ordered sends of sub, then the others'),
// in the order sent, by event id.
func sentOf(q *fakeQueue, ws, sub string, events []string) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	byID := map[string]string{}
	for _, e := range events {
		byID[ids.Derive("dlv", ws, e, sub)] = e
	}
	var out []string
	for _, id := range q.ordered[sub] {
		if e, ok := byID[id]; ok {
			out = append(out, e)
		}
	}
	for _, m := range q.sent {
		if e, ok := byID[m.DeliveryID]; ok {
			out = append(out, e)
		}
	}
	return out
}

// Three lanes (two log shards of one workspace, one of another) interleaved in one batch: each
// lane's FIFO sends are in its record order, every delivery is queued, and each workspace's
// subscriptions are read once for the batch, though its lanes plan side by side.
func TestLanesKeepRecordOrderPerLane(t *testing.T) {
	st := newLaneStore(store.Subscription{ID: "sub_fifo", Events: []string{"*"}, FIFO: true}, store.Subscription{ID: "sub_par", Events: []string{"*"}})
	q := &fakeQueue{}
	h := New(st, q, manage.MatchEvent, slog.New(slog.DiscardHandler))
	type lane struct {
		ws    string
		shard int
	}
	lanes := []lane{{"ws_a", 0}, {"ws_a", 1}, {"ws_b", 0}}
	var recs []events.DynamoDBEventRecord
	want := map[lane][]string{}
	for i := range 30 {
		l := lanes[(i*7/3)%3] // uneven interleaving
		id := fmt.Sprintf("evt_%02d", i)
		recs = append(recs, shardRecord(100+i, l.ws, l.shard, id, "run.created", "{}"))
		want[l] = append(want[l], id)
	}
	resp, _ := h.Handle(context.Background(), events.DynamoDBEvent{Records: recs})
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", resp.BatchItemFailures)
	}
	for _, l := range lanes {
		if got := sentOf(q, l.ws, "sub_fifo", want[l]); !slices.Equal(got, want[l]) {
			t.Errorf("lane %v: FIFO sends %v, want %v", l, got, want[l])
		}
		if got := sentOf(q, l.ws, "sub_par", want[l]); len(got) != len(want[l]) {
			t.Errorf("lane %v: parallel deliveries queued %v, want %d", l, got, len(want[l]))
		}
	}
	if want := map[string]int{"ws_a": 1, "ws_b": 1}; fmt.Sprint(st.loads) != fmt.Sprint(want) {
		t.Errorf("subscriptions read %v, want once per workspace %v", st.loads, want)
	}
}

// A lane is planned while another lane's planning waits: shard 0's first record (a finished run
// whose callback needs the run) is planned only once shard 1's record is being planned.
func TestLanesArePlannedSideBySide(t *testing.T) {
	st := newLaneStore(store.Subscription{ID: "s", Events: []string{"*"}})
	st.runs = map[string]store.Run{
		"run_0": {ID: "run_0", Status: store.RunCompleted, ReplyURL: "https://hooks.example.com/0"},
		"run_1": {ID: "run_1", Status: store.RunCompleted, ReplyURL: "https://hooks.example.com/1"},
	}
	oneStarted := make(chan struct{})
	var once sync.Once
	waited := true
	st.beforeGetRun = func(id string) {
		switch id {
		case "run_1":
			once.Do(func() { close(oneStarted) })
		case "run_0":
			select {
			case <-oneStarted:
			case <-time.After(laneWait): // planned one lane after the other: shard 1 never starts
				waited = false
			}
		}
	}
	h := New(st, &fakeQueue{}, manage.MatchEvent, slog.New(slog.DiscardHandler))
	resp, _ := h.Handle(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		shardRecord(1, "ws", 0, "evt_0", "run.completed", `{"run_id":"run_0","callback":true}`),
		shardRecord(2, "ws", 1, "evt_1", "run.completed", `{"run_id":"run_1","callback":true}`),
	}})
	if !waited || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("shard 1's record waited behind shard 0's (failures %v)", resp.BatchItemFailures)
	}
	if len(st.created) != 4 {
		t.Fatalf("created %d deliveries, want 4 (two events, each to s and its callback)", len(st.created))
	}
}

// releaseQueue is the fake queue whose ordered send of hold waits until after release was sent.
type releaseQueue struct {
	*fakeQueue
	hold, release string
	released      chan struct{}
	waited        bool
}

func (q *releaseQueue) SendOrdered(ctx context.Context, m queue.Delivery, sub string) error {
	if m.DeliveryID == q.hold {
		select {
		case <-q.released:
		case <-time.After(laneWait): // one chain per subscription: release comes after hold
			q.waited = false
		}
	}
	err := q.fakeQueue.SendOrdered(ctx, m, sub)
	if m.DeliveryID == q.release {
		close(q.released)
	}
	return err
}

// A FIFO subscription's sends of one lane go on while another lane's wait: shard 0's first send
// goes out only after shard 1's last one was sent; each lane's are in record order.
func TestLanesAreSentSideBySide(t *testing.T) {
	st := newLaneStore(store.Subscription{ID: "sub_fifo", Events: []string{"*"}, FIFO: true})
	var recs []events.DynamoDBEventRecord
	want := map[int][]string{}
	for i := range 6 {
		id := fmt.Sprintf("evt_%d", i)
		recs = append(recs, shardRecord(10+i, "ws", i%2, id, "run.created", "{}"))
		want[i%2] = append(want[i%2], id)
	}
	dlv := func(e string) string { return ids.Derive("dlv", "ws", e, "sub_fifo") }
	q := &releaseQueue{fakeQueue: &fakeQueue{}, hold: dlv("evt_0"), release: dlv("evt_5"), released: make(chan struct{}), waited: true}
	h := New(st, q, manage.MatchEvent, slog.New(slog.DiscardHandler))
	resp, _ := h.Handle(context.Background(), events.DynamoDBEvent{Records: recs})
	if !q.waited || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("shard 1's sends waited behind shard 0's (failures %v)", resp.BatchItemFailures)
	}
	for shard, w := range want {
		if got := sentOf(q.fakeQueue, "ws", "sub_fifo", w); !slices.Equal(got, w) {
			t.Errorf("shard %d: sent %v, want %v", shard, got, w)
		}
	}
}

// When lanes fail, the batch reports the lowest failed record of all, whichever lane and stage
// (planning, creating, sending) failed; the records before it are queued, those of the failed
// lane after its failure are not, and the retry from the reported record queues the rest, each
// lane's FIFO sends in order.
func TestFailingLaneReportsTheLowestFailedRecord(t *testing.T) {
	// Records 0..5 alternate between shard 0 (even) and shard 1 (odd).
	cases := []struct {
		name       string
		fifo       bool
		planFails  []int  // records whose planning fails (their run is unknown)
		createFail string // an event whose delivery's creation fails
		sendFail   string // an event whose delivery's send fails
		want       int    // the record reported
	}{
		{name: "creation in shard 1 before planning in shard 0", planFails: []int{4}, createFail: "evt_3", want: 3},
		{name: "planning in shard 0 before creation in shard 1", planFails: []int{2}, createFail: "evt_5", want: 2},
		{name: "planning in shard 1 before creation in shard 0", planFails: []int{3}, createFail: "evt_4", want: 3},
		{name: "planning in both shards, shard 1 first", planFails: []int{1, 4}, want: 1},
		{name: "FIFO send in shard 1", fifo: true, sendFail: "evt_3", want: 3},
		{name: "FIFO send in shard 1 before planning in shard 0", fifo: true, planFails: []int{4}, sendFail: "evt_1", want: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := newLaneStore(store.Subscription{ID: "s", Events: []string{"*"}, FIFO: c.fifo})
			st.failOn = c.createFail
			var recs []events.DynamoDBEventRecord
			var all []string
			for i := range 6 {
				id, typ, data := fmt.Sprintf("evt_%d", i), "run.created", "{}"
				if slices.Contains(c.planFails, i) {
					typ, data = "run.completed", `{"run_id":"run_unknown","callback":true}`
				}
				recs = append(recs, shardRecord(100+i, "ws", i%2, id, typ, data))
				all = append(all, id)
			}
			q := &fakeQueue{}
			if c.sendFail != "" {
				q.failOn = ids.Derive("dlv", "ws", c.sendFail, "s")
			}
			h := New(st, q, manage.MatchEvent, slog.New(slog.DiscardHandler))
			resp, _ := h.Handle(context.Background(), events.DynamoDBEvent{Records: recs})
			if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != strconv.Itoa(100+c.want) {
				t.Fatalf("failures %v, want record %d", resp.BatchItemFailures, 100+c.want)
			}
			sent := sentOf(q, "ws", "s", all)
			for i, id := range all {
				switch {
				case i < c.want && !slices.Contains(sent, id):
					t.Errorf("%s, before the failure, was not queued (queued %v)", id, sent)
				case i >= c.want && i%2 == c.want%2 && slices.Contains(sent, id):
					t.Errorf("%s, of the failed lane at or after its failure, was queued (queued %v)", id, sent)
				}
			}
			// The stream retries from the reported record, the fault gone.
			st.failOn, q.failOn = "", ""
			st.runs = map[string]store.Run{"run_unknown": {ID: "run_unknown", Status: store.RunCompleted}}
			if resp, _ := h.Handle(context.Background(), events.DynamoDBEvent{Records: recs[c.want:]}); len(resp.BatchItemFailures) != 0 {
				t.Fatalf("retry failures %v", resp.BatchItemFailures)
			}
			sent = sentOf(q, "ws", "s", all)
			for shard := range 2 {
				var lane, got []string
				for i, id := range all {
					if i%2 == shard {
						lane = append(lane, id)
					}
				}
				for _, id := range sent {
					if slices.Contains(lane, id) && !slices.Contains(got, id) {
						got = append(got, id) // a resent duplicate is deduplicated by SQS
					}
				}
				if c.fifo && !slices.Equal(got, lane) || !c.fifo && len(got) != len(lane) {
					t.Errorf("shard %d after the retry: queued %v, want %v", shard, got, lane)
				}
			}
		})
	}
}
