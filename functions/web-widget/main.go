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
	"github.com/hookgate/hookgate/shared/limit"
	"github.com/hookgate/hookgate/shared/limit/limitenv"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/widget"
)

func main() { fnmain.Start(newHandler) }

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), error) {
	env := envcfg.New(getenv)
	queueURL := env.Required("HOOKGATE_INBOUND_QUEUE_URL")
	table := env.Required("HOOKGATE_TABLE") // the rate limits' buckets and the run budget's counters
	limits := widget.Limits{
		Sessions:        limit.PerMinute(env.Int("HOOKGATE_WIDGET_SESSIONS_PER_MINUTE", 600, 0, 1_000_000)),
		Messages:        limit.PerMinute(env.Int("HOOKGATE_WIDGET_MESSAGES_PER_MINUTE", 300, 0, 1_000_000)),
		SessionMessages: limit.PerMinute(env.Int("HOOKGATE_WIDGET_SESSION_MESSAGES_PER_MINUTE", 10, 0, 10_000)),
		MaxLifetime:     time.Duration(env.Int("HOOKGATE_WIDGET_SESSION_MAX_HOURS", 24, 1, 720)) * time.Hour,
	}
	gateCfg := limitenv.Gate(env)
	cfg, err := widget.ConfigFromEnv(env)
	if err != nil {
		return nil, err
	}
	aws, err := awscfg.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	log.Info("widget", "config", cfg.String())
	lim := limit.New(aws.DynamoDB(), table, time.Now)
	h := widget.New(cfg, queue.NewSender(aws.SQS(), queueURL), log, time.Now)
	return h.WithLimits(limits, lim, limit.NewGate(lim, gateCfg, time.Now)).WithMetrics(metrics.FromEnv(getenv)).Handle, nil
}
