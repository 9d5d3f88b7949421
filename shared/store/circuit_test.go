package store

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// The circuit's state lives on the subscription: opened once (a second opening changes nothing),
// probed by one caller only after the cool-down, closed by the probe's success with the window's
// counts forgotten; the rolling window counts each outcome.
func TestCircuitLifecycle(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	sub, err := st.CreateSubscription(ctx, newSub("ws", "https://example.com/h", "whsec_one"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Millisecond)
	for i := range 10 {
		a, f, err := st.CountOutcome(ctx, "ws", sub.ID, i%5 != 0, now, time.Minute)
		if err != nil || a < float64(i+1)-0.01 || f > a {
			t.Fatalf("count %d: %v %v %v", i, a, f, err)
		}
	}
	a, f, _ := st.CountOutcome(ctx, "ws", sub.ID, true, now, time.Minute)
	if a < 11 || f < 9 {
		t.Fatalf("window %v attempts, %v failures", a, f)
	}
	c, opened, err := st.OpenCircuit(ctx, "ws", sub.ID, now, now.Add(time.Minute))
	if err != nil || !opened || c.State != CircuitOpen || c.Seq != 1 || !c.Until.Equal(now.Add(time.Minute)) {
		t.Fatalf("open: %+v %v %v", c, opened, err)
	}
	if c, opened, err := st.OpenCircuit(ctx, "ws", sub.ID, now, now.Add(time.Hour)); err != nil || opened || c.Seq != 1 {
		t.Fatalf("open again: %+v %v %v", c, opened, err)
	}
	got, _ := st.GetSubscription(ctx, "ws", sub.ID)
	if got.Circuit.State != CircuitOpen || !got.Circuit.Since.Equal(now) {
		t.Fatalf("read %+v", got.Circuit)
	}
	if ok, err := st.ProbeCircuit(ctx, "ws", sub.ID, now.Add(30*time.Second), time.Minute); err != nil || ok {
		t.Fatalf("probe during the cool-down: %v %v", ok, err)
	}
	if ok, err := st.ProbeCircuit(ctx, "ws", sub.ID, now.Add(time.Minute), time.Minute); err != nil || !ok {
		t.Fatalf("probe: %v %v", ok, err)
	}
	if ok, _ := st.ProbeCircuit(ctx, "ws", sub.ID, now.Add(time.Minute), time.Minute); ok {
		t.Fatal("two probes at once")
	}
	if err := st.ReopenCircuit(ctx, "ws", sub.ID, now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ok, _ := st.ProbeCircuit(ctx, "ws", sub.ID, now.Add(2*time.Minute), time.Minute); !ok {
		t.Fatal("no probe after the second cool-down")
	}
	c, closed, err := st.CloseCircuit(ctx, "ws", sub.ID)
	if err != nil || !closed || c.Seq != 1 {
		t.Fatalf("close: %+v %v %v", c, closed, err)
	}
	if _, closed, _ := st.CloseCircuit(ctx, "ws", sub.ID); closed {
		t.Fatal("closed twice")
	}
	got, _ = st.GetSubscription(ctx, "ws", sub.ID)
	if got.Circuit.State != CircuitClosed || got.Circuit.Seq != 1 {
		t.Fatalf("after close %+v", got.Circuit)
	}
	if a, f, _ := st.CountOutcome(ctx, "ws", sub.ID, false, now, time.Minute); a != 1 || f != 0 {
		t.Fatalf("the window was not reset: %v attempts, %v failures", a, f)
	}
	if _, _, err := st.OpenCircuit(ctx, "ws", "sub_missing", now, now); err == nil {
		t.Fatal("opened the circuit of a missing subscription")
	}
}

// Limits are stored at creation, read back, patched and removed.
func TestSubscriptionLimits(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	in := newSub("ws", "https://example.com/h", "whsec_one")
	in.RateLimit, in.MaxInFlight = &RateLimit{PerSecond: 0.5, Burst: 2}, 3
	sub, err := st.CreateSubscription(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := st.GetSubscription(ctx, "ws", sub.ID)
	if got.RateLimit == nil || *got.RateLimit != (RateLimit{0.5, 2}) || got.MaxInFlight != 3 {
		t.Fatalf("read %+v %d", got.RateLimit, got.MaxInFlight)
	}
	zero := 0
	got, err = st.SetSubscriptionLimits(ctx, "ws", sub.ID, LimitsPatch{ClearRateLimit: true, MaxInFlight: &zero})
	if err != nil || got.RateLimit != nil || got.MaxInFlight != 0 || len(got.Secrets) != 1 {
		t.Fatalf("cleared %+v %v", got, err)
	}
	if _, err := st.SetSubscriptionLimits(ctx, "ws", "sub_missing", LimitsPatch{ClearRateLimit: true}); err == nil {
		t.Fatal("set the limits of a missing subscription")
	}
}

// The window item keeps only the buckets it reads: an endpoint that fails now and then, each time
// after a gap of more than a window, does not grow it without end (an item holds 400 KB at most).
func TestCircuitWindowForgetsOldBuckets(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Minute)
	for i := range 5 {
		if _, _, err := st.CountOutcome(ctx, "ws", "sub_gaps", true, now.Add(time.Duration(3*i)*time.Minute), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: circuitKey("ws", "sub_gaps"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var buckets []string
	for name := range out.Item {
		if _, ok := windowBucket(name); ok {
			buckets = append(buckets, name)
		}
	}
	if len(buckets) > 4 {
		t.Fatalf("the window item keeps %d buckets: %v", len(buckets), buckets)
	}
}
