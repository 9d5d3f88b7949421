package store

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
)

// stallingDB holds back the first put of an event item (pk WS#<ws>#EV), as a stalled connection
// whose SDK retry is sent late does, until release is closed or the call's context ends (the SDK
// sends nothing more once its context is done). After the id marker is claimed it moves the clock
// to just before the end of the write window, so the put is the last one the window allows.
type stallingDB struct {
	DB
	clock   *atomic.Int64 // unix nanos
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
		d.clock.Store(d.nearEnd.UnixNano())
	}
	return out, err
}

// Two appenders of one event id (a redelivered message): the first one's write is sent within the
// window but stalls, and its SDK retry would arrive after the second appender has found the
// reservation stale and moved the event to a new cursor. The event must be in the log once.
func TestAppendEventStalledWriteIsNotRepeated(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	sdb := &stallingDB{DB: db, clock: &clock, nearEnd: t0.Add(writeWindow - 100*time.Millisecond),
		stalled: make(chan struct{}), release: make(chan struct{})}
	first, second := New(sdb, table, now), New(db, table, now)
	ctx := context.Background()
	e := Event{ID: "evt_dup", Type: "delivery.succeeded", WorkspaceID: "ws"}

	done := make(chan error, 1)
	go func() {
		_, err := first.AppendEvent(ctx, e)
		done <- err
	}()
	<-sdb.stalled
	// Later, the redelivered copy appends the same event: the reservation is stale, it moves it.
	clock.Store(t0.Add(staleAfter + 5*time.Second).UnixNano())
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

// windowEndingDB lets the events' puts run out of the write window: each put of an event item
// waits until its context ends (the window's deadline), then moves the clock past the window, as
// a loaded machine's slow puts do.
type windowEndingDB struct {
	DB
	clock *atomic.Int64 // unix nanos
	past  time.Time
}

func (d *windowEndingDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if strings.HasSuffix(str(in.Item, "pk"), "#EV") {
		<-ctx.Done()
		d.clock.Store(d.past.UnixNano())
		return nil, ctx.Err()
	}
	return d.DB.PutItem(ctx, in, opts...)
}

// A retried append of a written group whose write window runs out during its first put (CI's
// failure of TestThreadIndexFullGroup: "write event e0: context deadline exceeded") is not an
// error: the window's end only means the put may no longer be sent; the events are found written.
func TestRetriedAppendWhoseWindowRunsOutFindsTheEventsWritten(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	ctx := context.Background()
	evs := []Event{{ID: "evt_w1", Type: "message.received", WorkspaceID: "ws"}, {ID: "evt_w2", Type: "run.created", WorkspaceID: "ws"}}
	first, err := New(db, table, now).AppendEvents(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	clock.Store(t0.Add(writeWindow - 50*time.Millisecond).UnixNano())
	slow := New(&windowEndingDB{DB: db, clock: &clock, past: t0.Add(writeWindow + time.Second)}, table, now)
	again, err := slow.AppendEvents(ctx, evs)
	if err != nil {
		t.Fatalf("retried append: %v", err)
	}
	for i := range first {
		if again[i].Cursor != first[i].Cursor {
			t.Fatalf("retry placed %s at %d, the first append at %d", evs[i].ID, again[i].Cursor, first[i].Cursor)
		}
	}
}
