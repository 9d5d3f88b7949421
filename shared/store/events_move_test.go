package store

import (
	"context"
	"encoding/json"
	"testing"
	"time"

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
	c, err := st.reserve(ctx, "ws", 1)
	if err != nil {
		t.Fatal(err)
	}
	dead.Cursor = c
	if _, err := st.claim(ctx, dead); err != nil {
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
