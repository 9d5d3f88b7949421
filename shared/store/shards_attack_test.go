package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
)

// Attacks on the shards of a workspace's log: crafted items, processes that disagree on the
// number of shards, reposts that name another thread.

// logItems scans the table for the workspace's log items: the pk of every event item and of every
// counter item, by pk prefix.
func logItems(t *testing.T, st *Store, ws string) (events, counters []string) {
	t.Helper()
	p := dynamodb.NewScanPaginator(st.db.(dynamodb.ScanAPIClient), &dynamodb.ScanInput{TableName: &st.table, ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range out.Items {
			pk := str(it, "pk")
			switch {
			case strings.HasPrefix(pk, "WS#"+ws+"#EVSEQ"):
				counters = append(counters, pk)
			case strings.HasPrefix(pk, "WS#"+ws+"#EV") && !strings.HasPrefix(pk, "WS#"+ws+"#EVID#"):
				events = append(events, pk)
			}
		}
	}
	return events, counters
}

// wantLogInShards fails unless every event and counter item of the workspace is one of shards
// 0..MaxShards-1.
func wantLogInShards(t *testing.T, st *Store, ws string) {
	t.Helper()
	evs, counters := logItems(t, st, ws)
	for _, pk := range evs {
		if w, sh, ok := ParseEventPK(pk); !ok || w != ws || sh < 0 || sh >= MaxShards {
			t.Errorf("an event item at %q: outside shards 0..%d", pk, MaxShards-1)
		}
	}
	known := map[string]bool{}
	for sh := range MaxShards {
		known[seqPK(ws, sh)] = true
	}
	for _, pk := range counters {
		if !known[pk] {
			t.Errorf("a counter item at %q: outside shards 0..%d", pk, MaxShards-1)
		}
	}
}

// A META item whose log_shard was tampered with (negative, past the shards, a string, a
// fraction, huge, another type): the store refuses the thread's writes or keeps them in a shard
// it may use, and never writes outside shards 0..15 nor panics, whatever the process's shards.
func TestAttackCraftedLogShardOnMeta(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	crafted := map[string]types.AttributeValue{
		"neg":      &types.AttributeValueMemberN{Value: "-1"},
		"minint":   &types.AttributeValueMemberN{Value: "-9223372036854775808"},
		"sixteen":  &types.AttributeValueMemberN{Value: "16"},
		"ninetynn": &types.AttributeValueMemberN{Value: "99"},
		"wrap32":   &types.AttributeValueMemberN{Value: "4294967299"},
		"overflow": &types.AttributeValueMemberN{Value: "18446744073709551619"},
		"huge":     &types.AttributeValueMemberN{Value: "1E+30"},
		"fraction": &types.AttributeValueMemberN{Value: "2.5"},
		"string":   &types.AttributeValueMemberS{Value: "3"},
		"bool":     &types.AttributeValueMemberBOOL{Value: true},
		"list":     &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "3"}}},
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range crafted {
			if !yield(k) {
				return
			}
		}
	})
	for _, name := range names {
		thread := "thr_" + name
		if _, _, err := New(db, table, time.Now).CreateRunWith(ctx, newRun("ws", thread, "run_"+name, time.Now())); err != nil {
			t.Fatal(err)
		}
		if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: &table, Key: key(threadPK("ws", thread), "META"),
			UpdateExpression:          aws.String("SET log_shard = :v"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": crafted[name]},
		}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, n := range []int{1, 4, 16} {
			st := New(db, table, time.Now).WithShards(n) // a fresh process: it reads the META
			nr := newRun("ws", thread, fmt.Sprintf("run_%s_%d", name, n), time.Now())
			nr.FollowUp = true
			_, _, runErr := st.CreateRunWith(ctx, nr)
			id := fmt.Sprintf("evt_%s_%d", name, n)
			got, err := New(db, table, time.Now).WithShards(n).AppendEvent(ctx, threadEvent("ws", thread, id))
			if err == nil && (got.Shard < 0 || got.Shard >= MaxShards) {
				t.Errorf("%s, %d shards: the event was appended to shard %d", name, n, got.Shard)
			}
			if _, err := New(db, table, time.Now).ThreadHead(ctx, "ws", thread); err != nil && err.Error() == "" {
				t.Errorf("%s: ThreadHead failed without a word", name)
			}
			t.Logf("%s, %d shards: run: %v; append: shard %d, %v", name, n, runErr, got.Shard, err)
		}
	}
	wantLogInShards(t, New(db, table, time.Now), "ws")
	head, err := New(db, table, time.Now).LogHead(ctx, "ws")
	if err != nil || len(head) < 1 || len(head) > MaxShards {
		t.Fatalf("LogHead = %v, %v", head, err)
	}
}

// A shard recorded on an id marker that was tampered with (past the shards, negative, a list
// entry out of range): a repeat of the append is refused, never written outside the shards.
func TestAttackCraftedShardOnMarker(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	st := New(db, table, time.Now).WithShards(4)
	one := Event{ID: "evt_one", Type: "webhook.received", WorkspaceID: "ws", Spread: true}
	group := []Event{{ID: "evt_g1", Type: "webhook.received", WorkspaceID: "ws", Spread: true}, {ID: "evt_g2", Type: "webhook.received", WorkspaceID: "ws"}}
	if _, err := st.AppendEvent(ctx, one); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendEvents(ctx, group); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		marker, set string
		v           types.AttributeValue
	}{
		{"evt_one", "shard", &types.AttributeValueMemberN{Value: "99"}},
		{"evt_one", "shard", &types.AttributeValueMemberN{Value: "-2"}},
		{"evt_g1", "shards", &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "0"}, &types.AttributeValueMemberN{Value: "16"}}}},
		{"evt_g1", "shards", &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "1"}, &types.AttributeValueMemberN{Value: "1"}}}},
		{"evt_g1", "shards", &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "1"}}}},
	} {
		if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: &table, Key: markerKey("ws", c.marker),
			UpdateExpression:          aws.String("SET #a = :v"),
			ExpressionAttributeNames:  map[string]string{"#a": c.set},
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": c.v},
		}); err != nil {
			t.Fatal(err)
		}
		evs := []Event{one}
		if c.marker == "evt_g1" {
			evs = group
		}
		for _, n := range []int{1, 16} {
			got, err := New(db, table, time.Now).WithShards(n).AppendEvents(ctx, evs)
			if err == nil {
				t.Errorf("marker %s with %s = %v: the repeat was taken: %+v", c.marker, c.set, c.v, got)
			}
		}
	}
	wantLogInShards(t, st, "ws")
}

// A thread whose META says another channel is not continued by a process of any shard count, and
// the refusal changes neither its channel nor its shard.
func TestAttackMetaOfAnotherChannel(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	thread := threadIn(t, "chan", 3, 4)
	if _, _, err := New(db, table, time.Now).WithShards(4).CreateRunWith(ctx, newRun("ws", thread, "run_0", time.Now())); err != nil {
		t.Fatal(err)
	}
	for i, n := range []int{1, 4, 16} {
		for _, followUp := range []bool{false, true} {
			nr := newRun("ws", thread, fmt.Sprintf("run_%d_%v", i, followUp), time.Now())
			nr.Thread.Channel, nr.FollowUp = "email", followUp
			if _, _, err := New(db, table, time.Now).WithShards(n).CreateRunWith(ctx, nr); err == nil {
				t.Fatalf("%d shards, follow-up %v: a run on another channel's thread was taken", n, followUp)
			}
		}
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: key(threadPK("ws", thread), "META"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if str(out.Item, "channel") != "webhook.a" || num(out.Item, "log_shard") != 3 {
		t.Fatalf("META now says channel %q, shard %d; want webhook.a, 3", str(out.Item, "channel"), num(out.Item, "log_shard"))
	}
}

// threadLog is where the log holds each event (id → shard/cursor), read over every shard.
func threadLog(t *testing.T, st *Store, ws string) map[string][2]int64 {
	t.Helper()
	ctx := context.Background()
	head, err := st.LogHead(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	at := map[string][2]int64{}
	for sh := range head {
		for after := int64(0); ; {
			evs, _, err := st.ListShard(ctx, ws, sh, after, 500)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			for _, e := range evs {
				if _, dup := at[e.ID]; dup {
					t.Errorf("event %s is in the log twice", e.ID)
				}
				at[e.ID] = [2]int64{int64(sh), e.Cursor}
				after = e.Cursor
			}
		}
	}
	return at
}

// wantThreadInItsShard fails unless every event the thread's index holds is in the log, in the
// shard META records, at the cursor the index says, and the index never names a cursor past the
// counter its reader (ThreadHead) checks tokens against.
func wantThreadInItsShard(t *testing.T, st *Store, ws, thread string, log map[string][2]int64) []Event {
	t.Helper()
	ctx := context.Background()
	sh, err := New(st.db, st.table, time.Now).threadShard(ctx, ws, thread)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := st.ListThreadEvents(ctx, ws, thread, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	head, err := st.ThreadHead(ctx, ws, thread)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range idx {
		at, ok := log[e.ID]
		if !ok || at[0] != int64(sh) || at[1] != e.Cursor {
			t.Errorf("thread %s (shard %d) indexes %s at cursor %d; the log holds it at %v (found %v)", thread, sh, e.ID, e.Cursor, at, ok)
		}
		if e.Cursor > head {
			t.Errorf("thread %s indexes %s at cursor %d, past its shard's head %d: a widget holding it gets 400", thread, e.ID, e.Cursor, head)
		}
	}
	return idx
}

// A repost under the same idempotency key naming another thread (the generic door derives the
// message and run ids from the key, the thread from channel and external id): the worker appends
// the repost's opening events, with the first post's ids but the other thread's thread_id. The log
// keeps one copy, where the first post put it, in its thread's shard. The other thread's index must
// not get that copy at a cursor of a shard that is not its own: its widget would pass its own later
// events (sparse index, read after the foreign cursor) or be refused (a cursor past its head).
func TestAttackRepostNamingAnotherThreadKeepsEachIndexInItsShard(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	a, b := threadIn(t, "a", 1, 4), threadIn(t, "b", 2, 4)
	st4 := New(db, table, time.Now).WithShards(4)
	for i, th := range []string{a, b} {
		if _, _, err := st4.CreateRunWith(ctx, newRun("ws", th, fmt.Sprintf("run_%d", i), time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	// Thread a's shard runs ahead of b's.
	for i := range 6 {
		if _, err := st4.AppendEvent(ctx, threadEvent("ws", a, fmt.Sprintf("evt_a%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st4.AppendEvent(ctx, threadEvent("ws", b, "evt_b0")); err != nil {
		t.Fatal(err)
	}
	first, err := st4.AppendEvents(ctx, []Event{threadEvent("ws", a, "evt_msg_k"), threadEvent("ws", a, "evt_run_k")})
	if err != nil {
		t.Fatal(err)
	}
	// The repost, by another process (its own shard count), names thread b.
	for _, n := range []int{4, 16} {
		again, err := New(db, table, time.Now).WithShards(n).AppendEvents(ctx, []Event{threadEvent("ws", b, "evt_msg_k"), threadEvent("ws", b, "evt_run_k")})
		if err != nil {
			t.Fatal(err)
		}
		for i := range first {
			if again[i].Shard != first[i].Shard || again[i].Cursor != first[i].Cursor {
				t.Fatalf("the repost put %s at %d/%d; the log holds it at %d/%d", first[i].ID, again[i].Shard, again[i].Cursor, first[i].Shard, first[i].Cursor)
			}
		}
	}
	// b's widget reads its index as the stream does (after the last cursor it read), then thread b
	// goes on.
	var seen []string
	var after int64
	read := func() {
		for {
			evs, err := st4.ListThreadEvents(ctx, "ws", b, after, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) == 0 {
				return
			}
			seen, after = append(seen, evs[0].ID), evs[0].Cursor
		}
	}
	read()
	if _, err := st4.AppendEvent(ctx, threadEvent("ws", b, "evt_b1")); err != nil {
		t.Fatal(err)
	}
	read()
	log := threadLog(t, st4, "ws")
	wantThreadInItsShard(t, st4, "ws", a, log)
	idx := wantThreadInItsShard(t, st4, "ws", b, log)
	if !slices.Contains(seen, "evt_b1") {
		t.Errorf("thread b's reader never sees evt_b1: it read %v, up to cursor %d (index %v)", seen, after, eventIDs(idx))
	}
}

func eventIDs(evs []Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// Creators with 1, 4 and 16 shards race on the same threads, each appending its own events and
// repeating the others': every event is in the log once, each thread's events in the shard its META
// records (none: 0), in the order each appender appended them, and each thread's index matches.
func TestAttackCreatorsWithOneFourSixteenShards(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	counts := []int{1, 4, 16}
	threads := make([]string, 6)
	for i := range threads {
		threads[i] = fmt.Sprintf("race_%d", i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for _, thread := range threads {
		for j, n := range counts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st := New(db, table, time.Now).WithShards(n)
				nr := newRun("ws", thread, fmt.Sprintf("run_%s_%d", thread, j), time.Now())
				nr.Thread.Channel = "widget"
				if _, _, err := st.CreateRunWith(ctx, nr); err != nil {
					errs <- err
					return
				}
				for k := range 3 {
					if _, err := st.AppendEvents(ctx, []Event{threadEvent("ws", thread, fmt.Sprintf("evt_%s_%d_%d", thread, j, k))}); err != nil {
						errs <- err
						return
					}
				}
				// Repeat the others' first events (a redelivery handled by another process).
				for o := range counts {
					if _, err := st.AppendEvent(ctx, threadEvent("ws", thread, fmt.Sprintf("evt_%s_%d_0", thread, o))); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	reader := New(db, table, time.Now)
	log := threadLog(t, reader, "ws")
	for _, thread := range threads {
		sh, err := reader.threadShard(ctx, "ws", thread)
		if err != nil {
			t.Fatal(err)
		}
		for j := range counts {
			var last int64
			for k := range 3 {
				id := fmt.Sprintf("evt_%s_%d_%d", thread, j, k)
				at, ok := log[id]
				if !ok || at[0] != int64(sh) || at[1] <= last {
					t.Errorf("%s: at %v (found %v); want shard %d after cursor %d", id, at, ok, sh, last)
				}
				last = at[1]
			}
		}
		if idx := wantThreadInItsShard(t, reader, "ws", thread, log); len(idx) != 3*len(counts) {
			t.Errorf("thread %s indexes %d events; want %d", thread, len(idx), 3*len(counts))
		}
	}
	wantLogInShards(t, reader, "ws")
}

// The same groups appended at once, for the first time, by processes with 1, 4 and 16 shards (a
// spread webhook, a group whose first event names no thread, one that names two threads): each
// event is in the log once, and every append returns where it is.
func TestAttackSameGroupsAppendedAtOnceWithOtherShardCounts(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	a, b := threadIn(t, "ga", 1, 4), threadIn(t, "gb", 3, 4)
	for i, th := range []string{a, b} {
		if _, _, err := New(db, table, time.Now).WithShards(4).CreateRunWith(ctx, newRun("ws", th, fmt.Sprintf("run_%d", i), time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	groups := make([][]Event, 0, 30)
	for i := range 10 {
		groups = append(groups,
			[]Event{{ID: fmt.Sprintf("evt_hook_%d", i), Type: "webhook.received", WorkspaceID: "ws", Spread: true}},
			[]Event{{ID: fmt.Sprintf("evt_lead_%d", i), Type: "webhook.received", WorkspaceID: "ws", Spread: true}, threadEvent("ws", a, fmt.Sprintf("evt_la_%d", i))},
			[]Event{threadEvent("ws", a, fmt.Sprintf("evt_2a_%d", i)), threadEvent("ws", b, fmt.Sprintf("evt_2b_%d", i)), {ID: fmt.Sprintf("evt_2x_%d", i), Type: "run.note", WorkspaceID: "ws"}},
		)
	}
	type result struct {
		n   int
		evs []Event
		err error
	}
	results := make([][]result, len(groups))
	var wg sync.WaitGroup
	for g := range groups {
		results[g] = make([]result, 3)
		for j, n := range []int{1, 4, 16} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A copy each: AppendEvents writes into its argument (checkEvents sets empty data to {}).
				evs, err := New(db, table, time.Now).WithShards(n).AppendEvents(ctx, slices.Clone(groups[g]))
				results[g][j] = result{n, evs, err}
			}()
		}
	}
	wg.Wait()
	log := threadLog(t, New(db, table, time.Now), "ws")
	for g, rs := range results {
		for _, r := range rs {
			if r.err != nil {
				t.Fatalf("group %d, %d shards: %v", g, r.n, r.err)
			}
			for _, e := range r.evs {
				if at, ok := log[e.ID]; !ok || at != [2]int64{int64(e.Shard), e.Cursor} {
					t.Errorf("%d shards: the append says %s is at %d/%d; the log has it at %v (%v)", r.n, e.ID, e.Shard, e.Cursor, at, ok)
				}
			}
		}
	}
	for _, th := range []string{a, b} {
		wantThreadInItsShard(t, New(db, table, time.Now), "ws", th, log)
	}
	if want := 10 * (1 + 2 + 3); len(log) != want {
		t.Errorf("the log holds %d events; want %d", len(log), want)
	}
	wantLogInShards(t, New(db, table, time.Now), "ws")
}

// A run with a slot (one transaction) on a thread whose shard the process guesses wrong: a thread
// from before shards, and one a 16-shard process created, continued by processes of 4 and 16
// shards. The transaction is made again with the shard the thread records, and the thread's events
// stay in that shard.
func TestAttackSlotRunOnAThreadOfAnotherShard(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	old := threadIn(t, "slot_old", 3, 4)
	var other string
	for i := range 1000 {
		if id := fmt.Sprintf("slot_new_%d", i); HashShard(id, 16) != HashShard(id, 4) && HashShard(id, 16) != 0 {
			other = id
			break
		}
	}
	creators := map[string]int{old: 1, other: 16}
	slot := 0
	for _, thread := range []string{old, other} {
		if _, _, err := New(db, table, time.Now).WithShards(creators[thread]).CreateRunWith(ctx, newRun("ws", thread, "run_first_"+thread, time.Now())); err != nil {
			t.Fatal(err)
		}
		want := HashShard(thread, creators[thread])
		for _, n := range []int{4, 16, 1} {
			st := New(db, table, time.Now).WithShards(n)
			nr := newRun("ws", thread, fmt.Sprintf("run_%s_%d", thread, n), time.Now())
			nr.FollowUp = true
			nr.Slot = &Slot{Pool: "pool", Index: slot, Lease: time.Minute}
			slot++
			if _, created, err := st.CreateRunWith(ctx, nr); err != nil || !created {
				t.Fatalf("%s, %d shards: a run in a slot: %v, %v", thread, n, created, err)
			}
			e, err := st.AppendEvent(ctx, threadEvent("ws", thread, fmt.Sprintf("evt_%s_%d", thread, n)))
			if err != nil {
				t.Fatal(err)
			}
			if e.Shard != want {
				t.Errorf("%s (shard %d), %d shards: the event went to shard %d", thread, want, n, e.Shard)
			}
		}
	}
}

// A mark on the shard-0 counter that was tampered with (past the shards, negative, zero): LogHead
// reads between 1 and MaxShards shards, and an append of any shard count still works in 0..15.
func TestAttackCraftedMark(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	for i, mark := range []string{"99", "-3", "0", "16", "9223372036854775807"} {
		ws := fmt.Sprintf("ws%d", i)
		if _, err := New(db, table, time.Now).AppendEvent(ctx, Event{ID: "evt_0", Type: "webhook.received", WorkspaceID: ws}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: &table, Key: seqKey(ws, 0), UpdateExpression: aws.String("SET shards = :m"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":m": &types.AttributeValueMemberN{Value: mark}},
		}); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 4, 16} {
			for k := range 8 {
				e := Event{ID: fmt.Sprintf("evt_%d_%d", n, k), Type: "webhook.received", WorkspaceID: ws, Spread: true}
				if _, err := New(db, table, time.Now).WithShards(n).AppendEvent(ctx, e); err != nil {
					t.Fatalf("mark %s, %d shards: %v", mark, n, err)
				}
			}
		}
		head, err := New(db, table, time.Now).LogHead(ctx, ws)
		if err != nil || len(head) < 1 || len(head) > MaxShards {
			t.Fatalf("mark %s: LogHead = %v, %v", mark, head, err)
		}
		wantLogInShards(t, New(db, table, time.Now), ws)
		t.Logf("mark %s: LogHead reads %d shards: %v", mark, len(head), head)
	}
}
