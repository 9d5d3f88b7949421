// Command management is the Lambda behind the management API: API keys (/v1/api-keys), outbound
// webhook subscriptions and their deliveries (/v1/webhooks, /v1/deliveries), inbound sources
// (/v1/sources), role routes (/v1/routes), channel binding status (/v1/bindings) and the replay
// of FanoutDLQ (/v1/admin/fanout-dlq/replay).
package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/envcfg"
	"github.com/hookgate/hookgate/shared/fanout"
	"github.com/hookgate/hookgate/shared/fanoutdlq"
	"github.com/hookgate/hookgate/shared/fnmain"
	"github.com/hookgate/hookgate/shared/loop"
	"github.com/hookgate/hookgate/shared/manage"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/seal"
	"github.com/hookgate/hookgate/shared/store"
)

func main() { fnmain.Start(newHandler) }

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), error) {
	env := envcfg.New(getenv)
	table := env.Required("HOOKGATE_TABLE")
	keyID := env.Required("HOOKGATE_KMS_KEY_ID") // seals the secrets it stores (kms:GenerateDataKey only)
	queueURL := env.Required("HOOKGATE_DELIVERY_QUEUE_URL")
	// The FanoutDLQ replay's fan-out sends FIFO subscriptions' deliveries there, as the fan-out does.
	orderedURL := env.Required("HOOKGATE_DELIVERY_FIFO_QUEUE_URL")
	dlqURL := env.Required("HOOKGATE_FANOUT_DLQ_URL")
	streamARN := env.Required("HOOKGATE_TABLE_STREAM_ARN")
	cfg := manage.Config{
		DefaultWorkspace: env.Required("HOOKGATE_DEFAULT_WORKSPACE"),
		AdminKey:         env.Secret("HOOKGATE_ADMIN_API_KEY", manage.MinAdminKeyLen),
		AdminKeyPrevious: env.OptionalSecret("HOOKGATE_ADMIN_API_KEY_PREVIOUS", manage.MinAdminKeyLen),
		AllowHTTPURLs:    env.Bool("HOOKGATE_ALLOW_HTTP_URLS", false),
	}
	own, herr := loop.ParseHosts(getenv("HOOKGATE_API_HOSTS"))
	cfg.OwnHosts = own
	if err := errors.Join(env.Err(), herr); err != nil {
		return nil, err
	}
	aws, err := awscfg.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	st := store.New(aws.DynamoDB(), table, time.Now).WithSealer(seal.New(aws.KMS(), keyID, time.Now))
	q := queue.NewDeliverySender(aws.SQS(), queueURL)
	// The FanoutDLQ replay runs the fan-out's own handler on the records it reads back from the stream.
	fan := fanout.New(st, queue.NewDeliverySender(aws.SQS(), queueURL).WithOrdered(orderedURL), manage.MatchEvent, log)
	streams := dynamodbstreams.NewFromConfig(aws.AWS, func(o *dynamodbstreams.Options) {
		if aws.DynamoEndpoint != "" {
			o.BaseEndpoint = &aws.DynamoEndpoint
		}
	})
	replay := fanoutdlq.New(aws.SQS(), dlqURL, streams, streamARN, fan, log).WithEventLog(st)
	return manage.New(cfg, st, time.Now, log).WithDeliveries(st, q).WithSources(st).WithAgents(st).WithFanoutReplay(replay).Handle, nil
}
