package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// RateLimit bounds how fast a subscription's deliveries are sent: PerSecond on average, up to
// Burst at once.
type RateLimit struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst"`
}

// Limits are a subscription's throttles; the zero value sets none.
type Limits struct {
	RateLimit   *RateLimit
	MaxInFlight int // concurrent requests; 0 for no bound
}

// Limits returns the subscription's throttles.
func (s Subscription) Limits() Limits {
	return Limits{RateLimit: s.RateLimit, MaxInFlight: s.MaxInFlight}
}

// Circuit states. A closed circuit stores nothing.
const (
	CircuitClosed   = "closed"
	CircuitOpen     = "open"
	CircuitHalfOpen = "half_open" // one probe is being sent
)

// Circuit is the state of a subscription's circuit breaker, kept on the subscription's item.
type Circuit struct {
	State string    // CircuitClosed, CircuitOpen or CircuitHalfOpen
	Until time.Time // open: when a probe may go; half-open: when the probe's lease ends
	Since time.Time // when it opened
	Seq   int       // how many times it opened
	// WatchUntil is set, by the first failure of a window, to when the window of outcomes ends:
	// until then successes are counted too. A healthy endpoint is never counted (no writes).
	WatchUntil time.Time
}

// putLimits stores the limits in a new subscription's item.
func putLimits(item map[string]types.AttributeValue, l Limits) {
	if l.RateLimit != nil {
		item["rate_per_second"] = nf(l.RateLimit.PerSecond)
		item["rate_burst"] = n(int64(l.RateLimit.Burst))
	}
	if l.MaxInFlight > 0 {
		item["max_in_flight"] = n(int64(l.MaxInFlight))
	}
}

func nf(v float64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatFloat(v, 'f', -1, 64)}
}

func numf(item map[string]types.AttributeValue, name string) float64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		f, _ := strconv.ParseFloat(v.Value, 64)
		return f
	}
	return 0
}

func msTime(item map[string]types.AttributeValue, name string) time.Time {
	if v := num(item, name); v > 0 {
		return time.UnixMilli(v).UTC()
	}
	return time.Time{}
}

// decodeLimits reads the limits and the circuit of a subscription's item into sub.
func decodeLimits(item map[string]types.AttributeValue, sub *Subscription) {
	if r := numf(item, "rate_per_second"); r > 0 {
		sub.RateLimit = &RateLimit{PerSecond: r, Burst: int(num(item, "rate_burst"))}
	}
	sub.MaxInFlight = int(num(item, "max_in_flight"))
	sub.Circuit = Circuit{
		State: CircuitClosed, Until: msTime(item, "circuit_until"), Since: msTime(item, "circuit_since"),
		Seq: int(num(item, "circuit_seq")), WatchUntil: msTime(item, "circuit_watch_until"),
	}
	if v := str(item, "circuit"); v != "" {
		sub.Circuit.State = v
	}
}

// LimitsPatch changes a subscription's limits: a non-nil field replaces the stored one, and
// ClearRateLimit removes the rate limit.
type LimitsPatch struct {
	RateLimit      *RateLimit
	ClearRateLimit bool
	MaxInFlight    *int // 0 removes the bound
}

// SetSubscriptionLimits applies patch to a subscription and returns it.
func (st *Store) SetSubscriptionLimits(ctx context.Context, ws, id string, patch LimitsPatch) (Subscription, error) {
	set, remove := "SET updated_at = :now", ""
	vals := map[string]types.AttributeValue{":now": ts(st.now().UTC()), ":one": n(1)}
	drop := func(names string) {
		if remove == "" {
			remove = " REMOVE " + names
		} else {
			remove += ", " + names
		}
	}
	switch {
	case patch.RateLimit != nil:
		set += ", rate_per_second = :rate, rate_burst = :burst"
		vals[":rate"], vals[":burst"] = nf(patch.RateLimit.PerSecond), n(int64(patch.RateLimit.Burst))
	case patch.ClearRateLimit:
		drop("rate_per_second, rate_burst")
	}
	if m := patch.MaxInFlight; m != nil && *m > 0 {
		set += ", max_in_flight = :mif"
		vals[":mif"] = n(int64(*m))
	} else if m != nil {
		drop("max_in_flight")
	}
	out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: subKey(ws, id),
		UpdateExpression:          aws.String(set + remove + " ADD rev :one"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: vals,
		ReturnValues:              types.ReturnValueAllNew,
	})
	if err != nil {
		var cf *types.ConditionalCheckFailedException
		if errors.As(err, &cf) {
			return Subscription{}, subNotFound()
		}
		return Subscription{}, fmt.Errorf("set limits of subscription %s: %w", id, err)
	}
	return decodeSubscription(out.Attributes), nil
}
