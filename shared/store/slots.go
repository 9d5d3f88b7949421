package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// In-flight slots bound how many runs of one pool (a webhook adapter) are queued or running at
// once, across every process: a pool of size N is N items, and a run holds one from creation until
// it stops. A slot is a lease, not a counter: it expires by itself if the run's process dies, and
// the worker renews it when the run starts.

// Slot is a slot to take: index Index of pool Pool, for Lease.
type Slot struct {
	Pool  string
	Index int
	Lease time.Duration
}

// SlotRef names the slot item a run holds; zero when it holds none.
type SlotRef struct {
	PK, SK string
}

// IsZero reports whether the run holds no slot.
func (r SlotRef) IsZero() bool { return r.PK == "" }

func (sl Slot) ref() SlotRef { return SlotRef{PK: sl.Pool, SK: fmt.Sprintf("SLOT#%04d", sl.Index)} }

// SlotPool is the pool of a workspace's webhook adapter.
func SlotPool(ws, adapter string) string { return "WS#" + ws + "#ADP#" + adapter + "#SLOTS" }

// FreeSlots returns the indexes in [0, size) of pool that no unexpired lease holds.
func (st *Store) FreeSlots(ctx context.Context, pool string, size int) ([]int, error) {
	now := st.now().UnixMilli()
	held := make([]bool, size)
	in := &dynamodb.QueryInput{
		TableName:                 &st.table,
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(pool)},
		ConsistentRead:            aws.Bool(true),
	}
	for {
		out, err := st.db.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("read slots of %s: %w", pool, err)
		}
		for _, it := range out.Items {
			i, err := strconv.Atoi(strings.TrimPrefix(str(it, "sk"), "SLOT#"))
			if err == nil && i >= 0 && i < size && num(it, "expires_at") >= now {
				held[i] = true
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	var free []int
	for i, h := range held {
		if !h {
			free = append(free, i)
		}
	}
	return free, nil
}

// RenewSlot extends the lease of the slot the run holds, if it still holds it.
func (st *Store) RenewSlot(ctx context.Context, r Run, lease time.Duration) error {
	if r.Slot.IsZero() {
		return nil
	}
	now := st.now()
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: key(r.Slot.PK, r.Slot.SK),
		UpdateExpression:         aws.String("SET expires_at = :exp, #ttl = :ttl"),
		ConditionExpression:      aws.String("run_id = :run"),
		ExpressionAttributeNames: map[string]string{"#ttl": "ttl"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":exp": n(now.Add(lease).UnixMilli()), ":ttl": n(now.Add(lease + 24*time.Hour).Unix()), ":run": s(r.ID),
		},
	})
	var cf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &cf) {
		return fmt.Errorf("renew slot of run %s: %w", r.ID, err)
	}
	return nil
}

// ReleaseSlot frees the slot the run holds, unless another run has taken it since (its lease ran out).
func (st *Store) ReleaseSlot(ctx context.Context, r Run) error {
	if r.Slot.IsZero() {
		return nil
	}
	_, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &st.table, Key: key(r.Slot.PK, r.Slot.SK),
		ConditionExpression:       aws.String("run_id = :run"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":run": s(r.ID)},
	})
	var cf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &cf) {
		return fmt.Errorf("release slot of run %s: %w", r.ID, err)
	}
	return nil
}
