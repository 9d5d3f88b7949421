// Command web-widget is the Lambda behind the widget's session and message routes
// (POST /v1/web/session, POST /v1/web/messages) and their CORS preflights.
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
	"github.com/hookgate/hookgate/shared/widget"
)

func main() { fnmain.Start(newHandler) }

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), error) {
	env := envcfg.New(getenv)
	queueURL := env.Required("HOOKGATE_INBOUND_QUEUE_URL")
	cfg, err := widget.ConfigFromEnv(env)
	if err != nil {
		return nil, err
	}
	aws, err := awscfg.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	log.Info("widget", "config", cfg.String())
	return widget.New(cfg, queue.NewSender(aws.SQS(), queueURL), log, time.Now).Handle, nil
}
