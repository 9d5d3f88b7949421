package outbound

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Schedule presets accepted by ParseSchedule.
const (
	// ScheduleDefault spans about 27.6 hours over 8 attempts.
	ScheduleDefault = "0s,5s,5m,30m,2h,5h,10h,10h"
	// ScheduleSimple is 3 tries: at once, 1 s after the first failure, 5 s after the second.
	ScheduleSimple = "0s,1s,5s"
)

// Schedule limits.
const (
	MaxScheduleEntries = 50
	MaxScheduleDelay   = 24 * time.Hour
)

// ErrBadSchedule is wrapped by every error of ParseSchedule.
var ErrBadSchedule = errors.New("delivery: bad retry schedule")

// Schedule lists the delay before each attempt: s[0] before the first (normally 0, "at once"),
// s[i] before attempt i+1, counted from the failure of attempt i. Its length is the maximum
// number of attempts. A Schedule carries no jitter: the caller adds its own if it wants some.
type Schedule []time.Duration

// ParseSchedule parses "default", "simple" or comma-separated Go durations ("0s,5s,5m,…"):
// 1 to MaxScheduleEntries entries, each from 0 to MaxScheduleDelay. Every bad entry is reported.
func ParseSchedule(s string) (Schedule, error) {
	switch strings.TrimSpace(s) {
	case "default":
		s = ScheduleDefault
	case "simple":
		s = ScheduleSimple
	}
	parts := strings.Split(s, ",")
	if len(parts) > MaxScheduleEntries {
		return nil, fmt.Errorf("%w: %d entries, at most %d", ErrBadSchedule, len(parts), MaxScheduleEntries)
	}
	sched := make(Schedule, len(parts))
	var errs []error
	for i, p := range parts {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%w: entry %d: %q is not a duration", ErrBadSchedule, i+1, p))
		case d < 0 || d > MaxScheduleDelay:
			errs = append(errs, fmt.Errorf("%w: entry %d: %s is outside 0..%s", ErrBadSchedule, i+1, d, MaxScheduleDelay))
		}
		sched[i] = d
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return sched, nil
}

// String returns the schedule in the form ParseSchedule reads.
func (s Schedule) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

// MaxAttempts is the number of attempts the schedule allows.
func (s Schedule) MaxAttempts() int { return len(s) }

// Total is the sum of the delays: the longest a delivery waits before it is exhausted.
func (s Schedule) Total() time.Duration {
	var t time.Duration
	for _, d := range s {
		t += d
	}
	return t
}

// Next returns the delay before the next attempt, given the number of attempts made so far, or
// ok=false when the schedule is exhausted. A server's Retry-After (0 when absent) can lengthen the
// delay but never shorten it: max(scheduled, min(retryAfter, maxRetryAfter)); maxRetryAfter ≤ 0
// ignores Retry-After.
func (s Schedule) Next(attempt int, retryAfter, maxRetryAfter time.Duration) (delay time.Duration, ok bool) {
	if attempt < 0 || attempt >= len(s) {
		return 0, false
	}
	return max(s[attempt], min(retryAfter, maxRetryAfter)), true
}

// ParseRetryAfter parses a Retry-After value, delta-seconds or an HTTP-date, into a wait from now.
// A date in the past gives 0; ok is false for an empty or malformed value.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, false
		}
		if maxSecs := uint64(math.MaxInt64 / time.Second); err != nil || secs > maxSecs {
			secs = maxSecs // absurd but well formed: saturate rather than overflow
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
