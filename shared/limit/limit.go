// Package limit bounds what a workspace may cost: token buckets and daily counters kept in
// DynamoDB, one item each, so that a limit holds across every Lambda instance.
package limit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// DB is the part of the DynamoDB client the limiter uses.
type DB interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// Rule is a token bucket: it holds up to Burst tokens and gains one every Every. The zero Rule
// (or a Burst of 0) is unlimited.
type Rule struct {
	Burst int
	Every time.Duration
}

// PerMinute is n takes a minute, all of them at once if the bucket is full; n ≤ 0 is unlimited.
func PerMinute(n int) Rule {
	if n <= 0 {
		return Rule{}
	}
	return Rule{Burst: n, Every: time.Minute / time.Duration(n)}
}

// PerMinuteBurst is n takes a minute on average, up to burst at once; n ≤ 0 is unlimited.
func PerMinuteBurst(n, burst int) Rule {
	if n <= 0 {
		return Rule{}
	}
	return Rule{Burst: max(burst, 1), Every: time.Minute / time.Duration(n)}
}

// Unlimited reports whether the rule lets everything through.
func (r Rule) Unlimited() bool { return r.Burst <= 0 || r.Every <= 0 }

// Decision is the outcome of a take: allowed, or refused until RetryAfter has passed.
type Decision struct {
	OK         bool
	RetryAfter time.Duration
}

// Limiter keeps buckets and counters in a table (the store's: its items' keys start with LIM#,
// which no other item's do). Each take is one conditional UpdateItem in the usual case.
//
// A bucket is kept as its theoretical arrival time (GCRA): tat, in microseconds, is when the
// bucket would be full again. A take at now is allowed when tat+Every ≤ now+Burst·Every, and moves
// tat to max(tat, now)+Every. DynamoDB's update expressions have no max, so a take is one of two
// conditional updates: "push" (SET tat = tat + Every, if lo < tat ≤ now+(Burst−1)·Every) or
// "reset" (SET tat = now + Every, if there is no item or tat ≤ lo), where lo = now − slack. Pushes
// commute, so concurrent takers of a busy bucket never contend; only the first take after an idle
// spell resets. The slack (one second, or one token's interval if longer, never more than the
// whole burst) keeps takers whose clock or request lags a little from bouncing between the two:
// a push from a tat up to slack in the past credits that time, so a bucket allows at most one
// second's tokens (or one token) more than Burst in any window. The limiter remembers per key
// which update applied last and tries it first; a failed condition returns the item, which says
// which applies, so a take costs one write (two when the bucket turns from idle to busy). Items
// carry a TTL a minute after their bucket is full again, so idle buckets disappear.
type Limiter struct {
	db    DB
	table string
	now   func() time.Time

	mu    sync.Mutex
	hints map[string]int64 // key → the last tat seen (µs): a tat after now−slack means "push" first
}

// maxHints bounds the memory of hints (a widget opens a bucket per session).
const maxHints = 10_000

// New returns a Limiter on table.
func New(db DB, table string, now func() time.Time) *Limiter {
	return &Limiter{db: db, table: table, now: now, hints: map[string]int64{}}
}

func itemKey(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "LIM#" + key}, "sk": &types.AttributeValueMemberS{Value: "LIM"}}
}

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// maxTakeTries bounds the alternation of push and reset while other takers move the bucket.
const maxTakeTries = 6

// Take takes one token from the bucket key under rule r.
func (l *Limiter) Take(ctx context.Context, key string, r Rule) (Decision, error) {
	if r.Unlimited() {
		return Decision{OK: true}, nil
	}
	every := max(r.Every.Microseconds(), 1)
	slack := min(int64(r.Burst)*every, max(every, time.Second.Microseconds()))
	l.mu.Lock()
	busy := l.hints[key] > l.now().UnixMicro()-slack
	l.mu.Unlock()
	for range maxTakeTries {
		now := l.now().UnixMicro()
		lo := now - slack
		limit := now + int64(r.Burst-1)*every // the latest tat a take may start from
		ttl := num((now+int64(r.Burst)*every)/1e6 + 60)
		in := &dynamodb.UpdateItemInput{
			TableName: &l.table, Key: itemKey(key),
			ExpressionAttributeNames:            map[string]string{"#ttl": "ttl"},
			ReturnValues:                        types.ReturnValueUpdatedNew,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}
		if busy {
			in.UpdateExpression = aws.String("SET tat = tat + :every, #ttl = :ttl")
			in.ConditionExpression = aws.String("tat > :lo AND tat <= :limit")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":every": num(every), ":ttl": ttl, ":lo": num(lo), ":limit": num(limit)}
		} else {
			in.UpdateExpression = aws.String("SET tat = :first, #ttl = :ttl")
			in.ConditionExpression = aws.String("attribute_not_exists(tat) OR tat <= :lo")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":first": num(now + every), ":ttl": ttl, ":lo": num(lo)}
		}
		out, err := l.db.UpdateItem(ctx, in)
		if err == nil {
			l.hint(key, attrNum(out.Attributes, "tat"))
			return Decision{OK: true}, nil
		}
		var cf *types.ConditionalCheckFailedException
		switch {
		case errors.As(err, &cf):
			tat := attrNum(cf.Item, "tat")
			l.hint(key, tat)
			if tat > limit {
				return Decision{RetryAfter: time.Duration(tat-limit) * time.Microsecond}, nil
			}
			busy = tat > lo
		case throttled(err):
			// The bucket's item is hotter than its partition serves (about 1,000 writes a
			// second): whatever floods it is over any sensible limit.
			return Decision{RetryAfter: time.Second}, nil
		default:
			return Decision{}, fmt.Errorf("take from bucket %s: %w", key, err)
		}
	}
	return Decision{RetryAfter: r.Every}, nil // moved by others on every try: as good as empty
}

func (l *Limiter) hint(key string, tat int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.hints) >= maxHints {
		clear(l.hints)
	}
	l.hints[key] = tat
}

// Count adds one to the counter key unless it has reached max, and reports whether it did. The
// counter's item expires after expires.
func (l *Limiter) Count(ctx context.Context, key string, max int64, expires time.Time) (bool, error) {
	_, err := l.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &l.table, Key: itemKey(key),
		UpdateExpression:          aws.String("ADD n :one SET #ttl = :ttl"),
		ConditionExpression:       aws.String("attribute_not_exists(n) OR n < :max"),
		ExpressionAttributeNames:  map[string]string{"#ttl": "ttl"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1), ":max": num(max), ":ttl": num(expires.Unix())},
	})
	var cf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &cf):
		return false, nil
	}
	return false, fmt.Errorf("count %s: %w", key, err)
}

// Uncount gives back one that Count added (never below zero).
func (l *Limiter) Uncount(ctx context.Context, key string) error {
	_, err := l.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &l.table, Key: itemKey(key),
		UpdateExpression:          aws.String("ADD n :minus"),
		ConditionExpression:       aws.String("n > :zero"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":minus": num(-1), ":zero": num(0)},
	})
	var cf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &cf) {
		return fmt.Errorf("uncount %s: %w", key, err)
	}
	return nil
}

func attrNum(item map[string]types.AttributeValue, name string) int64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		i, _ := strconv.ParseInt(v.Value, 10, 64)
		return i
	}
	return 0
}

// throttled reports whether DynamoDB refused the write for the item's or table's throughput (after
// the SDK's own retries).
func throttled(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded":
		return true
	}
	return false
}
