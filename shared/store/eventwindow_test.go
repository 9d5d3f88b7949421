package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// TestEventsBetween: the events appended inside a time window, found without reading the log
// before it; a full window says there is more.
func TestEventsBetween(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	at := t0
	st.now = func() time.Time { return at }
	for i := range 40 {
		at = t0.Add(time.Duration(i) * time.Second)
		if _, err := st.AppendEvent(ctx, Event{ID: fmt.Sprintf("evt_%02d", i), Type: "t", WorkspaceID: "w"}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(evs []Event) string {
		s := ""
		for _, e := range evs {
			s += e.ID[4:] + " "
		}
		return s
	}
	cases := []struct {
		from, to time.Duration
		limit    int
		want     string
		more     bool
	}{
		{10 * time.Second, 13 * time.Second, 100, "10 11 12 13 ", false},
		{-time.Hour, 2 * time.Second, 100, "00 01 02 ", false},
		{38 * time.Second, time.Hour, 100, "38 39 ", false},
		{10 * time.Second, 20 * time.Second, 3, "10 11 12 ", true},
		{time.Hour, 2 * time.Hour, 100, "", false},
		{9500 * time.Millisecond, 10500 * time.Millisecond, 100, "10 ", false},
	}
	for _, c := range cases {
		evs, more, err := st.EventsBetween(ctx, "w", t0.Add(c.from), t0.Add(c.to), c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(evs); got != c.want || more != c.more {
			t.Errorf("%s..%s (limit %d): %q more=%v, want %q more=%v", c.from, c.to, c.limit, got, more, c.want, c.more)
		}
	}
	if evs, more, err := st.EventsBetween(ctx, "empty", t0, t0.Add(time.Hour), 10); err != nil || len(evs) != 0 || more {
		t.Errorf("empty workspace: %v %v %v", evs, more, err)
	}
}

// A log with holes (cursors reserved and never written, as an append whose write came too late
// leaves them; items expired): the window's first event is still found. Every window is checked
// against a plain read of the whole log.
func TestEventsBetweenAcrossHoles(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	at := t0
	st.now = func() time.Time { return at }
	for i := range 17 {
		at = t0.Add(time.Duration(i) * time.Second)
		if _, err := st.AppendEvent(ctx, Event{ID: fmt.Sprintf("evt_%02d", i), Type: "t", WorkspaceID: "w"}); err != nil {
			t.Fatal(err)
		}
	}
	// The holes of a failed CI run: only cursors 2, 5, 6, 9-14, 16 and 17 were written.
	for _, c := range []int64{1, 3, 4, 7, 8, 15} {
		if _, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &st.table, Key: key(EventPK("w", 0), eventSK(c))}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := st.ListEvents(ctx, "w", 0, 100)
	if err != nil || len(all) != 11 {
		t.Fatalf("log after the holes: %d events, %v", len(all), err)
	}
	for from := -time.Second; from <= 17*time.Second; from += time.Second {
		var want []int64
		for _, e := range all {
			if !e.CreatedAt.Before(t0.Add(from)) {
				want = append(want, e.Cursor)
			}
		}
		evs, _, err := st.EventsBetween(ctx, "w", t0.Add(from), t0.Add(time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]int64, len(evs))
		for i, e := range evs {
			got[i] = e.Cursor
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("from %s: cursors %v, want %v", from, got, want)
		}
	}
}
