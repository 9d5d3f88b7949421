package eventstream

import (
	"context"
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
	src := Source{Read: func(ctx context.Context, after int64, limit int) ([]store.Event, error) {
		return st.ListEvents(ctx, ws, after, limit)
	}, Dense: true, Render: all}
	read := func(from int64) ([]string, int64) {
		t.Helper()
		res, err := cfg.Serve(ctx, src, from, now, discard())
		if err != nil {
			t.Fatal(err)
		}
		evs, _ := parse(t, res.Body, "")
		var ids []string
		for _, e := range evs {
			ids = append(ids, e.ID)
		}
		return ids, res.Cursor
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
