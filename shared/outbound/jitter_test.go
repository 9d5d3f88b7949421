package outbound

import (
	"net/http"
	"testing"
	"time"
)

// Every scheduled wait moves by up to ±20%, across the whole range.
func TestWaitJittersEveryStep(t *testing.T) {
	s, _ := ParseSchedule("0s,5s,5m")
	for _, tc := range []struct {
		u      float64
		at     int
		lo, hi time.Duration
	}{
		{0, 1, 4 * time.Second, 4 * time.Second},
		{0.5, 1, 5 * time.Second, 5 * time.Second},
		{0.999999, 1, 5999 * time.Millisecond, 6 * time.Second},
		{0.25, 2, 270 * time.Second, 270 * time.Second},
	} {
		w, ok := s.Wait(tc.at, Result{StatusCode: 500}, Backoff{Floor: BackoffFloor, MaxRetryAfter: time.Hour}, tc.u)
		if !ok || w < tc.lo || w > tc.hi {
			t.Errorf("Wait(%d, u=%v) = %v, %v; want %v..%v", tc.at, tc.u, w, ok, tc.lo, tc.hi)
		}
	}
	if _, ok := s.Wait(3, Result{}, Backoff{}, 0.5); ok {
		t.Error("a used-up schedule has a next wait")
	}
}

// After a timeout, a 429 or a 503 the wait is at least 60 s, or Retry-After (capped) when longer,
// and never less than asked however the jitter draws.
func TestWaitBacksOffAfterOverload(t *testing.T) {
	s, _ := ParseSchedule("0s,5s")
	b := Backoff{Floor: BackoffFloor, MaxRetryAfter: time.Hour}
	for _, tc := range []struct {
		name   string
		res    Result
		lo, hi time.Duration
	}{
		{"timeout", Result{Err: FailTimeout}, 60 * time.Second, 72 * time.Second},
		{"429 without Retry-After", Result{StatusCode: http.StatusTooManyRequests}, 60 * time.Second, 72 * time.Second},
		{"503 asking 10 s", Result{StatusCode: http.StatusServiceUnavailable, RetryAfter: 10 * time.Second}, 60 * time.Second, 72 * time.Second},
		{"429 asking 5 min", Result{StatusCode: http.StatusTooManyRequests, RetryAfter: 5 * time.Minute}, 5 * time.Minute, 6 * time.Minute},
		{"503 asking a day: capped at an hour", Result{StatusCode: http.StatusServiceUnavailable, RetryAfter: 24 * time.Hour}, time.Hour, 72 * time.Minute},
		{"500: the schedule's own", Result{StatusCode: 500}, 4 * time.Second, 6 * time.Second},
		{"connection refused: the schedule's own", Result{Err: FailRefused}, 4 * time.Second, 6 * time.Second},
	} {
		for _, u := range []float64{0, 0.3, 0.7, 0.99} {
			if w, _ := s.Wait(1, tc.res, b, u); w < tc.lo || w > tc.hi {
				t.Errorf("%s, u=%v: %v, want %v..%v", tc.name, u, w, tc.lo, tc.hi)
			}
		}
	}
}
