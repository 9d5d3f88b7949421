// Command inbound-generic is the Lambda behind POST /v1/inbound/generic: it verifies the sender and
// queues the message for the worker.
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/doors"
	"github.com/hookgate/hookgate/shared/envcfg"
	"github.com/hookgate/hookgate/shared/fnmain"
	"github.com/hookgate/hookgate/shared/limit"
	"github.com/hookgate/hookgate/shared/limit/limitenv"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/verify"
)

func main() { fnmain.Start(newHandler) }

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), error) {
	env := envcfg.New(getenv)
	queueURL := env.Required("HOOKGATE_INBOUND_QUEUE_URL")
	table := env.Required("HOOKGATE_TABLE") // the gate's buckets and counters
	limits := limitenv.Gate(env)
	cfg := doors.GenericConfig{
		Workspace:    env.Required("HOOKGATE_DEFAULT_WORKSPACE"),
		MaxBodyBytes: env.Int("HOOKGATE_MAX_BODY_BYTES", 1_000_000, 1024, 6_000_000),
		// The previous secret (InboundSecretPrevious) verifies too during a rotation's overlap.
		Secrets: verify.NewSecrets(env.Required("HOOKGATE_INBOUND_SECRET"), env.Optional("HOOKGATE_INBOUND_SECRET_PREVIOUS", "")),
		IDs:     doors.IDKeyFromEnv(env),
	}
	if err := env.Err(); err != nil {
		return nil, err
	}
	aws, err := awscfg.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	cfg.Gate = limit.NewGate(limit.New(aws.DynamoDB(), table, time.Now), limits, time.Now)
	return doors.NewGeneric(cfg, queue.NewSender(aws.SQS(), queueURL), log, time.Now).WithMetrics(metrics.FromEnv(getenv)).Handle, nil
}
