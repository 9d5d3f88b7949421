package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Pacing spaces a subscription's sends across every delivery process with a generic cell rate
// algorithm (a token bucket kept as one number): the item holds tat, the theoretical arrival time
// of the next send (Unix microseconds: a rate over 100/s has an interval of a fraction of a
// millisecond, which milliseconds would round to a faster rate). A send reserves the slot at tat and moves tat on by one
// interval, so concurrent senders get distinct slots instead of racing for a token. One write
// reserves a slot (two when the bucket was idle); nothing is written for a subscription without
// limits.

// Pace is one pacing lane: its item and its spacing.
type Pace struct {
	PK, SK    string
	Interval  time.Duration // between two slots
	Tolerance time.Duration // how far ahead of its slot a send may go: (burst-1) × Interval
}

// RatePace is the lane of a subscription's rate limit: perSecond sends a second, burst at once.
func RatePace(ws, sub string, perSecond float64, burst int) Pace {
	iv := time.Duration(float64(time.Second) / perSecond)
	return Pace{PK: "WS#" + ws + "#SUB#" + sub + "#PACE", SK: "RATE", Interval: iv, Tolerance: time.Duration(max(burst, 1)-1) * iv}
}

// RetryPace is the lane that spaces a subscription's retries of one schedule step (attempt) by
// spacing: after an outage, the endpoint's retries come one by one, not all in the same second.
func RetryPace(ws, sub string, attempt int, spacing time.Duration) Pace {
	return Pace{PK: "WS#" + ws + "#SUB#" + sub + "#PACE", SK: fmt.Sprintf("RETRY#%02d", attempt), Interval: spacing}
}

// RetrySendPace is the lane a subscription's retries take when they are sent, whatever their
// step: however late their messages arrive, they reach the endpoint spacing apart.
func RetrySendPace(ws, sub string, spacing time.Duration) Pace {
	return Pace{PK: "WS#" + ws + "#SUB#" + sub + "#PACE", SK: "RETRY#SEND", Interval: spacing}
}

// maxPaceTries bounds the writes of one reservation under contention.
const maxPaceTries = 6

// ErrPaceContended means a reservation lost every race it ran; the caller tries again later.
var ErrPaceContended = errors.New("store: pacing lane contended")

// ReservePace reserves the lane's first slot at or after ref and returns the time the send may go
// (≥ ref). A slot more than horizon after ref is not reserved: ok is false and at is when the lane
// would have one, for the caller to come back then.
func (st *Store) ReservePace(ctx context.Context, p Pace, ref time.Time, horizon time.Duration) (at time.Time, ok bool, err error) {
	iv, tol := p.Interval.Microseconds(), p.Tolerance.Microseconds()
	r := ref.UnixMicro()
	latest := r + tol + horizon.Microseconds() // the last tat whose slot (tat - tol) is within the horizon
	ttl := n(ref.Add(horizon + 24*time.Hour).Unix())
	for range maxPaceTries {
		// A busy lane: take the slot at tat.
		out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: &st.table, Key: key(p.PK, p.SK),
			UpdateExpression:         aws.String("SET tat = tat + :iv, #ttl = :ttl"),
			ConditionExpression:      aws.String("tat >= :ref AND tat <= :latest"),
			ExpressionAttributeNames: map[string]string{"#ttl": "ttl"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":iv": n(iv), ":ref": n(r), ":latest": n(latest), ":ttl": ttl,
			},
			ReturnValues:                        types.ReturnValueUpdatedNew,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err == nil {
			slot := num(out.Attributes, "tat") - iv - tol
			return time.UnixMicro(max(slot, r)), true, nil
		}
		var cf *types.ConditionalCheckFailedException
		if !errors.As(err, &cf) {
			return time.Time{}, false, fmt.Errorf("reserve %s %s: %w", p.PK, p.SK, err)
		}
		if num(cf.Item, "tat") > latest {
			return time.UnixMicro(num(cf.Item, "tat") - tol), false, nil
		}
		// An idle lane: the slot is ref itself.
		_, err = st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: &st.table, Key: key(p.PK, p.SK),
			UpdateExpression:         aws.String("SET tat = :next, #ttl = :ttl"),
			ConditionExpression:      aws.String("attribute_not_exists(tat) OR tat < :ref"),
			ExpressionAttributeNames: map[string]string{"#ttl": "ttl"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":next": n(r + iv), ":ref": n(r), ":ttl": ttl,
			},
		})
		if err == nil {
			return time.UnixMicro(r), true, nil
		}
		if !errors.As(err, &cf) {
			return time.Time{}, false, fmt.Errorf("reserve %s %s: %w", p.PK, p.SK, err)
		}
	}
	return time.Time{}, false, ErrPaceContended
}
