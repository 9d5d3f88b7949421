package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A subscription's max_in_flight is a pool of that many slot items, as an adapter's maxInFlight
// is (see slots.go): an attempt holds one for its request, as a lease that expires by itself if
// its process dies, and frees it when the request is over.

// InFlightPool is the slot pool of a subscription.
func InFlightPool(ws, sub string) string { return "WS#" + ws + "#SUB#" + sub + "#SLOTS" }

// maxSlotTries bounds the free slots one TakeInFlight tries to take.
const maxSlotTries = 3

// TakeInFlight takes a free slot of the subscription's pool of size for holder (a delivery id),
// for lease. It returns the zero SlotRef when every slot is held.
func (st *Store) TakeInFlight(ctx context.Context, ws, sub string, size int, holder string, lease time.Duration) (SlotRef, error) {
	pool := InFlightPool(ws, sub)
	// A slot picked at random first: free more often than not, it costs one write and no read.
	if ref, taken, err := st.putSlot(ctx, pool, rand.IntN(size), holder, lease); err != nil || taken {
		return ref, err
	}
	free, err := st.FreeSlots(ctx, pool, size)
	if err != nil {
		return SlotRef{}, err
	}
	rand.Shuffle(len(free), func(i, j int) { free[i], free[j] = free[j], free[i] })
	for _, i := range free[:min(len(free), maxSlotTries)] {
		if ref, taken, err := st.putSlot(ctx, pool, i, holder, lease); err != nil || taken {
			return ref, err
		}
	}
	return SlotRef{}, nil
}

// putSlot takes slot i of pool for holder unless an unexpired lease holds it.
func (st *Store) putSlot(ctx context.Context, pool string, i int, holder string, lease time.Duration) (SlotRef, bool, error) {
	now := st.now()
	ref := Slot{Pool: pool, Index: i}.ref()
	item := key(ref.PK, ref.SK)
	item["holder"] = s(holder)
	item["expires_at"] = n(now.Add(lease).UnixMilli())
	item["ttl"] = n(now.Add(lease + 24*time.Hour).Unix())
	_, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &st.table, Item: item,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR expires_at < :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": n(now.UnixMilli())},
	})
	var cf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return ref, true, nil
	case errors.As(err, &cf):
		return SlotRef{}, false, nil
	}
	return SlotRef{}, false, fmt.Errorf("take a slot of %s: %w", pool, err)
}

// ReleaseInFlight frees a slot holder took, unless another holder has it since (its lease ran out).
func (st *Store) ReleaseInFlight(ctx context.Context, ref SlotRef, holder string) error {
	if ref.IsZero() {
		return nil
	}
	_, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &st.table, Key: key(ref.PK, ref.SK),
		ConditionExpression:       aws.String("holder = :h"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":h": s(holder)},
	})
	var cf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &cf) {
		return fmt.Errorf("release slot %s: %w", ref.SK, err)
	}
	return nil
}

// ReleaseClaim gives back the claim of attempt attempt without recording it: the attempt was not
// made (its subscription's limits or circuit deferred it) and may be claimed again at once.
func (st *Store) ReleaseClaim(ctx context.Context, ws, id string, attempt int) error {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: deliveryKey(ws, id),
		UpdateExpression:          aws.String("REMOVE lease_until"),
		ConditionExpression:       aws.String("#st = :pending AND attempts = :n"),
		ExpressionAttributeNames:  map[string]string{"#st": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pending": s(DeliveryPending), ":n": n(int64(attempt))},
	})
	var cf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &cf) {
		return fmt.Errorf("release claim of delivery %s: %w", id, err)
	}
	return nil
}
