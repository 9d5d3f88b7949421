// Package bare starts a function that reads none of the operator's secrets (fnmain.Start is the
// one that can read them from SSM or Secrets Manager): the same logger and init failure, without
// linking the AWS SDK's clients into a bootstrap that needs none.
package bare

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/hookgate/hookgate/shared/trace"
)

// Logger is every function's logger: JSON lines with the Lambda request id, and the trace_id of
// each line logged with an invocation's context that has one.
func Logger() *slog.Logger {
	return slog.New(trace.LogHandler(lambdacontext.NewLogHandler()))
}

// Start builds the handler from the environment and serves invocations. A configuration error is
// logged and ends the process, so Lambda reports an init failure instead of serving requests.
func Start[TIn, TOut any](build func(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, TIn) (TOut, error), error)) {
	log := Logger()
	h, err := build(context.Background(), os.Getenv, log)
	Serve(h, err, log)
}

// Serve serves h, or logs err and ends the process.
func Serve[TIn, TOut any](h func(context.Context, TIn) (TOut, error), err error, log *slog.Logger) {
	if err != nil {
		log.Error("configuration", "err", err)
		os.Exit(1)
	}
	lambda.StartHandlerFunc(h)
}
