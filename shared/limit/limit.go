// Package limit bounds what a workspace may cost: token buckets and daily counters kept in
// DynamoDB, one item each or a counter on its bucket's item, so that a limit holds across every
// Lambda instance.
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
// carry a TTL a minute after their bucket is full again, so idle buckets disappear; a bucket that
// keeps a tally (Gate's inbound bucket with a run budget) lives to the end of the next day, whether
// it counted a run or not, so that its count lives as long as it must. A failed condition is billed
// as a write too: a take after an idle spell, or an instance's first run of a new day, costs two.
type Limiter struct {
	db    DB
	table string
	now   func() time.Time

	mu    sync.Mutex
	hints map[string]seen // per key, what its item held when last seen
}

// seen is what a bucket's item last held: a tat after now−slack means "push" first; a tally's day
// equal to the one counted means "add" first.
type seen struct {
	tat int64 // µs
	day string
}

// maxHints bounds the memory of hints (a widget opens a bucket per session).
const maxHints = 10_000

// New returns a Limiter on table.
func New(db DB, table string, now func() time.Time) *Limiter {
	return &Limiter{db: db, table: table, now: now, hints: map[string]seen{}}
}

func itemKey(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "LIM#" + key}, "sk": &types.AttributeValueMemberS{Value: "LIM"}}
}

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// maxTakeTries bounds the alternation of push and reset while other takers move the bucket.
const maxTakeTries = 6

// Take takes one token from the bucket key under rule r. It sets the item's TTL from the bucket
// alone: not for a bucket that keeps a tally (Gate's inbound bucket with a run budget).
func (l *Limiter) Take(ctx context.Context, key string, r Rule) (Decision, error) {
	d, _, err := l.take(ctx, key, r, nil, 0)
	return d, err
}

// tally is a counter kept on a bucket's item (see take): at most max a day. Days are YYYY-MM-DD,
// so that they compare in time order.
type tally struct {
	day string // the period counted; a later one starts the count afresh
	max int64
}

// take is Take with an optional tally on the bucket's item, taken in the same conditional write:
// the token and one more on the tally, or neither. Refused by the rate (the Decision), it counts
// nothing; refused by the tally (counted false, the Decision OK), it takes no token. The item's TTL
// is then at least keepUntil (Unix seconds): a take without the tally must not shorten the life of
// a count kept there. A tally of a day older than the item's is counted on the item's day (t.day
// is moved on): a request dated before midnight and written after it never turns the count back.
func (l *Limiter) take(ctx context.Context, key string, r Rule, t *tally, keepUntil int64) (Decision, bool, error) {
	if r.Unlimited() {
		return Decision{OK: true}, false, nil
	}
	every := max(r.Every.Microseconds(), 1)
	slack := min(int64(r.Burst)*every, max(every, time.Second.Microseconds()))
	l.mu.Lock()
	last, known := l.hints[key]
	l.mu.Unlock()
	busy := last.tat > l.now().UnixMicro()-slack
	// Unknown here, the item most likely counts today already (another instance's runs).
	sameDay := t != nil && (!known || last.day == t.day)
	for range maxTakeTries {
		now := l.now().UnixMicro()
		lo := now - slack
		limit := now + int64(r.Burst-1)*every // the latest tat a take may start from
		ttl := max((now+int64(r.Burst)*every)/1e6+60, keepUntil)
		set, cond := "", ""
		vals := map[string]types.AttributeValue{":ttl": num(ttl), ":lo": num(lo)}
		if busy {
			set, cond = "SET tat = tat + :every, #ttl = :ttl", "tat > :lo AND tat <= :limit"
			vals[":every"], vals[":limit"] = num(every), num(limit)
		} else {
			set, cond = "SET tat = :first, #ttl = :ttl", "(attribute_not_exists(tat) OR tat <= :lo)"
			vals[":first"] = num(now + every)
		}
		names := map[string]string{"#ttl": "ttl"}
		if t != nil {
			names["#day"] = "day"
			vals[":day"], vals[":one"] = &types.AttributeValueMemberS{Value: t.day}, num(1)
			if sameDay {
				set, cond = set+" ADD tally :one", cond+" AND #day = :day AND tally < :max"
				vals[":max"] = num(t.max)
			} else {
				set, cond = set+", #day = :day, tally = :one", cond+" AND (attribute_not_exists(#day) OR #day < :day)"
			}
		}
		out, err := l.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: &l.table, Key: itemKey(key),
			UpdateExpression: aws.String(set), ConditionExpression: aws.String(cond),
			ExpressionAttributeNames: names, ExpressionAttributeValues: vals,
			ReturnValues:                        types.ReturnValueAllNew, // the day too, which a take without the tally does not set
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err == nil {
			l.hint(key, attrNum(out.Attributes, "tat"), attrStr(out.Attributes, "day"))
			return Decision{OK: true}, t != nil, nil
		}
		var cf *types.ConditionalCheckFailedException
		switch {
		case errors.As(err, &cf):
			tat, day := attrNum(cf.Item, "tat"), attrStr(cf.Item, "day")
			l.hint(key, tat, day)
			if tat > limit {
				return Decision{RetryAfter: time.Duration(tat-limit) * time.Microsecond}, false, nil
			}
			busy = tat > lo
			if t != nil {
				if day > t.day {
					t.day = day // written after the item's day began: counted there
				}
				sameDay = day == t.day
				if sameDay && attrNum(cf.Item, "tally") >= t.max {
					return Decision{OK: true}, false, nil // the tally is full: no token taken either
				}
			}
		case throttled(err):
			// The bucket's item is hotter than its partition serves (about 1,000 writes a
			// second): whatever floods it is over any sensible limit.
			return Decision{RetryAfter: time.Second}, false, nil
		default:
			return Decision{}, false, fmt.Errorf("take from bucket %s: %w", key, err)
		}
	}
	return Decision{RetryAfter: r.Every}, false, nil // moved by others on every try: as good as empty
}

func (l *Limiter) hint(key string, tat int64, day string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.hints) >= maxHints {
		clear(l.hints)
	}
	l.hints[key] = seen{tat: tat, day: day}
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
	return l.giveBack(ctx, key, "n", "")
}

// giveBack takes one off the counter attribute attr of key's item, never below zero; with a day,
// only while the item counts that day (a tally, see take).
func (l *Limiter) giveBack(ctx context.Context, key, attr, day string) error {
	cond := "#c > :zero"
	names := map[string]string{"#c": attr}
	vals := map[string]types.AttributeValue{":minus": num(-1), ":zero": num(0)}
	if day != "" {
		cond += " AND #day = :day"
		names["#day"], vals[":day"] = "day", &types.AttributeValueMemberS{Value: day}
	}
	_, err := l.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &l.table, Key: itemKey(key),
		UpdateExpression: aws.String("ADD #c :minus"), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names, ExpressionAttributeValues: vals,
	})
	var cf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &cf) {
		return fmt.Errorf("give back one of %s on %s: %w", attr, key, err)
	}
	return nil
}

func attrStr(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
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
