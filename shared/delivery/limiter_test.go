package delivery

import (
	"context"
	"time"

	"github.com/hookgate/hookgate/shared/store"
)

// The fake store's Limiter keeps one subscription's pacing lanes, slots and circuit in memory,
// as the real store keeps them in DynamoDB (tested there on DynamoDB Local).

type fakeLimits struct {
	tat      map[string]time.Time // pacing lanes by sort key
	slots    map[string]bool      // max_in_flight slots held, by holder
	released int                  // claims given back
	window   struct{ attempts, failures float64 }
	watch    int   // WatchCircuit calls
	counted  int   // CountOutcome calls
	countErr error // what CountOutcome fails with
}

func (f *fakeStore) ReservePace(_ context.Context, p store.Pace, ref time.Time, horizon time.Duration) (time.Time, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lim.tat == nil {
		f.lim.tat = map[string]time.Time{}
	}
	tat := f.lim.tat[p.SK]
	if tat.Before(ref) {
		tat = ref
	}
	at := tat.Add(-p.Tolerance)
	if at.Before(ref) {
		at = ref
	}
	if at.Sub(ref) > horizon {
		return at, false, nil
	}
	f.lim.tat[p.SK] = tat.Add(p.Interval)
	return at, true, nil
}

func (f *fakeStore) TakeInFlight(_ context.Context, _, _ string, size int, holder string, _ time.Duration) (store.SlotRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lim.slots == nil {
		f.lim.slots = map[string]bool{}
	}
	if len(f.lim.slots) >= size {
		return store.SlotRef{}, nil
	}
	f.lim.slots[holder] = true
	return store.SlotRef{PK: "slots", SK: holder}, nil
}

func (f *fakeStore) ReleaseInFlight(_ context.Context, ref store.SlotRef, holder string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !ref.IsZero() {
		delete(f.lim.slots, holder)
	}
	return nil
}

func (f *fakeStore) ReleaseClaim(context.Context, string, string, int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lim.released++
	return nil
}

func (f *fakeStore) CountOutcome(_ context.Context, _, _ string, failed bool, _ time.Time, _ time.Duration) (float64, float64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lim.counted++
	if f.lim.countErr != nil {
		return 0, 0, f.lim.countErr
	}
	f.lim.window.attempts++
	if failed {
		f.lim.window.failures++
	}
	return f.lim.window.attempts, f.lim.window.failures, nil
}

func (f *fakeStore) WatchCircuit(_ context.Context, _, _ string, until time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lim.watch++
	f.sub.Circuit.WatchUntil = until
	return nil
}

func (f *fakeStore) OpenCircuit(_ context.Context, _, _ string, now, probeAt time.Time) (store.Circuit, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sub.Circuit.State == store.CircuitOpen || f.sub.Circuit.State == store.CircuitHalfOpen {
		return f.sub.Circuit, false, nil
	}
	c := &f.sub.Circuit
	c.State, c.Until, c.Since, c.Seq = store.CircuitOpen, probeAt, now, c.Seq+1
	return *c, true, nil
}

func (f *fakeStore) ProbeCircuit(_ context.Context, _, _ string, now time.Time, lease time.Duration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := &f.sub.Circuit
	if (c.State != store.CircuitOpen && c.State != store.CircuitHalfOpen) || c.Until.After(now) {
		return false, nil
	}
	c.State, c.Until = store.CircuitHalfOpen, now.Add(lease)
	return true, nil
}

func (f *fakeStore) CloseCircuit(context.Context, string, string) (store.Circuit, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.sub.Circuit
	if old.State != store.CircuitOpen && old.State != store.CircuitHalfOpen {
		return old, false, nil
	}
	f.sub.Circuit = store.Circuit{State: store.CircuitClosed, Seq: old.Seq}
	f.lim.window.attempts, f.lim.window.failures = 0, 0
	return old, true, nil
}

func (f *fakeStore) ReopenCircuit(_ context.Context, _, _ string, probeAt time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sub.Circuit.State == store.CircuitHalfOpen {
		f.sub.Circuit.State, f.sub.Circuit.Until = store.CircuitOpen, probeAt
	}
	return nil
}
