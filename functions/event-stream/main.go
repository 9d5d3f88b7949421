// Command event-stream is the Lambda behind GET /v1/events/stream: the caller's workspace's event
// log as Server-Sent Events, one bounded window per invocation.
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
	"github.com/hookgate/hookgate/shared/manage"
	"github.com/hookgate/hookgate/shared/store"
)

func main() { fnmain.Start(newHandler) }

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), error) {
	env := envcfg.New(getenv)
	table := env.Required("HOOKGATE_TABLE")
	workspace := env.Required("HOOKGATE_DEFAULT_WORKSPACE")
	adminKey := env.Secret("HOOKGATE_ADMIN_API_KEY", manage.MinAdminKeyLen)
	previousAdminKey := env.OptionalSecret("HOOKGATE_ADMIN_API_KEY_PREVIOUS", manage.MinAdminKeyLen)
	window := eventstream.Defaults()
	window.Window = time.Duration(env.Int("HOOKGATE_STREAM_WINDOW_SECONDS", 20, 1, 25)) * time.Second
	window.Poll = time.Duration(env.Int("HOOKGATE_STREAM_POLL_MS", 200, 50, 5000)) * time.Millisecond
	if err := env.Err(); err != nil {
		return nil, err
	}
	aws, err := awscfg.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	st := store.New(aws.DynamoDB(), table, time.Now)
	return eventstream.NewEvents(window, manage.NewAuthenticator(workspace, adminKey, st, previousAdminKey), st, time.Now, log).Handle, nil
}
