package streamesm

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// The tests below run the mapping with Partitions over 1 on the fake stream, whose items are keyed
// by pk alone (its partition key). None of them times anything: where a test needs one lane to
// wait for another, it waits for what the other lane does, and fails after 5 s of nothing.

// inFlight wraps an Invoker and keeps the most invocations it saw in flight at once.
type inFlight struct {
	next      Invoker
	mu        sync.Mutex
	now, peak int
}

func (f *inFlight) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	f.mu.Lock()
	f.now++
	f.peak = max(f.peak, f.now)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.now--
		f.mu.Unlock()
	}()
	return f.next.Invoke(ctx, function, payload)
}

func (f *inFlight) most() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peak
}

// waits are the waits of a test's invocations for what other lanes do.
type waits struct{ quit chan struct{} }

func newWaits() *waits { return &waits{quit: make(chan struct{})} }

// await waits up to 5s for ch to close and reports whether it did (or the test ended first).
func (w *waits) await(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-w.quit:
		return true // the test failed already, or it ends
	case <-time.After(5 * time.Second):
		return false
	}
}

// endWith ends every wait when t ends. Called after start, its cleanup runs before the mapping is
// stopped: a test that fails does not leave an invocation waiting, or logging after it ended.
func (w *waits) endWith(t *testing.T) { t.Cleanup(func() { close(w.quit) }) }

// holds reports whether batch has a record of partition key pk.
func holds(batch []events.DynamoDBEventRecord, pk string) bool {
	return slices.ContainsFunc(batch, func(r events.DynamoDBEventRecord) bool { return r.Change.Keys["pk"].String() == pk })
}

// keyedRec is a record with these string key attributes.
func keyedRec(keys ...string) events.DynamoDBEventRecord {
	r := events.DynamoDBEventRecord{Change: events.DynamoDBStreamRecord{Keys: map[string]events.DynamoDBAttributeValue{}}}
	for i := 0; i+1 < len(keys); i += 2 {
		r.Change.Keys[keys[i]] = events.NewStringAttribute(keys[i+1])
	}
	return r
}

// A key's lane is fixed at its first record: the lane with the fewest keys, the first of those.
// Only the partition key counts (not the sort key); a record without it goes to the first lane.
func TestLaneForDealsEachKeyToTheLaneWithFewestKeys(t *testing.T) {
	m, err := newMapping(Config{Function: "Fn", StreamARN: fakeARN, Partitions: 3}, newFakeStream(), fakeInvoker{})
	if err != nil {
		t.Fatal(err)
	}
	m.partitionKey = "pk"
	r := newReader(m, "s", types.ShardIteratorTypeTrimHorizon)
	laneOf := func(keys ...string) int { return slices.Index(r.lanes, r.laneFor(keyedRec(keys...))) }
	got := []int{
		laneOf("pk", "a", "sk", "1"), laneOf("pk", "b", "sk", "1"), laneOf("pk", "a", "sk", "2"), // a 0, b 1
		laneOf("pk", "c"), laneOf("pk", "d"), laneOf("pk", "e"), laneOf("pk", "b", "sk", "9"), // c 2, d 0, e 1
		laneOf("pk", "f"), laneOf("pk", "g"), laneOf("sk", "no partition key"), // f 2, g 0
	}
	if want := []int{0, 1, 0, 2, 0, 1, 1, 2, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("lanes %v, want %v", got, want)
	}
	if !slices.Equal(r.laneKeys, []int{3, 2, 2}) {
		t.Errorf("keys per lane %v, want [3 2 2]", r.laneKeys)
	}
}

// With 3 partitions, six keys' records interleaved in one shard: every record arrives once, each
// key's in order; each batch holds the keys of one lane only, and lanes run at once.
func TestPartitionsKeepEachKeysOrder(t *testing.T) {
	keys := []string{"k0", "k1", "k2", "k3", "k4", "k5"} // lanes 0 1 2 0 1 2, by first record
	lane := map[string]int{"k0": 0, "k1": 1, "k2": 2, "k3": 0, "k4": 1, "k5": 2}
	f := newFakeStream()
	var rs []types.Record
	want := map[string][]int{}
	for i := range 60 {
		pk := keys[(i*i+i/7)%6]
		if i < 6 {
			pk = keys[i] // first records in key order, so that the lanes are as above
		}
		rs = append(rs, rec(i+1, pk, ""))
		want[pk] = append(want[pk], i+1)
	}
	f.addShard("s", "", false, rs...)
	rc := &recorder{t: t}
	inv := &inFlight{next: rc}
	start(t, Config{Partitions: 3, BatchSize: 4}, f, inv)
	eventually(t, "60 records", func() bool { return len(rc.delivered()) == 60 })
	time.Sleep(20 * time.Millisecond) // would catch a late duplicate
	if got := byKey(rc); !reflect.DeepEqual(got, want) {
		t.Errorf("delivered by key %v, want %v", got, want)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, b := range rc.batches {
		for _, r := range b {
			if l, first := lane[r.Change.Keys["pk"].String()], lane[b[0].Change.Keys["pk"].String()]; l != first || len(b) > 4 {
				t.Errorf("batch %q mixes lanes %d and %d, or is over the batch size", nums(b), first, l)
			}
		}
	}
}

// One key's stuck batch does not stop another key's lane: while a's first batch is in flight
// (until the test lets it go), b's lane delivers all its records, those written meanwhile too;
// then a's records follow, in order. With Partitions 1, b's records would wait behind a's batch.
func TestStuckKeyDoesNotStopAnotherKeysLane(t *testing.T) {
	f := newFakeStream()
	f.addShard("s", "", false, rec(1, "a", ""), rec(2, "b", ""), rec(3, "a", ""), rec(4, "b", ""))
	aIn, bDone := make(chan struct{}), make(chan struct{})
	var aOnce, bOnce sync.Once
	w := newWaits()
	var rc *recorder
	rc = &recorder{t: t, respond: func(call int, batch []events.DynamoDBEventRecord) ([]byte, error) {
		if holds(batch, "a") {
			aOnce.Do(func() {
				close(aIn)
				if !w.await(bDone) {
					t.Errorf("a's batch %q stuck: b's lane did not deliver its records meanwhile (got %v)", nums(batch), byKey(rc))
				}
			})
			return nil, nil
		}
		if slices.Contains(byKey(rc)["b"], 6) {
			bOnce.Do(func() { close(bDone) })
		}
		return nil, nil
	}}
	start(t, Config{Partitions: 2, BatchSize: 10, ReportBatchItemFailures: true, MaximumRetryAttempts: -1}, f, rc)
	w.endWith(t)
	if !w.await(aIn) {
		t.Fatal("a's first batch never started")
	}
	f.put("s", rec(5, "a", ""), rec(6, "b", ""))
	eventually(t, "six records", func() bool { return len(rc.delivered()) == 6 })
	if got, want := byKey(rc), map[string][]int{"a": {1, 3, 5}, "b": {2, 4, 6}}; !reflect.DeepEqual(got, want) {
		t.Errorf("delivered by key %v, want %v", got, want)
	}
}

// A lane's failing batch is retried from its reported record, then discarded, as a shard's only
// lane does it, while the other lane delivers its records; both go on afterwards.
func TestFailingPartitionRetriesAlone(t *testing.T) {
	f := newFakeStream()
	var rs []types.Record
	for i := 1; i <= 8; i++ {
		rs = append(rs, rec(i, map[bool]string{true: "a", false: "b"}[i%2 == 1], ""))
	}
	f.addShard("s", "", false, rs...)
	var mu sync.Mutex
	var discarded []string
	rc := &recorder{t: t, respond: func(call int, batch []events.DynamoDBEventRecord) ([]byte, error) {
		if slices.ContainsFunc(batch, func(r events.DynamoDBEventRecord) bool { return num(r) == 5 }) {
			return failures(5), nil
		}
		return nil, nil
	}}
	start(t, Config{Partitions: 2, BatchSize: 4, ReportBatchItemFailures: true, MaximumRetryAttempts: 1,
		OnFailure: func(ctx context.Context, d Discard) {
			mu.Lock()
			defer mu.Unlock()
			discarded = append(discarded, nums(d.Records))
		}}, f, rc)
	eventually(t, "a discard", func() bool { mu.Lock(); defer mu.Unlock(); return len(discarded) > 0 })
	f.put("s", rec(9, "a", ""), rec(10, "b", ""))
	eventually(t, "records 9 and 10", func() bool {
		d := rc.delivered()
		return slices.Contains(d, 9) && slices.Contains(d, 10)
	})
	var ofA, ofB []string
	for _, c := range rc.calls() {
		if n := c[:strings.IndexByte(c+" ", ' ')]; n == "1" || n == "5" || n == "9" {
			ofA = append(ofA, c)
		} else {
			ofB = append(ofB, c)
		}
	}
	if want := []string{"1 3 5 7", "5 7", "9"}; !slices.Equal(ofA, want) {
		t.Errorf("a's lane: calls %q, want %q", ofA, want)
	}
	if want := []string{"2 4 6 8", "10"}; !slices.Equal(ofB, want) {
		t.Errorf("b's lane: calls %q, want %q", ofB, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(discarded, []string{"5 7"}) {
		t.Errorf("discarded %q, want [\"5 7\"]", discarded)
	}
}

// Partitions 1 (and 0, its default) is one lane per shard, as before lanes: batches hold every
// key's records in stream order, one batch at a time.
func TestPartitionsOneIsOneLane(t *testing.T) {
	for _, p := range []int{0, 1} {
		t.Run(fmt.Sprint(p), func(t *testing.T) {
			f := newFakeStream()
			f.addShard("s", "", false, rec(1, "a", ""), rec(2, "b", ""), rec(3, "a", ""), rec(4, "b", ""), rec(5, "a", ""), rec(6, "b", ""))
			rc := &recorder{t: t, respond: func(call int, batch []events.DynamoDBEventRecord) ([]byte, error) {
				if call == 1 {
					return failures(3), nil
				}
				return nil, nil
			}}
			inv := &inFlight{next: rc}
			start(t, Config{Partitions: p, BatchSize: 4, ReportBatchItemFailures: true, MaximumRetryAttempts: -1}, f, inv)
			eventually(t, "record 6", func() bool { return slices.Contains(rc.delivered(), 6) })
			if got, want := rc.calls(), []string{"1 2 3 4", "3 4 5 6"}; !reflect.DeepEqual(got, want) {
				t.Errorf("calls %q, want %q", got, want)
			}
			if inv.most() != 1 {
				t.Errorf("%d invocations in flight at once", inv.most())
			}
		})
	}
}

// The lanes hold at most Partitions × BatchSize records; a lane's read reads no more than the room
// left, and none when there is none. A lane does not read within the idle wait of another lane's
// read that found nothing new; the one that found nothing reads again.
func TestPartitionsHoldAtMostPTimesBatchSize(t *testing.T) {
	f := newFakeStream()
	f.addShard("s", "", false, rec(1, "a", ""), rec(2, "a", ""), rec(3, "a", ""), rec(4, "a", ""), rec(5, "b", ""), rec(6, "b", ""))
	m, err := newMapping(Config{Function: "Fn", StreamARN: fakeARN, Partitions: 2, BatchSize: 2, PollInterval: time.Hour}, f, fakeInvoker{})
	if err != nil {
		t.Fatal(err)
	}
	m.partitionKey = "pk"
	r := newReader(m, "s", types.ShardIteratorTypeTrimHorizon)
	la, lb := r.lanes[0], r.lanes[1]
	ctx := context.Background()
	held := func() string { return fmt.Sprintf("%v|%v", nums(recsOf(la)), nums(recsOf(lb))) }

	if n, _, err := r.read(ctx, lb); n != 4 || err != nil || held() != "1 2 3 4|" {
		t.Fatalf("first read: %d, %v; lanes %q, want the 4 records of room", n, err, held())
	}
	if n, _, _ := r.read(ctx, lb); n != 0 || f.callCount("GetRecords") != 1 {
		t.Fatalf("read with no room: %d records, %d GetRecords calls, want none", n, f.callCount("GetRecords"))
	}
	la.advance(1)
	if n, _, _ := r.read(ctx, lb); n != 1 || held() != "2 3 4|5" {
		t.Fatalf("read with room for 1: %d; lanes %q", n, held())
	}
	la.advance(3)
	if n, _, _ := r.read(ctx, lb); n != 1 || held() != "|5 6" {
		t.Fatalf("read of the rest: %d; lanes %q", n, held())
	}
	calls := f.callCount("GetRecords")
	if n, _, _ := r.read(ctx, lb); n != 0 || f.callCount("GetRecords") != calls+1 {
		t.Fatalf("caught up: %d records, %d calls", n, f.callCount("GetRecords")-calls)
	}
	f.put("s", rec(7, "a", ""))
	if n, _, _ := r.read(ctx, la); n != 0 || f.callCount("GetRecords") != calls+1 {
		t.Fatalf("another lane within the idle wait: %d records, %d calls, want no call", n, f.callCount("GetRecords")-calls)
	}
	if n, _, _ := r.read(ctx, lb); n != 1 || held() != "7|5 6" {
		t.Fatalf("the lane that found nothing reads again: %d; lanes %q", n, held())
	}
}

// recsOf is the records a lane holds.
func recsOf(l *lane) []events.DynamoDBEventRecord {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	var out []events.DynamoDBEventRecord
	for _, it := range l.pending {
		out = append(out, it.rec)
	}
	return out
}

func TestPartitionsConfig(t *testing.T) {
	for _, p := range []int{-1, MaxPartitions + 1} {
		if err := (Config{Function: "Fn", StreamARN: fakeARN, Partitions: p}).Validate(); err == nil {
			t.Errorf("partitions %d: no error", p)
		}
	}
	m, err := newMapping(Config{Function: "Fn", StreamARN: fakeARN}, newFakeStream(), fakeInvoker{})
	if err != nil || m.c.Partitions != 1 {
		t.Errorf("default partitions %d, %v; want 1", m.c.Partitions, err)
	}
}
