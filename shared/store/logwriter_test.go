package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// Many goroutines of one process append pairs at once, some of them the same pair twice: the log
// is dense, every pair is contiguous and in order, and a repeated pair gets the first cursors.
func TestLogWriterGroupsConcurrentAppends(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	w := NewLogWriter(st)
	ctx := context.Background()
	const pairs = 60
	got := make([][]Event, pairs+pairs/3)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := i % pairs // the last third repeat pairs 0..19
			evs, err := w.AppendEvents(ctx, []Event{
				{ID: fmt.Sprintf("a%d", p), Type: "first", WorkspaceID: "ws"},
				{ID: fmt.Sprintf("b%d", p), Type: "second", WorkspaceID: "ws"},
			})
			if err != nil {
				t.Errorf("pair %d: %v", p, err)
				return
			}
			got[i] = evs
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	log, err := st.ListEvents(ctx, "ws", 0, 1000)
	if err != nil || len(log) != 2*pairs {
		t.Fatalf("log has %d events (%v), want %d", len(log), err, 2*pairs)
	}
	at := map[string]int64{}
	for i, e := range log {
		if e.Cursor != int64(i+1) {
			t.Fatalf("cursor %d at position %d", e.Cursor, i)
		}
		at[e.ID] = e.Cursor
	}
	for i, evs := range got {
		p := i % pairs
		if evs[0].ID != fmt.Sprintf("a%d", p) || evs[1].Cursor != evs[0].Cursor+1 || at[evs[0].ID] != evs[0].Cursor || at[evs[1].ID] != evs[1].Cursor {
			t.Fatalf("caller %d got %+v; log has a at %d, b at %d", i, evs, at[evs[0].ID], at[evs[1].ID])
		}
	}
}

// A caller's bad append fails alone; the others' events are appended.
func TestLogWriterBadAppendFailsAlone(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	w := NewLogWriter(st)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := Event{ID: fmt.Sprintf("e%d", i), Type: "t", WorkspaceID: "ws"}
			if i == 4 {
				e.Type = ""
			}
			_, errs[i] = w.AppendEvents(ctx, []Event{e})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 4) {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if log, _ := st.ListEvents(ctx, "ws", 0, 100); len(log) != 9 {
		t.Fatalf("log has %d events, want 9", len(log))
	}
}
