package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// EventsBetween returns up to limit events of ws appended from `from` to `to`, both included, and
// whether the window holds more: each shard's in cursor order, the shards' merged by created_at.
// Each shard is keyed by cursor and append times grow with cursors, so the first cursor of the
// window is found by a binary search (one read per step, about 30 for a billion events) and the
// shard is read on from there: the read is bounded by the window, not by the log. It only reads
// (the FanoutDLQ replay rebuilds a batch the stream no longer holds). Cursors whose items expired
// (RetentionDays) count as older than the window.
func (st *Store) EventsBetween(ctx context.Context, ws string, from, to time.Time, limit int) ([]Event, bool, error) {
	head, err := st.LogHead(ctx, ws)
	if err != nil {
		return nil, false, err
	}
	parts := make([][]Event, len(head))
	mores := make([]bool, len(head))
	if err := each(len(head), func(sh int) error {
		var err error
		parts[sh], mores[sh], err = st.shardBetween(ctx, ws, sh, head[sh], from, to, limit)
		return err
	}); err != nil {
		return nil, false, err
	}
	// Each shard's events stay in cursor order (its stream order: a thread's order); the shards'
	// are merged by their heads' created_at.
	var evs []Event
	more := false
	for sh := range parts {
		more = more || mores[sh]
	}
	for len(evs) < limit {
		next := -1
		for sh, p := range parts {
			if len(p) > 0 && (next < 0 || p[0].CreatedAt.Before(parts[next][0].CreatedAt)) {
				next = sh
			}
		}
		if next < 0 {
			return evs, more, nil
		}
		evs, parts[next] = append(evs, parts[next][0]), parts[next][1:]
	}
	for _, p := range parts {
		more = more || len(p) > 0
	}
	return evs, more, nil
}

// shardBetween is EventsBetween for one shard whose last reserved cursor is last.
func (st *Store) shardBetween(ctx context.Context, ws string, shard int, last int64, from, to time.Time, limit int) ([]Event, bool, error) {
	if last == 0 {
		return nil, false, nil
	}
	pk := EventPK(ws, shard)
	lo, hi := int64(1), last+1 // the first cursor appended at or after from is in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo)/2
		// The log has holes (a cursor reserved and never written, an item expired): each step
		// reads the first item at or after mid, not mid itself, so a hole is never taken for an
		// event older than the window.
		out, err := st.db.Query(ctx, &dynamodb.QueryInput{
			TableName:              &st.table,
			KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :mid AND :hi"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": s(pk), ":mid": s(eventSK(mid)), ":hi": s(eventSK(hi)),
			},
			ProjectionExpression: aws.String("sk, created_at"), Limit: aws.Int32(1), ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return nil, false, fmt.Errorf("read event %d of %s: %w", mid, ws, err)
		}
		if len(out.Items) == 0 {
			hi = mid // nothing in [mid, hi]: no cursor from mid on is older than the window
			continue
		}
		c, err := strconv.ParseInt(str(out.Items[0], "sk"), 10, 64)
		if err != nil {
			return nil, false, fmt.Errorf("read event %d of %s: bad cursor %q", mid, ws, str(out.Items[0], "sk"))
		}
		if tm(out.Items[0], "created_at").Before(from) {
			lo = c + 1
		} else {
			hi = mid // cursors mid … c-1 are holes: the answer is at or before c
		}
	}
	var evs []Event
	in := &dynamodb.QueryInput{
		TableName:              &st.table,
		KeyConditionExpression: aws.String("pk = :pk AND sk >= :first"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": s(pk), ":first": s(eventSK(lo)),
		},
		Limit:          aws.Int32(int32(min(limit+1, 1000))),
		ConsistentRead: aws.Bool(true),
	}
	for {
		out, err := st.db.Query(ctx, in)
		if err != nil {
			return nil, false, fmt.Errorf("list events of %s from %d: %w", ws, lo, err)
		}
		for _, it := range out.Items {
			e, err := decodeEvent(ws, it)
			if err != nil {
				return nil, false, err
			}
			if e.CreatedAt.After(to) {
				return evs, false, nil
			}
			if len(evs) == limit {
				return evs, true, nil
			}
			e.Shard = shard
			evs = append(evs, e)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return evs, false, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
