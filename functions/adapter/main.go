// Command adapter is the Lambda behind the webhook adapter routes (/webhook/{name}/...).
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/hookgate/hookgate/shared/adapter"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/envcfg"
	"github.com/hookgate/hookgate/shared/store"
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

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (*adapter.Handler, error) {
	env := envcfg.New(getenv)
	table := env.Required("HOOKGATE_TABLE")
	cfg := adapter.Config{
		Names:     env.List("HOOKGATE_ADAPTER_NAMES", "default"),
		Workspace: env.Required("HOOKGATE_DEFAULT_WORKSPACE"),
		Secrets:   verify.NewSecrets(env.Required("HOOKGATE_ADAPTER_SECRET")),
	}
	if err := env.Err(); err != nil {
		return nil, err
	}
	aws, err := awscfg.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	return adapter.New(cfg, store.New(aws.DynamoDB(), table, time.Now), log), nil
}
