// Command web-stream is the Lambda behind GET /v1/web/stream: one widget session's thread as
// Server-Sent Events, one bounded window per invocation.
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/envcfg"
	"github.com/hookgate/hookgate/shared/eventstream"
	"github.com/hookgate/hookgate/shared/fnmain"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/widget"
)

func main() { fnmain.Start(newHandler) }

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), error) {
	env := envcfg.New(getenv)
	table := env.Required("HOOKGATE_TABLE")
	window := eventstream.Defaults()
	window.Window = time.Duration(env.Int("HOOKGATE_STREAM_WINDOW_SECONDS", 20, 1, 25)) * time.Second
	window.Poll = time.Duration(env.Int("HOOKGATE_STREAM_POLL_MS", 200, 50, 5000)) * time.Millisecond
	cfg, err := widget.ConfigFromEnv(env)
	if err != nil {
		return nil, err
	}
	aws, err := awscfg.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	st := store.New(aws.DynamoDB(), table, time.Now)
	return widget.NewStream(cfg, window, st, time.Now, log).Handle, nil
}
