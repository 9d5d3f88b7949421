package outbound

import (
	"net/http"
	"time"
)

// Jitter is the spread of every scheduled wait: a wait d becomes a uniform draw in [0.8d, 1.2d).
const Jitter = 0.2

// BackoffFloor is the least wait after an attempt that timed out or was answered 429 or 503: the
// receiver is overloaded, and a retry a few seconds later would only add to its load.
const BackoffFloor = 60 * time.Second

// Jittered moves d by a fraction of itself in [-Jitter, +Jitter); u is a uniform draw in [0, 1).
func Jittered(d time.Duration, u float64) time.Duration {
	return d + time.Duration(float64(d)*Jitter*(2*u-1))
}

// Overloaded reports a result that asks the sender to back off: a timeout, a 429 or a 503.
func (r Result) Overloaded() bool {
	return r.Err == FailTimeout || r.StatusCode == http.StatusTooManyRequests || r.StatusCode == http.StatusServiceUnavailable
}

// Backoff is how the wait before a retry is drawn.
type Backoff struct {
	// Floor is the least wait after an overloaded result (BackoffFloor on AWS; tests shorten it).
	Floor time.Duration
	// MaxRetryAfter caps what a Retry-After may ask for; ≤ 0 ignores Retry-After.
	MaxRetryAfter time.Duration
}

// Wait returns the wait before the next attempt, given the attempts made so far and the last
// result, or ok=false when the schedule is used up. The scheduled delay is jittered by ±Jitter;
// the wait is at least Retry-After (capped at MaxRetryAfter; Post reads it from 429 and 503
// answers), and after an overloaded result at least Floor, the longer of the two stretched by up
// to +Jitter so that it never falls short of what was asked. u is a uniform draw in [0, 1).
func (s Schedule) Wait(attempt int, res Result, b Backoff, u float64) (time.Duration, bool) {
	if attempt < 0 || attempt >= len(s) {
		return 0, false
	}
	w := Jittered(s[attempt], u)
	var floor time.Duration
	if res.Overloaded() {
		floor = b.Floor
	}
	if b.MaxRetryAfter > 0 {
		floor = max(floor, min(res.RetryAfter, b.MaxRetryAfter))
	}
	if floor > 0 {
		w = max(w, floor+time.Duration(float64(floor)*Jitter*u))
	}
	return w, true
}
