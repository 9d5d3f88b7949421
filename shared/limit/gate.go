package limit

import (
	"context"
	"log/slog"
	"time"

	"github.com/hookgate/hookgate/shared/apierr"
)

// GateConfig is what a workspace may send in: its inbound message rate and its daily run budget.
type GateConfig struct {
	// Events bounds the workspace's inbound messages (each becomes events in its log, and a loop
	// that slips through the loop guards becomes a bounded trickle); unlimited when zero.
	Events Rule
	// DailyRuns is how many runs the workspace may start per UTC day; 0 is unlimited.
	DailyRuns int64
}

// Gate admits inbound work into workspaces. Every door that queues work asks it first. A nil
// *Gate admits everything.
type Gate struct {
	lim *Limiter
	cfg GateConfig
	now func() time.Time
}

// NewGate returns a Gate keeping its buckets and counters with lim.
func NewGate(lim *Limiter, cfg GateConfig, now func() time.Time) *Gate {
	return &Gate{lim: lim, cfg: cfg, now: now}
}

// Admission is what Admit took from the run budget; Refund gives it back when the work was not
// queued after all. A nil *Admission took nothing.
type Admission struct {
	lim *Limiter
	key string
	day string // set when the unit is a tally on the inbound bucket's item (Limiter.take)
}

// Admit takes one token of ws's inbound rate and, when the work starts a run, one unit of its run
// budget for today (UTC). Refused work is a RateLimited or BudgetExhausted error with a
// Retry-After; a budget refusal says when the budget resets. A request the rate refuses spends no
// budget, and one the budget refuses no token. With both limits on, the day's count is kept on the
// rate's bucket item and both are taken in one conditional write (Limiter.take with a tally); the
// item then lives until the day's count may go.
func (g *Gate) Admit(ctx context.Context, ws string, run bool) (*Admission, error) {
	if g == nil {
		return nil, nil
	}
	now := g.now().UTC()
	day := now.Truncate(24 * time.Hour) // Unix days are UTC days
	expires := day.Add(48 * time.Hour)  // a day's count is kept to the end of the next day
	budget := run && g.cfg.DailyRuns > 0
	var t *tally
	if budget {
		t = &tally{day: day.Format(time.DateOnly), max: g.cfg.DailyRuns}
	}
	if !g.cfg.Events.Unlimited() {
		var keep int64 // a take without the tally keeps the item (and today's count on it) alive
		if g.cfg.DailyRuns > 0 {
			keep = expires.Unix()
		}
		key := "WS#" + ws + "#INBOUND"
		d, counted, err := g.lim.take(ctx, key, g.cfg.Events, t, keep)
		switch {
		case err != nil:
			return nil, apierr.Wrap(apierr.Unavailable, err, "the request could not be admitted; retry later")
		case !d.OK:
			return nil, Refused(d, "too many inbound messages for this workspace")
		case !budget:
			return nil, nil
		case !counted:
			return nil, g.spent(now, t.day) // the item's day, which may have begun since now was read
		}
		return &Admission{lim: g.lim, key: key, day: t.day}, nil
	}
	if !budget {
		return nil, nil
	}
	key := "WS#" + ws + "#RUNS#" + t.day
	ok, err := g.lim.Count(ctx, key, g.cfg.DailyRuns, expires)
	if err != nil {
		return nil, apierr.Wrap(apierr.Unavailable, err, "the request could not be admitted; retry later")
	}
	if !ok {
		return nil, g.spent(now, t.day)
	}
	return &Admission{lim: g.lim, key: key}, nil
}

// spent is the 429 of a spent run budget of day (YYYY-MM-DD).
func (g *Gate) spent(now time.Time, day string) error {
	d, _ := time.Parse(time.DateOnly, day)
	reset := d.Add(24 * time.Hour)
	return apierr.Later(apierr.BudgetExhausted, reset.Sub(now),
		"the workspace's daily run budget (%d runs) is spent; it resets at %s", g.cfg.DailyRuns, reset.Format(time.RFC3339))
}

// Refund gives back the run unit a (never below zero), for work that was not queued after all. It
// is best effort: a refund that fails is logged to log and leaves the day's count one high; the
// error is returned for callers that want it.
func (a *Admission) Refund(ctx context.Context, log *slog.Logger) error {
	if a == nil {
		return nil
	}
	var err error
	if a.day != "" {
		err = a.lim.giveBack(ctx, a.key, "tally", a.day)
	} else {
		err = a.lim.Uncount(ctx, a.key)
	}
	if err != nil {
		log.WarnContext(ctx, "run budget not refunded; today's count stays one high", "err", err)
	}
	return err
}

// Refused is the 429 of a refused take: code rate_limited, the message, and when to retry.
func Refused(d Decision, message string) error {
	secs := int((d.RetryAfter + time.Second - 1) / time.Second)
	return apierr.Later(apierr.RateLimited, d.RetryAfter, "%s; retry in %d s", message, max(secs, 1))
}
