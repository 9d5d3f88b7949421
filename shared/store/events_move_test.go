package store

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
)

// An appender that reserved a cursor and claimed its event's id, then died before writing it,
// leaves a marker at a cursor nobody writes. The retry that comes after staleAfter moves the event
// to a new cursor and writes it there, once; the old cursor stays empty (readers pass it after
// GapGrace).
func TestAppendMovesAReservationWhoseWriterDied(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := t0
	st := New(db, table, func() time.Time { return clock })
	ctx := context.Background()

	dead := Event{ID: "evt_dead", Type: "test.event", WorkspaceID: "ws", Data: json.RawMessage(`{}`), CreatedAt: t0}
	c, err := st.reserve(ctx, "ws", 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	dead.Cursor = c
	if _, err := claimAlone(ctx, st, dead); err != nil {
		t.Fatal(err)
	}

	clock = t0.Add(staleAfter + time.Second)
	got, err := st.AppendEvent(ctx, Event{ID: "evt_dead", Type: "test.event", WorkspaceID: "ws"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Cursor == dead.Cursor || !got.CreatedAt.Equal(clock) {
		t.Fatalf("the retry wrote at cursor %d (created %v); want a new cursor, created now", got.Cursor, got.CreatedAt)
	}
	again, err := st.AppendEvent(ctx, Event{ID: "evt_dead", Type: "test.event", WorkspaceID: "ws"})
	if err != nil || again.Cursor != got.Cursor {
		t.Fatalf("appending the id again: cursor %d, %v; want %d", again.Cursor, err, got.Cursor)
	}
	evs, err := st.ListEvents(ctx, "ws", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].ID != "evt_dead" || evs[0].Cursor != got.Cursor {
		t.Fatalf("log %+v; want evt_dead once, at cursor %d", evs, got.Cursor)
	}
}

// claimAlone claims e's id marker as a group of one, as an appender that reserved e.Cursor does.
func claimAlone(ctx context.Context, st *Store, e Event) (Event, error) {
	es := []entry{{e: e}}
	err := st.claim(ctx, es, group{0})
	return es[0].e, err
}

// reserveAndClaim makes an appender's first two steps for a group of events of "ws" (gev), all
// created at at: it reserves their cursors and claims their marker, and returns the entries as an
// appender that dies before writing leaves them.
func reserveAndClaim(t *testing.T, st *Store, at time.Time, ids ...string) []entry {
	t.Helper()
	ctx := context.Background()
	last, err := st.reserve(ctx, "ws", 0, len(ids))
	if err != nil {
		t.Fatal(err)
	}
	es, g := make([]entry, len(ids)), make(group, len(ids))
	for i, id := range ids {
		es[i].e, g[i] = gev(id), i
		es[i].e.Cursor, es[i].e.CreatedAt = last-int64(len(ids)-1-i), at
	}
	if err := st.claim(ctx, es, g); err != nil {
		t.Fatal(err)
	}
	return es
}

// An appender reserved cursors for a group of three and claimed its marker, wrote only the first
// event, and died. The retry after staleAfter finds the first event at its cursor and moves the
// other two, each to a new cursor, once; a third try finds them where they were moved.
func TestAppendMovesTheUnwrittenEventsOfAGroupWhoseWriterDied(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := t0
	st := New(db, table, func() time.Time { return clock })
	ctx := context.Background()

	es := reserveAndClaim(t, st, t0, "evt_a", "evt_b", "evt_c")
	last := es[2].e.Cursor
	if err := st.writeEvent(ctx, es[0].e); err != nil {
		t.Fatal(err)
	}

	clock = t0.Add(staleAfter + time.Second)
	got, err := st.AppendEvents(ctx, []Event{gev("evt_a"), gev("evt_b"), gev("evt_c")})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Cursor != es[0].e.Cursor || !got[0].CreatedAt.Equal(t0) {
		t.Fatalf("the written event moved: %+v", got[0])
	}
	for i := 1; i < 3; i++ {
		if got[i].Cursor <= last || !got[i].CreatedAt.Equal(clock) {
			t.Fatalf("event %d at cursor %d (created %v); want a new cursor after %d, created now", i, got[i].Cursor, got[i].CreatedAt, last)
		}
	}
	clock = clock.Add(time.Minute)
	again, err := st.AppendEvents(ctx, []Event{gev("evt_a"), gev("evt_b"), gev("evt_c")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if again[i].Cursor != got[i].Cursor {
			t.Fatalf("appending the group again: %+v; want %+v", again, got)
		}
	}
	log, err := st.ListEvents(ctx, "ws", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	// The moves are independent: evt_b and evt_c may take their new cursors in either order.
	at := map[string]int64{}
	for _, e := range log {
		at[e.ID] = e.Cursor
	}
	if len(log) != 3 || len(at) != 3 || at["evt_a"] != got[0].Cursor || at["evt_b"] != got[1].Cursor || at["evt_c"] != got[2].Cursor {
		t.Fatalf("log %+v; want evt_a, evt_b, evt_c once each at %+v", log, got)
	}
}

// Markers written one per event (by the version before groups, or by appends of one) are found:
// a group whose events have them appends nothing again, and one whose first event alone has one
// claims the others alone.
func TestAppendGroupFindsMarkersOfOne(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	st := New(db, table, time.Now)
	ctx := context.Background()
	ev := func(id string) Event { return Event{ID: id, Type: "test.event", WorkspaceID: "ws"} }
	a, err := st.AppendEvent(ctx, ev("evt_a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.AppendEvent(ctx, ev("evt_b"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.AppendEvents(ctx, []Event{ev("evt_a"), ev("evt_b")})
	if err != nil || got[0].Cursor != a.Cursor || got[1].Cursor != b.Cursor {
		t.Fatalf("group of events appended alone: %+v, %v; want cursors %d, %d", got, err, a.Cursor, b.Cursor)
	}
	// evt_a alone before; evt_c new: claimed alone, so that a repeat of the group finds it.
	got, err = st.AppendEvents(ctx, []Event{ev("evt_a"), ev("evt_c")})
	if err != nil || got[0].Cursor != a.Cursor || got[1].Cursor != b.Cursor+1 {
		t.Fatalf("group of an old event and a new one: %+v, %v", got, err)
	}
	again, err := st.AppendEvents(ctx, []Event{ev("evt_a"), ev("evt_c")})
	if err != nil || again[1].Cursor != got[1].Cursor {
		t.Fatalf("the group again: %+v, %v; want evt_c at %d", again, err, got[1].Cursor)
	}
	log, err := st.ListEvents(ctx, "ws", 0, 10)
	if err != nil || len(log) != 3 {
		t.Fatalf("log %+v, %v; want evt_a, evt_b, evt_c once each", log, err)
	}
}

// Appenders of one group race (a redelivered message handled twice at once): each event is in the
// log once, every appender gets the same cursors, and a group of three wrote one marker.
func TestAppendGroupRacing(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	group := func() []Event {
		return []Event{{ID: "evt_x", Type: "t", WorkspaceID: "ws"}, {ID: "evt_y", Type: "t", WorkspaceID: "ws"}, {ID: "evt_z", Type: "t", WorkspaceID: "ws"}}
	}
	const appenders = 6
	got := make([][]Event, appenders)
	errs := make([]error, appenders)
	done := make(chan int)
	for i := range appenders {
		go func() {
			got[i], errs[i] = New(db, table, time.Now).AppendEvents(ctx, group())
			done <- i
		}()
	}
	for range appenders {
		<-done
	}
	for i := range appenders {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		for j := range got[i] {
			if got[i][j].Cursor != got[0][j].Cursor {
				t.Fatalf("appender %d got %+v, appender 0 %+v", i, got[i], got[0])
			}
		}
	}
	st := New(db, table, time.Now)
	log, err := st.ListEvents(ctx, "ws", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int64{}
	for _, e := range log {
		if _, dup := seen[e.ID]; dup {
			t.Fatalf("%s twice in the log %+v", e.ID, log)
		}
		seen[e.ID] = e.Cursor
	}
	for j, e := range got[0] {
		if seen[e.ID] != e.Cursor {
			t.Fatalf("log has %s at %d, appenders got %d", e.ID, seen[e.ID], got[0][j].Cursor)
		}
	}
	for _, id := range []string{"evt_y", "evt_z"} {
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: markerKey("ws", id), ConsistentRead: aws.Bool(true)})
		if err != nil || len(out.Item) != 0 {
			t.Fatalf("%s has a marker of its own (%v): a group of three writes one", id, err)
		}
	}
}
