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

// A subscription's circuit breaker: its state lives on the subscription's item (read with it,
// written only when it changes), the outcomes of its recent attempts in a window item of its own
// (pk WS#<ws>#SUB#<id>#CIRCUIT), counted in buckets of one window each: the rolling count is the
// current bucket plus the previous one weighted by how much of it is still inside the window.

func circuitKey(ws, id string) map[string]types.AttributeValue {
	return key("WS#"+ws+"#SUB#"+id+"#CIRCUIT", "WINDOW")
}

// CountOutcome counts one attempt's outcome in the subscription's rolling window of length window
// and returns the window's attempts and failures as of now.
func (st *Store) CountOutcome(ctx context.Context, ws, id string, failed bool, now time.Time, window time.Duration) (attempts, failures float64, err error) {
	w := window.Milliseconds()
	b := now.UnixMilli() / w
	bucket := func(p string, i int64) string { return p + strconv.FormatInt(i, 10) }
	names := map[string]string{
		"#a": bucket("a", b), "#a2": bucket("a", b-2), "#f2": bucket("f", b-2), "#ttl": "ttl",
	}
	upd := "ADD #a :one"
	if failed {
		upd += ", #f :one"
		names["#f"] = bucket("f", b)
	}
	out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: circuitKey(ws, id),
		UpdateExpression:         aws.String(upd + " SET #ttl = :ttl REMOVE #a2, #f2"),
		ExpressionAttributeNames: names,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one": n(1), ":ttl": n(now.Add(2*window + 24*time.Hour).Unix()),
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("count an outcome of subscription %s: %w", id, err)
	}
	it := out.Attributes
	st.dropStaleBuckets(ctx, ws, id, it, b)
	prev := 1 - float64(now.UnixMilli()-b*w)/float64(w)
	attempts = float64(num(it, bucket("a", b))) + prev*float64(num(it, bucket("a", b-1)))
	failures = float64(num(it, bucket("f", b))) + prev*float64(num(it, bucket("f", b-1)))
	return attempts, failures, nil
}

// dropStaleBuckets removes the buckets older than the previous one that a count left behind (a
// count removes only the bucket two before its own: after a quiet gap, older ones stay), so the
// window item keeps its few attributes however the endpoint's failures are spread. Best effort: a
// later count removes what this one could not.
func (st *Store) dropStaleBuckets(ctx context.Context, ws, id string, it map[string]types.AttributeValue, b int64) {
	var names []string
	for name := range it {
		if len(name) < 2 || (name[0] != 'a' && name[0] != 'f') {
			continue
		}
		if i, err := strconv.ParseInt(name[1:], 10, 64); err == nil && i < b-1 {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return
	}
	expr, attr := "REMOVE ", map[string]string{}
	for i, name := range names {
		if i > 0 {
			expr += ", "
		}
		ref := "#s" + strconv.Itoa(i)
		expr += ref
		attr[ref] = name
	}
	_, _ = st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: circuitKey(ws, id),
		UpdateExpression: aws.String(expr), ExpressionAttributeNames: attr,
		ConditionExpression: aws.String("attribute_exists(pk)"),
	})
}

// WatchCircuit makes the subscription's successes count until until (a window after a failure).
func (st *Store) WatchCircuit(ctx context.Context, ws, id string, until time.Time) error {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: subKey(ws, id),
		UpdateExpression:          aws.String("SET circuit_watch_until = :u"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":u": n(until.UnixMilli())},
	})
	var cf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &cf) {
		return fmt.Errorf("watch circuit of subscription %s: %w", id, err)
	}
	return nil
}

// OpenCircuit opens the closed circuit of an active subscription until probeAt. It returns the
// circuit as it now is, and whether this call opened it.
func (st *Store) OpenCircuit(ctx context.Context, ws, id string, now, probeAt time.Time) (Circuit, bool, error) {
	out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: subKey(ws, id),
		UpdateExpression:         aws.String("SET circuit = :open, circuit_until = :until, circuit_since = :now ADD circuit_seq :one"),
		ConditionExpression:      aws.String("attribute_exists(pk) AND attribute_not_exists(circuit) AND #st = :active"),
		ExpressionAttributeNames: map[string]string{"#st": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":open": s(CircuitOpen), ":until": n(probeAt.UnixMilli()), ":now": n(now.UnixMilli()), ":one": n(1), ":active": s(SubscriptionActive),
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	return st.circuitChange(out, err, id, "open")
}

// ProbeCircuit lets the caller send the one probe of an open circuit whose cool-down is over (or
// whose last probe's lease ran out): the circuit is half-open until now+lease. It reports false
// when the circuit is closed, cooling down, or another caller has the probe.
func (st *Store) ProbeCircuit(ctx context.Context, ws, id string, now time.Time, lease time.Duration) (bool, error) {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: subKey(ws, id),
		UpdateExpression:    aws.String("SET circuit = :half, circuit_until = :until"),
		ConditionExpression: aws.String("(circuit = :open OR circuit = :half) AND circuit_until <= :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":half": s(CircuitHalfOpen), ":open": s(CircuitOpen), ":until": n(now.Add(lease).UnixMilli()), ":now": n(now.UnixMilli()),
		},
	})
	var cf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &cf):
		return false, nil
	}
	return false, fmt.Errorf("probe circuit of subscription %s: %w", id, err)
}

// CloseCircuit closes an open or half-open circuit and forgets the window's outcomes. It returns
// the circuit as it was, and whether this call closed it.
func (st *Store) CloseCircuit(ctx context.Context, ws, id string) (Circuit, bool, error) {
	out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: subKey(ws, id),
		UpdateExpression:                    aws.String("REMOVE circuit, circuit_until, circuit_since, circuit_watch_until"),
		ConditionExpression:                 aws.String("attribute_exists(circuit)"),
		ReturnValues:                        types.ReturnValueAllOld,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	c, closed, err := st.circuitChange(out, err, id, "close")
	if err == nil && closed {
		if _, derr := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &st.table, Key: circuitKey(ws, id)}); derr != nil {
			return c, closed, fmt.Errorf("reset circuit window of subscription %s: %w", id, derr)
		}
	}
	return c, closed, err
}

// ReopenCircuit opens a half-open circuit again (its probe failed) until probeAt.
func (st *Store) ReopenCircuit(ctx context.Context, ws, id string, probeAt time.Time) error {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: subKey(ws, id),
		UpdateExpression:          aws.String("SET circuit = :open, circuit_until = :until"),
		ConditionExpression:       aws.String("circuit = :half"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":open": s(CircuitOpen), ":half": s(CircuitHalfOpen), ":until": n(probeAt.UnixMilli())},
	})
	var cf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &cf) {
		return fmt.Errorf("reopen circuit of subscription %s: %w", id, err)
	}
	return nil
}

// circuitChange reads the outcome of a conditional update of a subscription's circuit.
func (st *Store) circuitChange(out *dynamodb.UpdateItemOutput, err error, id, op string) (Circuit, bool, error) {
	var sub Subscription
	if err == nil {
		decodeLimits(out.Attributes, &sub)
		return sub.Circuit, true, nil
	}
	var cf *types.ConditionalCheckFailedException
	if !errors.As(err, &cf) {
		return Circuit{}, false, fmt.Errorf("%s circuit of subscription %s: %w", op, id, err)
	}
	if len(cf.Item) == 0 {
		return Circuit{}, false, subNotFound()
	}
	decodeLimits(cf.Item, &sub)
	return sub.Circuit, false, nil
}
