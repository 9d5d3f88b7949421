package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// RetryShards is the number of partitions the retry schedule is spread over, so that a bad day's
// retries do not all write one partition (1,000 writes/s each); a sweep reads every one.
const RetryShards = 16

// ScheduledDelivery is an entry of the retry schedule: attempt Attempt of series Series of a
// delivery is due at Due. The sweep queues it then, in a message of its own chain.
type ScheduledDelivery struct {
	WorkspaceID string
	DeliveryID  string
	Series      int
	Attempt     int
	Due         time.Time
	Trace       string // the traceparent the delivery carries, kept for the message the sweep sends
}

func retryShardPK(shard int) string { return fmt.Sprintf("RETRY#%02d", shard) }

// shard spreads deliveries over the schedule's partitions by id.
func (e ScheduledDelivery) shard() int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(e.WorkspaceID + "/" + e.DeliveryID))
	return int(h.Sum32() % RetryShards)
}

// item is the entry's table item: its sort key starts with the due time in milliseconds, zero
// padded, so a query up to now reads exactly what is due, oldest first.
func (e ScheduledDelivery) item() map[string]types.AttributeValue {
	it := key(retryShardPK(e.shard()), fmt.Sprintf("%013d#%s#%s#%d#%d", e.Due.UnixMilli(), e.WorkspaceID, e.DeliveryID, e.Series, e.Attempt))
	it["workspace_id"], it["delivery_id"] = s(e.WorkspaceID), s(e.DeliveryID)
	it["series"], it["attempt"], it["due"] = n(int64(e.Series)), n(int64(e.Attempt)), n(e.Due.UnixMilli())
	if len(e.Trace) == 55 { // a traceparent; the delivery function checks it again
		it["trace"] = s(e.Trace)
	}
	// A safety net only: the sweep deletes each entry once it is queued.
	it["ttl"] = n(e.Due.Add(DeliveryRetention).Unix())
	return it
}

// ScheduleDelivery puts an entry on the retry schedule. Putting it again changes nothing.
func (st *Store) ScheduleDelivery(ctx context.Context, e ScheduledDelivery) error {
	if _, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.table, Item: e.item()}); err != nil {
		return fmt.Errorf("schedule delivery %s: %w", e.DeliveryID, err)
	}
	return nil
}

// DueDeliveries returns entries due at or before now, at most limit of each shard, oldest first
// within a shard. more reports that some shard may hold further due entries.
func (st *Store) DueDeliveries(ctx context.Context, now time.Time, limit int) (due []ScheduledDelivery, more bool, err error) {
	upTo := fmt.Sprintf("%013d~", now.UnixMilli())
	for shard := range RetryShards {
		out, err := st.db.Query(ctx, &dynamodb.QueryInput{
			TableName:              &st.table,
			KeyConditionExpression: aws.String("pk = :pk AND sk <= :upto"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": s(retryShardPK(shard)), ":upto": s(upTo),
			},
			Limit:          aws.Int32(int32(limit)),
			ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return due, more, fmt.Errorf("read retry schedule shard %d: %w", shard, err)
		}
		for _, it := range out.Items {
			due = append(due, ScheduledDelivery{
				WorkspaceID: str(it, "workspace_id"), DeliveryID: str(it, "delivery_id"),
				Series: int(num(it, "series")), Attempt: int(num(it, "attempt")), Due: time.UnixMilli(num(it, "due")).UTC(),
				Trace: str(it, "trace"),
			})
		}
		more = more || len(out.LastEvaluatedKey) > 0
	}
	return due, more, nil
}

// Unschedule deletes an entry from the retry schedule.
func (st *Store) Unschedule(ctx context.Context, e ScheduledDelivery) error {
	it := e.item()
	if _, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &st.table, Key: key(str(it, "pk"), str(it, "sk"))}); err != nil {
		return fmt.Errorf("unschedule delivery %s: %w", e.DeliveryID, err)
	}
	return nil
}
