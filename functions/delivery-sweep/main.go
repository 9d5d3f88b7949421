// Command delivery-sweep is the Lambda the EventBridge schedule runs each minute: it queues the
// delivery retries that waited on the table's retry schedule and are due.
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/envcfg"
	"github.com/hookgate/hookgate/shared/fnmain"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/sweep"
)

func main() { fnmain.Start(newHandler) }

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, events.EventBridgeEvent) (struct{}, error), error) {
	env := envcfg.New(getenv)
	table := env.Required("HOOKGATE_TABLE")
	queueURL := env.Required("HOOKGATE_DELIVERY_QUEUE_URL")
	if err := env.Err(); err != nil {
		return nil, err
	}
	aws, err := awscfg.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	h := sweep.New(store.New(aws.DynamoDB(), table, time.Now), queue.NewDeliverySender(aws.SQS(), queueURL), log, time.Now)
	return func(ctx context.Context, ev events.EventBridgeEvent) (struct{}, error) {
		return struct{}{}, h.Handle(ctx, ev)
	}, nil
}
