// Command notfound is the Lambda on the HTTP API's $default route: every unknown route gets the
// same JSON error body as the rest of the API.
package main

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/apigw"
)

func main() {
	log := slog.New(lambdacontext.NewLogHandler())
	lambda.StartHandlerFunc(func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return apigw.Error(ctx, log, apierr.New(apierr.NotFound, "no route for %s %s", req.RequestContext.HTTP.Method, req.RawPath)), nil
	})
}
