// Command adapter is the Lambda behind the webhook adapter routes (/webhook/{name}/...).
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/adapter"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/envcfg"
	"github.com/hookgate/hookgate/shared/fnmain"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/verify"
)

func main() { fnmain.Start(newHandler) }

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), error) {
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
	return adapter.New(cfg, store.New(aws.DynamoDB(), table, time.Now), log).Handle, nil
}
