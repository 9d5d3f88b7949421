package eventstream

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/store"
)

// An append reserves cursors, claims its events' ids, then writes the events. Writers that die
// between those steps leave cursors that never fill: a reader of the dense log waits for them (it
// never passes a cursor someone may still write), passes them once they cannot fill (neither
// waiting forever nor losing an event), and the dead writer's retry appends its event after
// wherever readers are, exactly once.
func TestReadersSurviveAWriterThatDiesBetweenReservingAndWriting(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "deadwriter")
	// The clock runs (the windows time out by it) and jumps ahead when the test says.
	var mu sync.Mutex
	var offset time.Duration
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().UTC().Add(offset) }
	advance := func(d time.Duration) { mu.Lock(); offset += d; mu.Unlock() }
	st := store.New(db, table, now)
	ctx := context.Background()
	const ws = "ws"
	attr := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	// What a writer does before it dies: reserve a cursor, and maybe claim an id for it.
	reserve := func() int64 {
		t.Helper()
		out, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table),
			Key:              map[string]types.AttributeValue{"pk": attr("WS#" + ws + "#EVSEQ"), "sk": attr("SEQ")},
			UpdateExpression: aws.String("ADD seq :one"), ReturnValues: types.ReturnValueUpdatedNew,
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := strconv.ParseInt(out.Attributes["seq"].(*types.AttributeValueMemberN).Value, 10, 64)
		return c
	}
	claim := func(id string, cursor int64) {
		t.Helper()
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
			"pk": attr("WS#" + ws + "#EVID#" + id), "sk": attr("EVID"), "cursor": &types.AttributeValueMemberN{Value: strconv.FormatInt(cursor, 10)},
			"created_at": attr(now().Format(time.RFC3339Nano)),
		}}); err != nil {
			t.Fatal(err)
		}
	}
	appendOne := func(id string) store.Event {
		t.Helper()
		e, err := st.AppendEvent(ctx, store.Event{ID: id, Type: "run.completed", WorkspaceID: ws})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	cfg := testConfig()
	src := Source{Read: func(ctx context.Context, shard int, after int64, limit int) ([]store.Event, bool, error) {
		return st.ListShard(ctx, ws, shard, after, limit)
	}, Dense: true, Render: all}
	read := func(from int64) ([]string, int64) {
		t.Helper()
		res, err := cfg.Serve(ctx, src, []int64{from}, now, discard())
		if err != nil {
			t.Fatal(err)
		}
		evs, _ := parse(t, res.Body, "")
		var ids []string
		for _, e := range evs {
			ids = append(ids, e.ID)
		}
		return ids, res.Pos[0]
	}

	appendOne("evt_first")       // 1
	reserve()                    // 2: reserved, then the writer died
	claim("evt_dead", reserve()) // 3: reserved and claimed, then the writer died
	appendOne("evt_after")       // 4
	if ids, c := read(0); len(ids) != 1 || ids[0] != "1" || c != 1 {
		t.Fatalf("before the gap: %v, cursor %d (want 1, and wait at 2)", ids, c)
	}
	if ids, c := read(1); len(ids) != 0 || c != 1 {
		t.Fatalf("at a fresh gap: %v, cursor %d (want nothing yet)", ids, c)
	}
	// Once the event after the gap is GapGrace old, nobody can write 2 or 3 any more: passed.
	advance(cfg.GapGrace + time.Second)
	if ids, c := read(1); len(ids) != 1 || ids[0] != "4" || c != 4 {
		t.Fatalf("past the dead gap: %v, cursor %d (want 4)", ids, c)
	}
	// The writer of evt_dead is retried (SQS redelivers its message): its claim is stale, so the
	// event moves after what readers have seen, and comes to them.
	if e := appendOne("evt_dead"); e.Cursor != 5 {
		t.Fatalf("the retried event is at %d, want 5", e.Cursor)
	}
	if ids, c := read(4); len(ids) != 1 || ids[0] != "5" || c != 5 {
		t.Fatalf("after the retry: %v, cursor %d (want 5)", ids, c)
	}
	// A writer that claimed and died is retried within its window: the event lands where it was
	// reserved, and the reader waiting there gets it.
	claim("evt_quick", reserve()) // 6
	if ids, c := read(5); len(ids) != 0 || c != 5 {
		t.Fatalf("at the fresh claim: %v, cursor %d", ids, c)
	}
	if e := appendOne("evt_quick"); e.Cursor != 6 {
		t.Fatalf("the quick retry is at %d, want 6", e.Cursor)
	}
	if ids, c := read(5); len(ids) != 1 || ids[0] != "6" || c != 6 {
		t.Fatalf("after the quick retry: %v, cursor %d (want 6)", ids, c)
	}
	// Every event once, at one cursor; retries of appended events change nothing.
	for _, id := range []string{"evt_first", "evt_after", "evt_dead", "evt_quick"} {
		appendOne(id)
	}
	log, err := st.ListEvents(ctx, ws, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		got = append(got, e.ID+"@"+strconv.FormatInt(e.Cursor, 10))
	}
	if want := "[evt_first@1 evt_after@4 evt_dead@5 evt_quick@6]"; fmtSlice(got) != want {
		t.Fatalf("log %s, want %s", fmtSlice(got), want)
	}
}

func fmtSlice(s []string) string {
	out := "["
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out + "]"
}

// With four shards, a writer that dies between reserving and writing in one shard holds back that
// shard only: the other shards' events come at once, the dead cursors are passed once they cannot
// fill (readers do not wait forever, and lose nothing), and the dead writer's retried event moves
// within its shard and comes once.
func TestReadersSurviveAWriterThatDiesInOneShardOfFour(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "deadwriter4")
	var mu sync.Mutex
	var offset time.Duration
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().UTC().Add(offset) }
	advance := func(d time.Duration) { mu.Lock(); offset += d; mu.Unlock() }
	st := store.New(db, table, now).WithShards(4)
	ctx := context.Background()
	const ws, dead = "ws", 2 // the writer dies in shard 2
	attr := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	num := func(v int64) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
	}
	reserve := func() int64 {
		t.Helper()
		out, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table),
			Key:              map[string]types.AttributeValue{"pk": attr("WS#" + ws + "#EVSEQ#" + strconv.Itoa(dead)), "sk": attr("SEQ")},
			UpdateExpression: aws.String("ADD seq :one"), ReturnValues: types.ReturnValueUpdatedNew,
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1)}})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := strconv.ParseInt(out.Attributes["seq"].(*types.AttributeValueMemberN).Value, 10, 64)
		return c
	}
	appendOne := func(id string) store.Event {
		t.Helper()
		e, err := st.AppendEvent(ctx, store.Event{ID: id, Type: "webhook.test", WorkspaceID: ws, Spread: true})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	byID := func(e store.Event) (string, []byte, bool) { return e.Type, []byte(e.ID), true }
	cfg := testConfig()
	read := func(from []int64) ([]string, []int64) {
		t.Helper()
		head, err := st.LogHead(ctx, ws)
		if err != nil {
			t.Fatal(err)
		}
		src := Source{Shards: len(head), Read: func(ctx context.Context, shard int, after int64, limit int) ([]store.Event, bool, error) {
			return st.ListShard(ctx, ws, shard, after, limit)
		}, Dense: true, Render: byID}
		res, err := cfg.Serve(ctx, src, from, now, discard())
		if err != nil {
			t.Fatal(err)
		}
		evs, _ := parse(t, res.Body, "")
		var got []string
		for _, e := range evs {
			got = append(got, e.Data)
		}
		return got, res.Pos
	}

	// Spread events until each shard holds one: the mark is then 4.
	var before []store.Event
	for shards := map[int]bool{}; len(shards) < 4; {
		if len(before) == 200 {
			t.Fatalf("200 spread events did not reach four shards: %v", shards)
		}
		e := appendOne(fmt.Sprintf("evt_a%d", len(before)))
		shards[e.Shard] = true
		before = append(before, e)
	}
	head, err := st.LogHead(ctx, ws)
	if err != nil || len(head) != 4 {
		t.Fatalf("the log's head %v, %v: want four shards", head, err)
	}
	gap := reserve() // reserved, then the writer died
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
		"pk": attr("WS#" + ws + "#EVID#evt_dead"), "sk": attr("EVID"), "cursor": num(reserve()), "shard": num(dead),
		"created_at": attr(now().Format(time.RFC3339Nano)),
	}}); err != nil { // reserved and claimed, then the writer died
		t.Fatal(err)
	}
	// More spread events, until one lands in shard 2 after the gap and one in another shard.
	var after []store.Event
	for inDead, elsewhere := false, false; !inDead || !elsewhere; {
		if len(after) == 200 {
			t.Fatal("200 spread events did not reach shard 2 and another")
		}
		e := appendOne(fmt.Sprintf("evt_b%d", len(after)))
		inDead, elsewhere = inDead || e.Shard == dead, elsewhere || e.Shard != dead
		after = append(after, e)
	}
	want, held := map[string]bool{}, map[string]bool{}
	wantPos := make([]int64, 4)
	for _, e := range append(slices.Clone(before), after...) {
		if e.Shard == dead && e.Cursor > gap {
			held[e.ID] = true
			continue
		}
		want[e.ID] = true
		wantPos[e.Shard] = max(wantPos[e.Shard], e.Cursor)
	}
	got, pos := read(make([]int64, 4))
	if !sameSet(got, want) || !slices.Equal(pos, wantPos) || pos[dead] != gap-1 {
		t.Fatalf("beside the fresh gap: %v at %v; want %v at %v", got, pos, want, wantPos)
	}
	if got, again := read(pos); len(got) != 0 || !slices.Equal(again, pos) {
		t.Fatalf("at the fresh gap: %v at %v (want nothing yet)", got, again)
	}
	// Once the events after the gap are GapGrace old, nobody can write it any more: passed.
	advance(cfg.GapGrace + time.Second)
	got, pos = read(pos)
	if head, _ = st.LogHead(ctx, ws); !sameSet(got, held) || !slices.Equal(pos, head) {
		t.Fatalf("past the dead gap: %v at %v; want %v at %v", got, pos, held, head)
	}
	// The claimed writer is retried: its claim is stale, so the event moves within its shard after
	// what readers have seen, and comes to them.
	if e := appendOne("evt_dead"); e.Shard != dead || e.Cursor != head[dead]+1 {
		t.Fatalf("the retried event is at shard %d cursor %d, want shard %d cursor %d", e.Shard, e.Cursor, dead, head[dead]+1)
	}
	if got, _ := read(pos); !slices.Equal(got, []string{"evt_dead"}) {
		t.Fatalf("after the retry: %v", got)
	}
	// Every event once, in one shard; retries of appended events change nothing.
	for _, e := range append(before, after...) {
		appendOne(e.ID)
	}
	seen := map[string]bool{}
	for sh := range 4 {
		evs, _, err := st.ListShard(ctx, ws, sh, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if seen[e.ID] {
				t.Fatalf("%s is in the log twice", e.ID)
			}
			seen[e.ID] = true
		}
	}
	if len(seen) != len(before)+len(after)+1 || !seen["evt_dead"] {
		t.Fatalf("the log holds %d events, want %d", len(seen), len(before)+len(after)+1)
	}
}

func sameSet(got []string, want map[string]bool) bool {
	if len(got) != len(want) {
		return false
	}
	for _, id := range got {
		if !want[id] {
			return false
		}
	}
	return true
}
