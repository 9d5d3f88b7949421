package manage

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/hookgate/hookgate/shared/store"
)

// Throttle bounds. A rate limit's pacing item takes one write per send, and one DynamoDB item
// takes at most 1,000 writes a second: MaxRatePerSecond stays well under that.
const (
	MinRatePerSecond = 0.01
	MaxRatePerSecond = 500
	MaxBurst         = 1000
	MaxInFlight      = 100
)

// limitsIn is the part of a subscription's create or update body that sets its throttles:
// rate_limit {per_second, burst?} and max_in_flight, each null to remove (on update).
type limitsIn struct {
	RateLimit   json.RawMessage `json:"rate_limit"`
	MaxInFlight json.RawMessage `json:"max_in_flight"`
}

func isNull(b json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(b), []byte("null")) }

// patch validates the throttles given; set reports whether any was.
func (in limitsIn) patch() (p store.LimitsPatch, set bool, err error) {
	if in.RateLimit != nil {
		set = true
		if isNull(in.RateLimit) {
			p.ClearRateLimit = true
		} else if p.RateLimit, err = parseRateLimit(in.RateLimit); err != nil {
			return p, set, err
		}
	}
	if in.MaxInFlight != nil {
		set = true
		m := 0
		if !isNull(in.MaxInFlight) {
			var v float64
			if json.Unmarshal(in.MaxInFlight, &v) != nil || v != math.Trunc(v) || v < 1 || v > MaxInFlight {
				return p, set, invalid("max_in_flight must be an integer from 1 to %d, or null for no bound", MaxInFlight)
			}
			m = int(v)
		}
		p.MaxInFlight = &m
	}
	return p, set, nil
}

func parseRateLimit(b json.RawMessage) (*store.RateLimit, error) {
	var in struct {
		PerSecond *float64 `json:"per_second"`
		Burst     *float64 `json:"burst"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || in.PerSecond == nil {
		return nil, invalid("rate_limit must be an object {per_second, burst?}")
	}
	if r := *in.PerSecond; math.IsNaN(r) || r < MinRatePerSecond || r > MaxRatePerSecond {
		return nil, invalid("rate_limit.per_second must be from %g to %d", MinRatePerSecond, MaxRatePerSecond)
	}
	rl := &store.RateLimit{PerSecond: *in.PerSecond, Burst: int(max(1, math.Ceil(*in.PerSecond)))}
	if in.Burst != nil {
		if v := *in.Burst; v != math.Trunc(v) || v < 1 || v > MaxBurst {
			return nil, invalid("rate_limit.burst must be an integer from 1 to %d", MaxBurst)
		}
		rl.Burst = int(*in.Burst)
	}
	return rl, nil
}

// ThrottleView is what a subscription's view shows of its throttles and its circuit breaker.
type ThrottleView struct {
	RateLimit   *store.RateLimit `json:"rate_limit"`    // null: no rate limit
	MaxInFlight *int             `json:"max_in_flight"` // null: no bound
	Circuit     CircuitView      `json:"circuit"`
}

// CircuitView is a subscription's circuit breaker.
type CircuitView struct {
	State       string     `json:"state"` // closed | open | half_open
	OpenedAt    *time.Time `json:"opened_at,omitempty"`
	NextProbeAt *time.Time `json:"next_probe_at,omitempty"` // open: when a probe may be sent
}

func throttleView(sub store.Subscription) ThrottleView {
	v := ThrottleView{RateLimit: sub.RateLimit, Circuit: CircuitView{State: sub.Circuit.State}}
	if sub.MaxInFlight > 0 {
		m := sub.MaxInFlight
		v.MaxInFlight = &m
	}
	if v.Circuit.State == "" {
		v.Circuit.State = store.CircuitClosed
	}
	if c := sub.Circuit; c.State != store.CircuitClosed && c.State != "" {
		since, until := c.Since, c.Until
		v.Circuit.OpenedAt = &since
		if c.State == store.CircuitOpen {
			v.Circuit.NextProbeAt = &until
		}
	}
	return v
}

// LimitsStore is the part of the store that sets a subscription's throttles.
type LimitsStore interface {
	SetSubscriptionLimits(ctx context.Context, ws, id string, patch store.LimitsPatch) (store.Subscription, error)
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}
