package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
)

// threadIn returns a thread id that n shards deal to shard.
func threadIn(t *testing.T, prefix string, shard, n int) string {
	t.Helper()
	for i := range 1000 {
		id := fmt.Sprintf("%s_%d", prefix, i)
		if HashShard(id, n) == shard {
			return id
		}
	}
	t.Fatalf("no thread id for shard %d of %d", shard, n)
	return ""
}

// threadEvent is an event of the thread, as the worker appends them.
func threadEvent(ws, thread, id string) Event {
	return Event{ID: id, Type: "message.received", WorkspaceID: ws, Data: json.RawMessage(`{"thread_id":"` + thread + `"}`)}
}

// shardOfEvent is where the log holds the event: its shard and cursor (every shard below the mark
// is read), or -1.
func shardOfEvent(t *testing.T, st *Store, ws, id string) (int, int64) {
	t.Helper()
	ctx := context.Background()
	head, err := st.LogHead(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	found, at, cursor := 0, -1, int64(0)
	for sh := range head {
		evs, _, err := st.ListShard(ctx, ws, sh, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.ID == id {
				found, at, cursor = found+1, sh, e.Cursor
			}
		}
	}
	if found > 1 {
		t.Fatalf("event %s is in the log %d times", id, found)
	}
	return at, cursor
}

func getMeta(t *testing.T, st *Store, ws, thread string) map[string]any {
	t.Helper()
	out, err := st.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &st.table, Key: key(threadPK(ws, thread), "META"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	for k := range out.Item {
		m[k] = true
	}
	m["log_shard#"] = num(out.Item, "log_shard")
	return m
}

// A thread stays in the shard it was created in, whatever the number of shards of the process
// that writes it next: raised, lowered, or a process that has never seen it.
func TestThreadKeepsItsShardWhenShardsChange(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	thread := threadIn(t, "thr", 3, 4)
	st4 := New(db, table, time.Now).WithShards(4)
	if _, _, err := st4.CreateRunWith(ctx, newRun("ws", thread, "run_1", time.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := st4.AppendEvent(ctx, threadEvent("ws", thread, "evt_1")); err != nil {
		t.Fatal(err)
	}
	for i, n := range []int{1, 2, 8, 16} {
		if HashShard(thread, n) == 3 {
			continue // this count would guess right: not the case under test
		}
		other := New(db, table, time.Now).WithShards(n) // a fresh process: nothing cached
		run := fmt.Sprintf("run_%d", i+2)
		if _, created, err := other.CreateRunWith(ctx, newRun("ws", thread, run, time.Now())); err != nil || !created {
			t.Fatalf("%d shards: a new run on the thread: %v, %v", n, created, err)
		}
		id := fmt.Sprintf("evt_%d", i+2)
		if _, err := New(db, table, time.Now).WithShards(n).AppendEvent(ctx, threadEvent("ws", thread, id)); err != nil {
			t.Fatal(err)
		}
		if sh, _ := shardOfEvent(t, st4, "ws", id); sh != 3 {
			t.Fatalf("%d shards: the thread's event went to shard %d; want 3, where the thread was created", n, sh)
		}
	}
	if sh, _ := shardOfEvent(t, st4, "ws", "evt_1"); sh != 3 {
		t.Fatalf("the first event is in shard %d; want 3", sh)
	}
	if got := getMeta(t, st4, "ws", thread)["log_shard#"]; got != int64(3) {
		t.Fatalf("META log_shard = %v; want 3", got)
	}
}

// A thread created before shards (its META has no log_shard) keeps its events in shard 0 when the
// shards are raised, and records nothing new.
func TestThreadFromBeforeShardsStaysInShardZero(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	thread := threadIn(t, "old", 2, 4)
	st1 := New(db, table, time.Now)
	if _, _, err := st1.CreateRunWith(ctx, newRun("ws", thread, "run_1", time.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := st1.AppendEvent(ctx, threadEvent("ws", thread, "evt_1")); err != nil {
		t.Fatal(err)
	}
	st4 := New(db, table, time.Now).WithShards(4)
	nr := newRun("ws", thread, "run_2", time.Now())
	nr.FollowUp = true
	if _, created, err := st4.CreateRunWith(ctx, nr); err != nil || !created {
		t.Fatalf("a follow-up under 4 shards: %v, %v", created, err)
	}
	if _, err := New(db, table, time.Now).WithShards(4).AppendEvent(ctx, threadEvent("ws", thread, "evt_2")); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"evt_1", "evt_2"} {
		if sh, _ := shardOfEvent(t, st4, "ws", id); sh != 0 {
			t.Fatalf("%s is in shard %d; want 0", id, sh)
		}
	}
	if meta := getMeta(t, st4, "ws", thread); meta["log_shard"] != nil {
		t.Fatalf("the old thread now records log_shard %v; want none", meta["log_shard#"])
	}
	// A follow-up on another channel is still refused: the shard's retry does not weaken the
	// channel's condition.
	other := newRun("ws", thread, "run_3", time.Now())
	other.Thread.Channel, other.FollowUp = "email", true
	if _, _, err := New(db, table, time.Now).WithShards(4).CreateRunWith(ctx, other); err == nil {
		t.Fatal("a follow-up on another channel was taken")
	}
}

// Two processes with different shard counts creating the same thread at once agree on its shard.
func TestCreatorsWithDifferentShardsAgree(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	for i := range 8 {
		thread := fmt.Sprintf("race_%d", i)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, n := range []int{4, 16} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st := New(db, table, time.Now).WithShards(n)
				if _, _, err := st.CreateRunWith(ctx, newRun("ws", thread, fmt.Sprintf("run_%d_%d", i, j), time.Now())); err != nil {
					errs[j] = err
					return
				}
				_, errs[j] = st.AppendEvent(ctx, threadEvent("ws", thread, fmt.Sprintf("evt_%d_%d", i, j)))
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatal(errs)
		}
		reader := New(db, table, time.Now)
		a, _ := shardOfEvent(t, reader, "ws", fmt.Sprintf("evt_%d_0", i))
		b, _ := shardOfEvent(t, reader, "ws", fmt.Sprintf("evt_%d_1", i))
		if a != b || a < 0 || int64(a) != getMeta(t, reader, "ws", thread)["log_shard#"] {
			t.Fatalf("thread %s: events in shards %d and %d, META records %v", thread, a, b, getMeta(t, reader, "ws", thread)["log_shard#"])
		}
	}
}

// A group that names two threads puts each thread's events in its own thread's shard, and an event
// that names none with the group's first thread. The marker records each: a retry by a process that
// knows no thread finds them where they are, and so does AppendEventsAfter.
func TestGroupNamingTwoThreadsPutsEachInItsShard(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	a, b := threadIn(t, "a", 1, 4), threadIn(t, "b", 3, 4)
	st := New(db, table, time.Now).WithShards(4)
	for i, th := range []string{a, b} {
		if _, _, err := st.CreateRunWith(ctx, newRun("ws", th, fmt.Sprintf("run_%d", i), time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	group := []Event{
		{ID: "evt_hook", Type: "webhook.received", WorkspaceID: "ws", Spread: true},
		threadEvent("ws", a, "evt_a"),
		threadEvent("ws", b, "evt_b"),
	}
	first, err := st.AppendEvents(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"evt_hook": 1, "evt_a": 1, "evt_b": 3}
	for _, e := range first {
		if e.Shard != want[e.ID] {
			t.Fatalf("%s appended to shard %d; want %d", e.ID, e.Shard, want[e.ID])
		}
		if sh, c := shardOfEvent(t, st, "ws", e.ID); sh != e.Shard || c != e.Cursor {
			t.Fatalf("%s is at %d/%d; the append said %d/%d", e.ID, sh, c, e.Shard, e.Cursor)
		}
	}
	// evt_hook and evt_a share shard 1 and keep their group order there.
	if first[0].Cursor >= first[1].Cursor {
		t.Fatalf("shard 1 has evt_hook at %d after evt_a at %d", first[0].Cursor, first[1].Cursor)
	}
	again, err := New(db, table, time.Now).WithShards(2).AppendEvents(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	more, err := New(db, table, time.Now).AppendEventsAfter(ctx, "evt_hook", []Event{threadEvent("ws", b, "evt_b"), threadEvent("ws", b, "evt_b2")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range first {
		if again[i].Shard != first[i].Shard || again[i].Cursor != first[i].Cursor {
			t.Fatalf("the repeat put %s at %d/%d; it is at %d/%d", first[i].ID, again[i].Shard, again[i].Cursor, first[i].Shard, first[i].Cursor)
		}
	}
	if more[0].Shard != 3 || more[0].Cursor != first[2].Cursor || more[1].Shard != 3 || more[1].Cursor <= first[2].Cursor {
		t.Fatalf("AppendEventsAfter: %+v; want evt_b where it is and evt_b2 after it in shard 3", more)
	}
}

// Spread groups use every shard, each shard stays dense, and the mark says how many there are;
// the gateway's own threadless events stay in shard 0.
func TestSpreadEventsUseEveryShard(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	st := New(db, table, time.Now).WithShards(4)
	w := NewLogWriter(st)
	var wg sync.WaitGroup
	errs := make([]error, 60)
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := Event{ID: fmt.Sprintf("evt_%02d", i), Type: "webhook.received", WorkspaceID: "ws", Spread: i < 40}
			_, errs[i] = w.AppendEvents(ctx, []Event{e})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	head, err := st.LogHead(ctx, "ws")
	if err != nil || len(head) != 4 {
		t.Fatalf("LogHead = %v, %v; want 4 shards", head, err)
	}
	total := 0
	for sh := range head {
		evs, more, err := st.ListShard(ctx, "ws", sh, 0, 100)
		if err != nil || more {
			t.Fatal(err, more)
		}
		if len(evs) == 0 || int64(len(evs)) != head[sh] {
			t.Fatalf("shard %d holds %d events, its counter says %d", sh, len(evs), head[sh])
		}
		for i, e := range evs {
			if e.Cursor != int64(i+1) || e.Shard != sh {
				t.Fatalf("shard %d is not dense: %d at position %d", sh, e.Cursor, i+1)
			}
			if sh != 0 && !strings.HasPrefix(e.ID, "evt_") || sh != 0 && e.ID >= "evt_40" {
				t.Fatalf("shard %d holds %s, which is not spread", sh, e.ID)
			}
		}
		total += len(evs)
	}
	if total != 60 {
		t.Fatalf("the log holds %d events; want 60", total)
	}
	all, more, err := st.EventsBetween(ctx, "ws", time.Now().Add(-time.Minute), time.Now().Add(time.Minute), 100)
	if err != nil || more || len(all) != 60 {
		t.Fatalf("EventsBetween: %d events, more %v, %v; want 60", len(all), more, err)
	}
	last := map[int]int64{}
	for _, e := range all {
		if e.Cursor <= last[e.Shard] {
			t.Fatalf("EventsBetween has shard %d's cursor %d after %d", e.Shard, e.Cursor, last[e.Shard])
		}
		last[e.Shard] = e.Cursor
	}
}

// markCheck is a DB that, at the first reservation in a shard above 0, reads the log's head as a
// reader would and records whether the mark already covered the shard.
type markCheck struct {
	DB
	st      *Store
	mu      sync.Mutex
	checked map[string]bool
	missed  []string
}

func (m *markCheck) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	pk := str(in.Key, "pk")
	ws, shard, sharded := strings.Cut(strings.TrimPrefix(pk, "WS#"), "#EVSEQ#")
	sh, _ := strconv.Atoi(shard)
	if sharded && sh > 0 && strings.HasPrefix(*in.UpdateExpression, "ADD") {
		m.mu.Lock()
		first := !m.checked[pk]
		m.checked[pk] = true
		m.mu.Unlock()
		if first {
			head, err := m.st.LogHead(ctx, ws)
			if err != nil || len(head) <= sh {
				m.mu.Lock()
				m.missed = append(m.missed, fmt.Sprintf("%s: head %v, %v", pk, head, err))
				m.mu.Unlock()
			}
		}
	}
	return m.DB.UpdateItem(ctx, in, opts...)
}

// A reader that reads the head just before a shard's first reservation already reads that shard:
// the mark is raised first.
func TestMarkCoversAShardBeforeItsFirstReservation(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	check := &markCheck{DB: db, st: New(db, table, time.Now), checked: map[string]bool{}}
	st := New(check, table, time.Now).WithShards(3)
	for i := range 30 {
		if _, err := st.AppendEvent(ctx, Event{ID: fmt.Sprintf("evt_%d", i), Type: "webhook.received", WorkspaceID: "ws", Spread: true}); err != nil {
			t.Fatal(err)
		}
	}
	if len(check.checked) != 2 || len(check.missed) > 0 {
		t.Fatalf("shards reserved in %v; missed %v; want shards 1 and 2, each under the mark", check.checked, check.missed)
	}
}

// A reservation in shard 2 whose writer died is moved within shard 2 by the retry.
func TestStaleMoveStaysInItsShard(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := t0
	st := New(db, table, func() time.Time { return clock }).WithShards(4)
	ctx := context.Background()
	dead := Event{ID: "evt_dead", Type: "webhook.received", WorkspaceID: "ws", Data: json.RawMessage(`{}`), CreatedAt: t0, Shard: 2}
	c, err := st.reserve(ctx, "ws", 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	dead.Cursor = c
	if _, err := claimAlone(ctx, st, dead); err != nil {
		t.Fatal(err)
	}
	clock = t0.Add(staleAfter + time.Second)
	// A process with one shard retries: the marker, not its count, says where the event goes.
	got, err := New(db, table, func() time.Time { return clock }).AppendEvent(ctx, Event{ID: "evt_dead", Type: "webhook.received", WorkspaceID: "ws"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Shard != 2 || got.Cursor != c+1 {
		t.Fatalf("the retry wrote at %d/%d; want shard 2, cursor %d", got.Shard, got.Cursor, c+1)
	}
	if sh, at := shardOfEvent(t, st, "ws", "evt_dead"); sh != 2 || at != c+1 {
		t.Fatalf("the log holds evt_dead at %d/%d", sh, at)
	}
}

// A page that DynamoDB cuts at 1 MB says the shard holds more.
func TestListShardReportsMoreOnAPageCutShort(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	big := json.RawMessage(`"` + strings.Repeat("x", 380_000) + `"`)
	for i := range 4 {
		if _, err := st.AppendEvent(ctx, Event{ID: fmt.Sprintf("evt_%d", i), Type: "webhook.received", WorkspaceID: "ws", Data: big}); err != nil {
			t.Fatal(err)
		}
	}
	evs, more, err := st.ListShard(ctx, "ws", 0, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) >= 4 || !more {
		t.Fatalf("a page of %d events of 380 KB, more = %v; want fewer than 4 and more", len(evs), more)
	}
	rest, more, err := st.ListShard(ctx, "ws", 0, evs[len(evs)-1].Cursor, 10)
	if err != nil || len(evs)+len(rest) != 4 {
		t.Fatalf("the rest: %d events, %v, %v", len(rest), more, err)
	}
}

// One shard writes what a log wrote before shards: no mark, no shard on markers or threads.
func TestOneShardWritesNothingNew(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	if _, _, err := st.CreateRunWith(ctx, newRun("ws", "thr_1", "run_1", time.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendEvents(ctx, []Event{threadEvent("ws", "thr_1", "evt_1"), {ID: "evt_2", Type: "webhook.received", WorkspaceID: "ws", Spread: true}}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		pk, sk, attr string
	}{
		{threadPK("ws", "thr_1"), "META", "log_shard"},
		{"WS#ws#EVID#evt_1", "EVID", "shards"},
		{"WS#ws#EVID#evt_1", "EVID", "shard"},
		{"WS#ws#EVSEQ", "SEQ", "shards"},
	} {
		out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: key(k.pk, k.sk), ConsistentRead: aws.Bool(true)})
		if err != nil || len(out.Item) == 0 {
			t.Fatalf("%s/%s: %v, %v", k.pk, k.sk, out, err)
		}
		if _, ok := out.Item[k.attr]; ok {
			t.Fatalf("%s/%s has %s", k.pk, k.sk, k.attr)
		}
	}
}

func TestParseEventPK(t *testing.T) {
	t.Parallel()
	for pk, want := range map[string]struct {
		ws    string
		shard int
		ok    bool
	}{
		"WS#ws#EV":          {"ws", 0, true},
		"WS#ws#EV#3":        {"ws", 3, true},
		"WS#ws#EV#15":       {"ws", 15, true},
		"WS#ws#EV#16":       {},
		"WS#ws#EV#0":        {},
		"WS#ws#EV#03":       {},
		"WS#ws#EV#-1":       {},
		"WS#ws#EV#":         {},
		"WS#ws#EVSEQ":       {},
		"WS#ws#EVID#evt_1":  {},
		"WS##EV":            {},
		"WS#a#b#EV":         {},
		"ws#EV":             {},
		"WS#ws#THR#t#EV#1":  {},
		"WS#ws#EV#1#EV":     {},
		"WS#ws#EV#99999999": {},
	} {
		ws, sh, ok := ParseEventPK(pk)
		if ws != want.ws || sh != want.shard || ok != want.ok {
			t.Errorf("ParseEventPK(%q) = %q, %d, %v; want %q, %d, %v", pk, ws, sh, ok, want.ws, want.shard, want.ok)
		}
		if ok && EventPK(ws, sh) != pk {
			t.Errorf("EventPK(%q, %d) = %q; want %q", ws, sh, EventPK(ws, sh), pk)
		}
	}
}

// Keys that differ in one character spread over the shards: the shard is taken from the hash's
// high bits.
func TestHashShardSpreadsNeighbouringKeys(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 4, 8} {
		seen := map[int]int{}
		for c := 'a'; c <= 'z'; c++ {
			seen[HashShard("thr_"+string(c), n)]++
		}
		if len(seen) != n {
			t.Errorf("26 neighbouring keys over %d shards used %d of them: %v", n, len(seen), seen)
		}
	}
}

// A thread's shard carried by a queued message is taken only when the process does not know the
// thread's own: what the table told it wins, and a shard out of range is never taken.
func TestLearnThreadShardNeverReplacesWhatTheTableSaid(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	thread := threadIn(t, "thr", 3, 4)
	st := New(db, table, time.Now).WithShards(4)
	if _, _, err := st.CreateRunWith(ctx, newRun("ws", thread, "run_1", time.Now())); err != nil {
		t.Fatal(err)
	}
	st.LearnThreadShard("ws", thread, 1)
	if sh, ok := st.KnownThreadShard("ws", thread); !ok || sh != 3 {
		t.Fatalf("known shard %d, %v; want 3, from the thread's write", sh, ok)
	}
	other := New(db, table, time.Now)
	other.LearnThreadShard("ws", "thr_new", MaxShards)
	if _, ok := other.KnownThreadShard("ws", "thr_new"); ok {
		t.Fatal("a shard out of range was learnt")
	}
	other.LearnThreadShard("ws", "thr_new", 2)
	if sh, ok := other.KnownThreadShard("ws", "thr_new"); !ok || sh != 2 {
		t.Fatalf("known shard %d, %v; want 2", sh, ok)
	}
}
