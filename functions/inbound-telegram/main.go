// Command inbound-telegram is the Lambda behind POST /v1/inbound/telegram: native Telegram
// updates, proven by the secret token, deduplicated by update_id and queued.
package main

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/doors"
	"github.com/hookgate/hookgate/shared/fnmain"
)

func main() { fnmain.Start(newHandler) }

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), error) {
	d, err := doors.FromEnv(ctx, getenv, log)
	if err != nil {
		return nil, err
	}
	return d.Telegram, nil
}
