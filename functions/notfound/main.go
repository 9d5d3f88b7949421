// Command notfound is the Lambda on the HTTP API's $default route: every unknown route gets the
// same JSON error body as the rest of the API.
package main

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/apigw"
	"github.com/hookgate/hookgate/shared/fnmain/bare"
)

// It reads none of the operator's secrets: bare, not fnmain (a smaller bootstrap).
func main() { bare.Start(newHandler) }

func newHandler(_ context.Context, _ func(string) string, log *slog.Logger) (func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), error) {
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return apigw.Error(ctx, log, apierr.New(apierr.NotFound, "no route for %s %s", req.RequestContext.HTTP.Method, req.RawPath)), nil
	}, nil
}
