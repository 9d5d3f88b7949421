// Command inbound-webhook is the Lambda behind POST /v1/webhooks/generic/{workspace_id}: any JSON
// object from any SaaS, verified with the workspace's source, normalized, deduplicated and queued.
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
	return d.Webhook, nil
}
