// Command inbound-generic is the Lambda behind POST /v1/inbound/generic: it verifies the sender and
// queues the message for the worker.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/envcfg"
	"github.com/hookgate/hookgate/shared/inbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/verify"
)

func main() {
	log := slog.New(lambdacontext.NewLogHandler())
	h, err := newHandler(context.Background(), os.Getenv, log)
	if err != nil {
		log.Error("configuration", "err", err)
		os.Exit(1)
	}
	lambda.StartHandlerFunc(h.Handle)
}

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (*inbound.Handler, error) {
	env := envcfg.New(getenv)
	queueURL := env.Required("HOOKGATE_INBOUND_QUEUE_URL")
	cfg := inbound.Config{
		Workspace:    env.Required("HOOKGATE_DEFAULT_WORKSPACE"),
		MaxBodyBytes: env.Int("HOOKGATE_MAX_BODY_BYTES", 1_000_000, 1024, 6_000_000),
		Secrets:      verify.NewSecrets(env.Required("HOOKGATE_INBOUND_SECRET")),
	}
	if err := env.Err(); err != nil {
		return nil, err
	}
	aws, err := awscfg.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	return inbound.New(cfg, queue.NewSender(aws.SQS(), queueURL), log, time.Now), nil
}
