package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/awscfg"
)

// stallingDB holds back the first put of an event item (pk WS#<ws>#EV), as a stalled connection
// whose SDK retry is sent late does, until release is closed or the call's context ends (the SDK
// sends nothing more once its context is done). After the id marker is claimed it moves the clock
// to just before the end of the write window, so the put is the last one the window allows.
type stallingDB struct {
	DB
	clock   *testClock
	nearEnd time.Time
	stalled chan struct{}
	release chan struct{}
	once    sync.Once
}

func (d *stallingDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	pk := str(in.Item, "pk")
	if strings.HasSuffix(pk, "#EV") {
		first := false
		d.once.Do(func() { first = true })
		if first {
			close(d.stalled)
			select {
			case <-d.release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	out, err := d.DB.PutItem(ctx, in, opts...)
	if strings.Contains(pk, "#EVID#") {
		d.clock.set(d.nearEnd)
	}
	return out, err
}

// Two appenders of one event id (a redelivered message): the first one's write is sent within the
// window but stalls, and its SDK retry would arrive after the second appender has found the
// reservation stale and moved the event to a new cursor. The event must be in the log once.
func TestAppendEventStalledWriteIsNotRepeated(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	clock := newTestClock()
	t0 := clock.t0
	sdb := &stallingDB{DB: db, clock: clock, nearEnd: t0.Add(writeWindow - 100*time.Millisecond),
		stalled: make(chan struct{}), release: make(chan struct{})}
	first, second := New(sdb, table, clock.now), New(db, table, clock.now)
	ctx := context.Background()
	e := Event{ID: "evt_dup", Type: "delivery.succeeded", WorkspaceID: "ws"}

	done := make(chan error, 1)
	go func() {
		_, err := first.AppendEvent(ctx, e)
		done <- err
	}()
	<-sdb.stalled
	// Later, the redelivered copy appends the same event: the reservation is stale, it moves it.
	clock.set(t0.Add(staleAfter + 5*time.Second))
	moved, err := second.AppendEvent(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	close(sdb.release) // the first appender's late put reaches the table now, if it was sent
	firstErr := <-done
	log, err := second.ListEvents(ctx, "ws", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var at []int64
	for _, ev := range log {
		if ev.ID == e.ID {
			at = append(at, ev.Cursor)
		}
	}
	if len(at) != 1 || at[0] != moved.Cursor {
		t.Fatalf("event %s is in the log at cursors %v (moved to %d; first appender: %v): want once", e.ID, at, moved.Cursor, firstErr)
	}
}

// A retried append of a written group that starts less than awscfg.Reserve before the end of the
// write window (CI's failure of TestThreadIndexFullGroup: "write event e0: context deadline
// exceeded"): the client ends the put at once, before its deadline, and the append looks the
// events up instead: they are there, at the cursors of the first append, once.
func TestRetriedAppendLateInTheWindowFindsTheEventsWritten(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	clock := newTestClock()
	st := New(db, table, clock.now)
	ctx := context.Background()
	evs := []Event{{ID: "evt_w1", Type: "message.received", WorkspaceID: "ws"}, {ID: "evt_w2", Type: "run.created", WorkspaceID: "ws"}}
	first, err := st.AppendEvents(ctx, slices.Clone(evs))
	if err != nil {
		t.Fatal(err)
	}
	clock.set(clock.t0.Add(writeWindow - awscfg.Reserve + 100*time.Millisecond))
	again, err := st.AppendEvents(ctx, slices.Clone(evs))
	if err != nil {
		t.Fatalf("retried append: %v", err)
	}
	for i := range first {
		if again[i].Cursor != first[i].Cursor {
			t.Fatalf("retry placed %s at %d, the first append at %d", evs[i].ID, again[i].Cursor, first[i].Cursor)
		}
	}
	assertLog(t, st, "ws", "evt_w1", "evt_w2")
}

// cutShortDB fails the first put of one event as the client does when the write window ends
// during it (a deadline error, the event not written), and moves the clock past the reservation's
// staleness, as the slow puts of a loaded machine do.
type cutShortDB struct {
	DB
	id    string
	clock *testClock
	stale time.Time
	once  sync.Once
}

func (d *cutShortDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	cut := false
	if strings.HasSuffix(str(in.Item, "pk"), "#EV") && str(in.Item, "event_id") == d.id {
		d.once.Do(func() { cut = true })
	}
	if cut {
		d.clock.set(d.stale)
		return nil, fmt.Errorf("operation error DynamoDB: PutItem, canceled: %w", context.DeadlineExceeded)
	}
	return d.DB.PutItem(ctx, in, opts...)
}

// The second of three events of a group is cut short by the window's end (the 22nd of 25 was, on
// a loaded machine: "write event e21: … context deadline exceeded"): the append does not fail;
// the event is moved once its reservation is stale, and the third follows it, each event once and
// in the group's order.
func TestWriteCutShortByTheWindowIsMoved(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	clock := newTestClock()
	st := New(&cutShortDB{DB: db, id: "evt_c2", clock: clock, stale: clock.t0.Add(staleAfter + time.Second)}, table, clock.now)
	ids := []string{"evt_c1", "evt_c2", "evt_c3"}
	var evs []Event
	for _, id := range ids {
		evs = append(evs, Event{ID: id, Type: "message.sent", WorkspaceID: "ws"})
	}
	got, err := st.AppendEvents(context.Background(), evs)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if got[1].Cursor <= got[0].Cursor || got[2].Cursor <= got[1].Cursor {
		t.Fatalf("cursors %d %d %d: want the group in order", got[0].Cursor, got[1].Cursor, got[2].Cursor)
	}
	assertLog(t, st, "ws", ids...)
}

// assertLog checks that ws's log holds exactly ids, each once, in this order.
func assertLog(t *testing.T, st *Store, ws string, ids ...string) {
	t.Helper()
	log, err := st.ListEvents(context.Background(), ws, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		got = append(got, e.ID)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("log of %s holds %v, want %v", ws, got, ids)
	}
}

// testClock is a store's clock that a test sets; it starts at t0, the time it was made.
type testClock struct {
	t0 time.Time
	ns atomic.Int64 // unix nanos
}

func newTestClock() *testClock {
	c := &testClock{t0: time.Now().UTC().Truncate(time.Millisecond)}
	c.set(c.t0)
	return c
}

func (c *testClock) set(t time.Time) { c.ns.Store(t.UnixNano()) }
func (c *testClock) now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
