// Package limitenv reads a workspace's admission limits from a function's environment; apart from
// package limit, so that only the functions that enforce them need these variables.
package limitenv

import (
	"github.com/hookgate/hookgate/shared/envcfg"
	"github.com/hookgate/hookgate/shared/limit"
)

// Defaults: generous enough for a busy workspace (and a burst of a thousand messages), low enough
// that a leak or a loop costs a bounded day.
const (
	DefaultDailyRunBudget = 10_000
	DefaultInboundRate    = 6_000 // messages a minute (100 a second), on average
	DefaultInboundBurst   = 2_000
)

// Gate reads the limits every door enforces:
//
//	HOOKGATE_DAILY_RUN_BUDGET         runs a workspace may start per UTC day (default 10,000; 0 unlimited)
//	HOOKGATE_INBOUND_PER_MINUTE  a workspace's inbound messages a minute (default 6,000; 0 unlimited)
//	HOOKGATE_INBOUND_BURST       how many of them may come at once (default 2,000)
//
// Problems are reported by env.Err.
func Gate(env *envcfg.Reader) limit.GateConfig {
	return limit.GateConfig{
		DailyRuns: int64(env.Int("HOOKGATE_DAILY_RUN_BUDGET", DefaultDailyRunBudget, 0, 1_000_000_000)),
		Events: limit.PerMinuteBurst(env.Int("HOOKGATE_INBOUND_PER_MINUTE", DefaultInboundRate, 0, 6_000_000),
			env.Int("HOOKGATE_INBOUND_BURST", DefaultInboundBurst, 1, 1_000_000)),
	}
}
