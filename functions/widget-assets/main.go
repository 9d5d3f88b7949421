// Command widget-assets is the Lambda behind GET /widget.js (the script a site embeds),
// GET /widget/demo (a page that embeds it) and GET /openapi.json (the API's OpenAPI document). It
// needs no permissions.
package main

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/fnmain/bare"
	"github.com/hookgate/hookgate/shared/widget/static"
)

// It reads none of the operator's secrets: bare, not fnmain (a smaller bootstrap).
func main() { bare.Start(newHandler) }

func newHandler(_ context.Context, _ func(string) string, log *slog.Logger) (func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), error) {
	return static.New(log).Handle, nil
}
