package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
)

// Attacks on the group id markers (one marker per appended group, keyed by its first event).

func gev(id string) Event {
	return Event{ID: id, Type: "test.event", WorkspaceID: "ws", Data: json.RawMessage(`{}`)}
}

// logOnce reads the whole log of ws and fails the test if an event id is in it more than once; it
// returns each id's cursor.
func logOnce(t *testing.T, st *Store, ws string) map[string]int64 {
	t.Helper()
	log, err := st.ListEvents(context.Background(), ws, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	at := map[string]int64{}
	for _, e := range log {
		if c, dup := at[e.ID]; dup {
			t.Fatalf("%s twice in the log, at %d and %d: %+v", e.ID, c, e.Cursor, log)
		}
		at[e.ID] = e.Cursor
	}
	return at
}

func marker(t *testing.T, db DB, table, ws, id string) map[string]types.AttributeValue {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &table, Key: markerKey(ws, id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// A group that names one event id twice. Before groups each id had its own marker, so the two
// claims of one id met on it and the event was written once. (No caller in the code base passes
// such a group today: the worker's event ids are derived from distinct subjects.)
func TestAttackGroupNamingAnIDTwiceAppendsItOnce(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	got, err := st.AppendEvents(ctx, []Event{gev("evt_x"), gev("evt_y"), gev("evt_x")})
	if err != nil {
		// Refusing the group is an acceptable answer too.
		t.Logf("refused: %v", err)
		return
	}
	if got[0].Cursor != got[2].Cursor {
		t.Errorf("evt_x returned at cursors %d and %d", got[0].Cursor, got[2].Cursor)
	}
	logOnce(t, st, "ws")
}

// Groups sharing their first event, with different events after it, appended at once by separate
// stores (a run's later state leads with the same reply's message.sent as its earlier state): every
// event is in the log once, and every appender is told the cursor the log has.
func TestAttackGroupsSharingTheirFirstEventRacing(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	groups := [][]string{
		{"evt_s", "evt_q"},
		{"evt_s", "evt_c"},
		{"evt_s"},
	}
	const rounds = 3
	var mu sync.Mutex
	told := map[string]map[int64]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, rounds*len(groups))
	for range rounds {
		for _, g := range groups {
			wg.Add(1)
			go func() {
				defer wg.Done()
				evs := make([]Event, len(g))
				for i, id := range g {
					evs[i] = gev(id)
				}
				out, err := New(db, table, time.Now).AppendEvents(ctx, evs)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, e := range out {
					if told[e.ID] == nil {
						told[e.ID] = map[int64]bool{}
					}
					told[e.ID][e.Cursor] = true
				}
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	at := logOnce(t, New(db, table, time.Now), "ws")
	if len(at) != 3 {
		t.Fatalf("log holds %v; want evt_s, evt_q, evt_c", at)
	}
	for id, cs := range told {
		if len(cs) != 1 || !cs[at[id]] {
			t.Fatalf("appenders were told %s is at %v; the log has it at %d", id, cs, at[id])
		}
	}
}

// An appender claimed a group of three and died before writing any of it. Two retries from
// separate stores, after the reservation is stale, move the events at once: each event lands once,
// both retries agree on the cursors, and the move of the first event also moves the marker's
// cursor and created_at (where a marker of one keeps them, and where the version before groups
// reads them).
func TestAttackTwoRetriesMoveADeadGroupOnce(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := t0
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	st := New(db, table, now)
	ctx := context.Background()
	last := reserveAndClaim(t, st, t0, "evt_a", "evt_b", "evt_c")[2].e.Cursor // the group's reservation ends here
	mu.Lock()
	clock = t0.Add(staleAfter + time.Second)
	mu.Unlock()
	var got [2][]Event
	var errs [2]error
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = New(db, table, now).AppendEvents(ctx, []Event{gev("evt_a"), gev("evt_b"), gev("evt_c")})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	at := logOnce(t, st, "ws")
	for i := range got {
		for _, e := range got[i] {
			if e.Cursor <= last || at[e.ID] != e.Cursor {
				t.Fatalf("retry %d got %+v; the log has %v (reserved up to %d)", i, got[i], at, last)
			}
		}
	}
	m := marker(t, db, table, "ws", "evt_a")
	if num(m, "cursor") != at["evt_a"] || !tm(m, "created_at").Equal(got[0][0].CreatedAt) {
		t.Fatalf("marker keeps cursor %d, created_at %v; want the moved %d, %v", num(m, "cursor"), tm(m, "created_at"), at["evt_a"], got[0][0].CreatedAt)
	}
	one, err := st.AppendEvent(ctx, gev("evt_a"))
	if err != nil || one.Cursor != at["evt_a"] {
		t.Fatalf("evt_a appended alone after the move: %+v, %v; want cursor %d", one, err, at["evt_a"])
	}
}

// An appender claimed a group of two and wrote its second event only (as one did when a group's
// writes went out in parallel, and as a version of it still may during a deploy), then died. The retry finds the second at its cursor and moves only the first.
func TestAttackDeadGroupWithOnlyItsLaterEventWritten(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := t0
	st := New(db, table, func() time.Time { return clock })
	ctx := context.Background()
	es := reserveAndClaim(t, st, t0, "evt_a", "evt_b")
	last := es[1].e.Cursor
	if err := st.writeEvent(ctx, es[1].e); err != nil {
		t.Fatal(err)
	}
	clock = t0.Add(staleAfter + time.Second)
	got, err := st.AppendEvents(ctx, []Event{gev("evt_a"), gev("evt_b")})
	if err != nil {
		t.Fatal(err)
	}
	at := logOnce(t, st, "ws")
	if got[1].Cursor != last || at["evt_b"] != last || got[0].Cursor <= last || at["evt_a"] != got[0].Cursor {
		t.Fatalf("got %+v, log %v; want evt_b kept at %d and evt_a moved after it", got, at, last)
	}
}

// Ids of odd bytes (separators of the key's form, NUL, non-ASCII, spaces) in a group: a repeat finds
// each of them.
func TestAttackGroupOfOddIDs(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	ids := []string{"evt#EVID#x", "evt\x00nul", "évt ünïcode ☃", " ", "EVID", "evt_a#"}
	group := func() []Event {
		evs := make([]Event, len(ids))
		for i, id := range ids {
			evs[i] = gev(id)
		}
		return evs
	}
	first, err := st.AppendEvents(ctx, group())
	if err != nil {
		t.Fatal(err)
	}
	again, err := st.AppendEvents(ctx, group())
	if err != nil {
		t.Fatal(err)
	}
	for i := range first {
		if again[i].Cursor != first[i].Cursor {
			t.Fatalf("again %+v; want %+v", again, first)
		}
	}
	if at := logOnce(t, st, "ws"); len(at) != len(ids) {
		t.Fatalf("log %v", at)
	}
}

// itemSize is an item's size as DynamoDB bills it: attribute names and values (a number at most
// 21 bytes, a list 3 bytes plus 1 per element and its elements).
func itemSize(item map[string]types.AttributeValue) int {
	var value func(v types.AttributeValue) int
	value = func(v types.AttributeValue) int {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			return len(v.Value)
		case *types.AttributeValueMemberN:
			return (len(strings.TrimLeft(v.Value, "-0"))+1)/2 + 1
		case *types.AttributeValueMemberBOOL:
			return 1
		case *types.AttributeValueMemberL:
			n := 3
			for _, e := range v.Value {
				n += 1 + value(e)
			}
			return n
		}
		return 0
	}
	n := 0
	for name, v := range item {
		n += len(name) + value(v)
	}
	return n
}

// The largest group (maxGroupEvents events, ids as the worker derives them, 30 bytes): its marker is
// far from DynamoDB's 400 KB, and its write units are what the cost notes assume (one marker instead
// of 25, each 1 unit).
func TestAttackLargestGroupMarkerSize(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	st := New(db, table, time.Now)
	ctx := context.Background()
	evs := make([]Event, maxGroupEvents)
	for i := range evs {
		evs[i] = gev(fmt.Sprintf("evt_%026d", i))
	}
	if _, err := st.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	m := marker(t, db, table, "ws", evs[0].ID)
	size := itemSize(m)
	units := (size + 1023) / 1024
	t.Logf("marker of %d events: %d bytes, %d write units (a move of one of its events: %d units)", len(evs), size, units, units)
	if size > 4096 {
		t.Fatalf("marker of %d events is %d bytes", len(evs), size)
	}
	// With ids as long as a key allows (the partition key is at most 2048 bytes) it still fits.
	long := make([]Event, maxGroupEvents)
	for i := range long {
		long[i] = gev(fmt.Sprintf("%02d", i) + strings.Repeat("x", 2000))
		long[i].WorkspaceID = "ws2"
	}
	if _, err := st.AppendEvents(ctx, long); err != nil {
		t.Fatalf("group of long ids: %v", err)
	}
	t.Logf("marker of %d long ids: %d bytes", len(long), itemSize(marker(t, db, table, "ws2", long[0].ID)))
}

// LogWriter: callers' groups batched together in one order, then repeated batched in another, and
// each alone: every event once, every caller told the same cursors.
func TestAttackLogWriterBatchesRepeatedInOtherBatches(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	callers := [][]string{{"evt_a1", "evt_a2"}, {"evt_b1", "evt_b2", "evt_b3"}, {"evt_c1"}, {"evt_d1", "evt_d2"}}
	first := map[string]int64{}
	for round := range 4 {
		w := NewLogWriter(st)
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range callers {
			g := callers[(i+round)%len(callers)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				evs := make([]Event, len(g))
				for j, id := range g {
					evs[j] = gev(id)
				}
				out, err := w.AppendEvents(ctx, evs)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for _, e := range out {
					if c, ok := first[e.ID]; ok && c != e.Cursor {
						t.Errorf("round %d: %s at %d, first told %d", round, e.ID, e.Cursor, c)
					}
					first[e.ID] = e.Cursor
				}
			}()
		}
		wg.Wait()
	}
	if at := logOnce(t, st, "ws"); len(at) != 8 {
		t.Fatalf("log %v", at)
	}
}
