// Package fnmain is how every Hookgate function starts: a JSON slog logger that adds the Lambda
// request id, configuration built once per process, then the Lambda loop.
package fnmain

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/hookgate/hookgate/shared/trace"
)

// Start builds the handler from the environment and serves invocations. A configuration error is
// logged and ends the process, so Lambda reports an init failure instead of serving requests.
func Start[TIn, TOut any](build func(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, TIn) (TOut, error), error)) {
	// Every line logged with an invocation's context carries its trace_id, when it has one.
	log := slog.New(trace.LogHandler(lambdacontext.NewLogHandler()))
	h, err := build(context.Background(), os.Getenv, log)
	if err != nil {
		log.Error("configuration", "err", err)
		os.Exit(1)
	}
	lambda.StartHandlerFunc(h)
}
