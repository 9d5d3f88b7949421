package store

import (
	"context"
	"fmt"
	"testing"
	"time"
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
