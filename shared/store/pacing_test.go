package store

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// 100 retries of one endpoint fail at once with a "5 s" schedule step: jittered (±20%) and spaced
// on the endpoint's retry lane by concurrent callers, no two fall in the same 100 ms window.
func TestRetryPaceSpreadsAnOutagesRetries(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	failedAt := time.Now().Add(time.Minute).Truncate(time.Second)
	lane := RetryPace("ws", "sub_1", 1, 200*time.Millisecond)
	var (
		mu    sync.Mutex
		slots []time.Time
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 16)
	)
	for range 100 {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			due := failedAt.Add(5*time.Second + time.Duration((rand.Float64()*2-1)*0.2*float64(5*time.Second)))
			at, ok, err := st.ReservePace(ctx, lane, due, 24*time.Hour)
			if err != nil || !ok || at.Before(due.Truncate(time.Millisecond)) {
				t.Errorf("ReservePace(%v) = %v, %v, %v", due, at, ok, err)
				return
			}
			mu.Lock()
			slots = append(slots, at)
			mu.Unlock()
		})
	}
	wg.Wait()
	windows := map[int64]int{}
	for _, at := range slots {
		windows[at.UnixMilli()/100]++
	}
	slices.SortFunc(slots, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(slots); i++ {
		if gap := slots[i].Sub(slots[i-1]); gap < 200*time.Millisecond {
			t.Fatalf("retries %d and %d only %v apart", i-1, i, gap)
		}
	}
	if len(windows) != 100 {
		t.Fatalf("100 retries in %d windows of 100 ms", len(windows))
	}
	// The spread starts within the jitter's range: the first retry is not held back.
	if first := slots[0].Sub(failedAt); first < 4*time.Second || first > 6*time.Second {
		t.Fatalf("first retry %v after the failure", first)
	}
}

// A rate lane of 10/s with a burst of 3: three slots at once, then one each 100 ms, across
// concurrent callers; a slot past the horizon is not taken, and says when the lane has one.
func TestRatePaceKeepsTheRate(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	lane := RatePace("ws", "sub_1", 10, 3)
	var (
		mu    sync.Mutex
		slots []time.Duration
		wg    sync.WaitGroup
	)
	for range 30 {
		wg.Go(func() {
			at, ok, err := st.ReservePace(ctx, lane, now, time.Minute)
			if err != nil || !ok {
				t.Errorf("ReservePace = %v, %v, %v", at, ok, err)
				return
			}
			mu.Lock()
			slots = append(slots, at.Sub(now))
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(slots)
	want := []time.Duration{0, 0, 0}
	for i := 1; i <= 27; i++ {
		want = append(want, time.Duration(i)*100*time.Millisecond)
	}
	if !slices.Equal(slots, want) {
		t.Fatalf("slots %v\nwant  %v", slots, want)
	}
	at, ok, err := st.ReservePace(ctx, lane, now, time.Second)
	if err != nil || ok || at.Sub(now) != 2800*time.Millisecond {
		t.Fatalf("past the horizon: %v, %v, %v", at.Sub(now), ok, err)
	}
	// Once idle, the lane starts again from the caller's time.
	later := now.Add(time.Hour)
	if at, ok, err := st.ReservePace(ctx, lane, later, 0); err != nil || !ok || !at.Equal(later) {
		t.Fatalf("idle lane: %v, %v, %v", at.Sub(later), ok, err)
	}
}

// max_in_flight: a pool of 2 gives two holders a slot and the third none until one is released.
func TestInFlightSlots(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	a, err := st.TakeInFlight(ctx, "ws", "sub_1", 2, "a", time.Minute)
	if err != nil || a.IsZero() {
		t.Fatalf("a: %v %v", a, err)
	}
	b, err := st.TakeInFlight(ctx, "ws", "sub_1", 2, "b", time.Minute)
	if err != nil || b.IsZero() || b == a {
		t.Fatalf("b: %v %v", b, err)
	}
	if c, err := st.TakeInFlight(ctx, "ws", "sub_1", 2, "c", time.Minute); err != nil || !c.IsZero() {
		t.Fatalf("c got %v %v with both slots held", c, err)
	}
	if err := st.ReleaseInFlight(ctx, a, "not-a"); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.TakeInFlight(ctx, "ws", "sub_1", 2, "c", time.Minute); !c.IsZero() {
		t.Fatal("another holder released a's slot")
	}
	if err := st.ReleaseInFlight(ctx, a, "a"); err != nil {
		t.Fatal(err)
	}
	if c, err := st.TakeInFlight(ctx, "ws", "sub_1", 2, "c", time.Minute); err != nil || c.IsZero() {
		t.Fatalf("c after a's release: %v %v", c, err)
	}
}

// A rate whose interval is not a whole number of milliseconds (400/s: 2.5 ms) is kept, not
// rounded to a faster one (2 ms: 500/s).
func TestRatePaceKeepsAFractionalInterval(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	ref := time.Now().Add(time.Minute).Truncate(time.Second)
	lane := RatePace("ws", "sub_frac", 400, 1)
	var last time.Time
	for range 5 {
		at, ok, err := st.ReservePace(ctx, lane, ref, time.Hour)
		if err != nil || !ok {
			t.Fatalf("ReservePace = %v, %v, %v", at, ok, err)
		}
		last = at
	}
	if got := last.Sub(ref); got < 10*time.Millisecond {
		t.Fatalf("the 5th send of a 400/s lane goes %v after the first, not 10ms: %.0f/s", got, 4/got.Seconds())
	}
}
