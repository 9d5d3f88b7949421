package store

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// An endpoint that fails now and then, with quiet windows between (its window item never idles
// long enough to expire), must not grow its circuit window item by the buckets each quiet gap
// leaves behind: the item would grow toward DynamoDB's 400 KB limit, each count costing more.
func TestCircuitWindowDoesNotGrowWithGaps(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	sub, err := st.CreateSubscription(ctx, newSub("ws", "https://example.com/h", "whsec_one"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Minute)
	for range 40 {
		for range 2 { // a failure, and one a window later
			if _, _, err := st.CountOutcome(ctx, "ws", sub.ID, true, now, time.Minute); err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Minute)
		}
		now = now.Add(5 * time.Minute) // quiet
	}
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: circuitKey("ws", sub.ID)})
	if err != nil {
		t.Fatal(err)
	}
	// pk, sk, ttl and the current and previous buckets' two counts.
	if n := len(out.Item); n > 7 {
		t.Fatalf("the window item holds %d attributes after 40 gaps", n)
	}
}
