package store

import (
	"context"
	"fmt"
	"strings"
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

// Large conversation events (each also copied under its thread) never make a group bigger than a
// transaction may be, and one the table refuses (an item over 400 KB) fails alone.
func TestLogWriterLargeEventsFitTransactions(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	w := NewLogWriter(st)
	ctx := context.Background()
	big := `{"thread_id":"thr_1","text":"` + strings.Repeat("x", 300_000) + `"}`
	huge := `{"thread_id":"thr_1","text":"` + strings.Repeat("y", 420_000) + `"}`
	var wg sync.WaitGroup
	errs := make([]error, 12)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := big
			if i == 5 {
				data = huge
			}
			_, errs[i] = w.AppendEvents(ctx, []Event{{ID: fmt.Sprintf("m%d", i), Type: "message.received", WorkspaceID: "ws", Data: []byte(data)}})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 5) {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	// Pages of 1 MB hold a few events each: read them all.
	count := func(list func(after int64) ([]Event, error)) int {
		n, after := 0, int64(0)
		for {
			page, err := list(after)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				return n
			}
			n, after = n+len(page), page[len(page)-1].Cursor
		}
	}
	if n := count(func(after int64) ([]Event, error) { return st.ListEvents(ctx, "ws", after, 100) }); n != 11 {
		t.Fatalf("log has %d events, want 11", n)
	}
	if n := count(func(after int64) ([]Event, error) { return st.ListThreadEvents(ctx, "ws", "thr_1", after, 100) }); n != 11 {
		t.Fatalf("thread index has %d events, want 11", n)
	}
}
