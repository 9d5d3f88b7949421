// Command worker is the Lambda on the inbound queue: it turns each message into a thread, a run and
// events, and calls the workspace's agent.
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/agent"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/envcfg"
	"github.com/hookgate/hookgate/shared/fnmain"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/worker"
)

func main() { fnmain.Start(newHandler) }

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, events.SQSEvent) (events.SQSEventResponse, error), error) {
	env := envcfg.New(getenv)
	table := env.Required("HOOKGATE_TABLE")
	agentName := env.Optional("HOOKGATE_AGENT", "echo")
	if err := env.Err(); err != nil {
		return nil, err
	}
	a, err := agent.New(agentName)
	if err != nil {
		return nil, err
	}
	aws, err := awscfg.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	st := store.New(aws.DynamoDB(), table, time.Now)
	return worker.New(st, store.NewLogWriter(st), a, log).Handle, nil
}
