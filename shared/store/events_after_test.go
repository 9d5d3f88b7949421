package store

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
)

// cursorsOf appends evs after lead (through app) and returns their cursors.
func cursorsOf(t *testing.T, app func(context.Context, string, []Event) ([]Event, error), lead string, ids ...string) []int64 {
	t.Helper()
	evs := make([]Event, len(ids))
	for i, id := range ids {
		evs[i] = gev(id)
	}
	got, err := app(context.Background(), lead, evs)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int64, len(got))
	for i, e := range got {
		out[i] = e.Cursor
	}
	return out
}

// A group appended at once is found again in parts: its first events as a group, then the rest
// after its lead. A group appended in parts (the first events, then the rest after them) is found
// again at once, or in the same parts. A lead with no marker, or with a marker of one, holds none
// of the events after it: those are looked up, or appended, as a group of their own.
func TestAppendAfterFindsTheRestOfAGroup(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	w := NewLogWriter(st)
	for _, app := range []func(context.Context, string, []Event) ([]Event, error){st.AppendEventsAfter, w.AppendEventsAfter} {
		if got := cursorsOf(t, app, "", "evt_a", "evt_b", "evt_c", "evt_d"); !slices.Equal(got, []int64{1, 2, 3, 4}) {
			t.Fatalf("the group at once: %v", got)
		}
		if got := cursorsOf(t, app, "", "evt_a", "evt_b"); !slices.Equal(got, []int64{1, 2}) {
			t.Fatalf("its first events again: %v", got)
		}
		if got := cursorsOf(t, app, "evt_a", "evt_c", "evt_d"); !slices.Equal(got, []int64{3, 4}) {
			t.Fatalf("the rest after its lead: %v", got)
		}
	}

	if got := cursorsOf(t, st.AppendEventsAfter, "", "evt_e", "evt_f"); !slices.Equal(got, []int64{5, 6}) {
		t.Fatalf("the first events of another group: %v", got)
	}
	if got := cursorsOf(t, st.AppendEventsAfter, "evt_e", "evt_g", "evt_h"); !slices.Equal(got, []int64{7, 8}) {
		t.Fatalf("its rest, appended after its lead: %v", got)
	}
	for _, again := range [][]string{{"evt_e", "evt_f", "evt_g", "evt_h"}, {"evt_g", "evt_h"}} {
		if got := cursorsOf(t, st.AppendEventsAfter, "", again...); !slices.Equal(got, []int64{5, 6, 7, 8}[4-len(again):]) {
			t.Fatalf("%v again: %v", again, got)
		}
	}
	if got := cursorsOf(t, st.AppendEventsAfter, "evt_e", "evt_g", "evt_h"); !slices.Equal(got, []int64{7, 8}) {
		t.Fatalf("the rest after its lead again: %v", got)
	}

	cursorsOf(t, st.AppendEventsAfter, "", "evt_j") // a marker of one
	for _, lead := range []string{"evt_none", "evt_j"} {
		first := cursorsOf(t, st.AppendEventsAfter, lead, "evt_k"+lead)
		if again := cursorsOf(t, st.AppendEventsAfter, lead, "evt_k"+lead); !slices.Equal(first, again) {
			t.Fatalf("after %s: %v, then %v", lead, first, again)
		}
	}
	if at := logOnce(t, st, "ws"); len(at) != 11 {
		t.Fatalf("log %v; want 11 events once each", at)
	}
}

// An appender reserved and claimed a group of three and died before writing it: a retry that
// appends the group's last two events after its lead finds them in the lead's marker and moves
// them, once, as AppendEvents of the whole group would.
func TestAppendAfterMovesTheRestOfADeadGroup(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := t0
	st := New(db, table, func() time.Time { return clock })
	es := reserveAndClaim(t, st, t0, "evt_a", "evt_b", "evt_c")
	clock = t0.Add(staleAfter + time.Second)
	moved := cursorsOf(t, st.AppendEventsAfter, "evt_a", "evt_b", "evt_c")
	for i, c := range moved {
		if c <= es[2].e.Cursor {
			t.Fatalf("event %d at %d; want it moved past %d", i+1, c, es[2].e.Cursor)
		}
	}
	clock = clock.Add(time.Minute)
	if again := cursorsOf(t, st.AppendEventsAfter, "", "evt_a", "evt_b", "evt_c"); !slices.Equal(again[1:], moved) {
		t.Fatalf("the whole group again: %v; want its last two where they moved, %v", again, moved)
	}
	if at := logOnce(t, st, "ws"); len(at) != 3 {
		t.Fatalf("log %v; want the three events once each", at)
	}
}

// committed is the DB that records the order in which event items were written (each write
// answered), and holds back the write of the first cursor of a group for a while: written side by
// side, the later cursors would land first.
type committed struct {
	DB
	mu    sync.Mutex
	order []string
}

func (c *committed) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	pk, _ := in.Item["pk"].(*types.AttributeValueMemberS)
	ev := pk != nil && strings.HasSuffix(pk.Value, "#EV")
	if id := str(in.Item, "event_id"); ev && strings.HasSuffix(id, "_1") {
		time.Sleep(100 * time.Millisecond)
	}
	out, err := c.DB.PutItem(ctx, in, opts...)
	if ev && err == nil {
		c.mu.Lock()
		c.order = append(c.order, str(in.Item, "event_id"))
		c.mu.Unlock()
	}
	return out, err
}

// A group's events are written one after another in cursor order (the table's stream, which the
// fan-out reads and FIFO subscriptions follow, then has them in the log's order); the groups of a
// LogWriter's batch (other threads) side by side.
func TestGroupIsWrittenInCursorOrder(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	c := &committed{DB: db}
	st := New(c, table, time.Now)
	if _, err := st.AppendEvents(context.Background(), []Event{gev("evt_a_1"), gev("evt_a_2"), gev("evt_a_3"), gev("evt_a_4")}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"evt_a_1", "evt_a_2", "evt_a_3", "evt_a_4"}; !slices.Equal(c.order, want) {
		t.Fatalf("written in the order %v; want %v", c.order, want)
	}
}
