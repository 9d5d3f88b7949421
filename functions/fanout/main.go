// Command fanout is the Lambda on the table's DynamoDB stream: every event appended to a
// workspace's log becomes one delivery per matching subscription.
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/envcfg"
	"github.com/hookgate/hookgate/shared/fanout"
	"github.com/hookgate/hookgate/shared/fnmain"
	"github.com/hookgate/hookgate/shared/manage"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

func main() { fnmain.Start(newHandler) }

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error), error) {
	env := envcfg.New(getenv)
	table := env.Required("HOOKGATE_TABLE")
	queueURL := env.Required("HOOKGATE_DELIVERY_QUEUE_URL")
	// FIFO subscriptions' deliveries: one message group per subscription.
	orderedURL := env.Required("HOOKGATE_DELIVERY_FIFO_QUEUE_URL")
	if err := env.Err(); err != nil {
		return nil, err
	}
	aws, err := awscfg.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	h := fanout.New(store.New(aws.DynamoDB(), table, time.Now), queue.NewDeliverySender(aws.SQS(), queueURL).WithOrdered(orderedURL), manage.MatchEvent, log)
	// A small delivery to a parallel subscription is created by its first attempt's claim: its
	// message carries it, and the fan-out writes no item (the delivery function reads both kinds).
	return h.CreateOnClaim().WithMetrics(metrics.FromEnv(getenv), time.Now).Handle, nil
}
