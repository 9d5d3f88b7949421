// Command testfn is the bootstrap the lambdart tests run: the request's op picks a behaviour.
// TESTFN_FAIL_INIT makes it print that text and exit before lambda.Start; TESTFN_SIGTERM
// enables lambda.WithEnableSIGTERM with a callback that prints and exits.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type request struct {
	Op    string   `json:"op"`
	Value string   `json:"value"`
	Ms    int      `json:"ms"`
	Names []string `json:"names"`
}

type response struct {
	Value      string             `json:"value"`
	RequestID  string             `json:"requestId"`
	ARN        string             `json:"arn"`
	DeadlineMs int64              `json:"deadlineMs"` // time left at the start
	PID        int                `json:"pid"`
	Start      int64              `json:"start"`
	End        int64              `json:"end"`
	Env        map[string]*string `json:"env"`
}

// ValidationError is returned by op "error": its type name is the errorType.
type ValidationError struct{ Field string }

func (e *ValidationError) Error() string { return "invalid field " + e.Field }

func handle(ctx context.Context, req request) (response, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	deadline, _ := ctx.Deadline()
	res := response{
		PID: os.Getpid(), Start: time.Now().UnixNano(), RequestID: lc.AwsRequestID,
		ARN: lc.InvokedFunctionArn, DeadlineMs: time.Until(deadline).Milliseconds(),
	}
	switch req.Op {
	case "echo":
		fmt.Println("echo:", req.Value)
		res.Value = req.Value
	case "error":
		return res, &ValidationError{Field: req.Value}
	case "panic":
		panic(req.Value)
	case "hang":
		fmt.Printf("pid %d hangs\n", os.Getpid())
		time.Sleep(time.Duration(req.Ms) * time.Millisecond)
	case "sleep":
		time.Sleep(time.Duration(req.Ms) * time.Millisecond) // ignores ctx on purpose
	case "exit":
		fmt.Println("exiting")
		os.Exit(3)
	case "env":
		res.Env = map[string]*string{}
		for _, n := range req.Names {
			if v, ok := os.LookupEnv(n); ok {
				res.Env[n] = &v
			} else {
				res.Env[n] = nil
			}
		}
	case "big":
		res.Value = strings.Repeat("x", req.Ms)
	default:
		return res, fmt.Errorf("unknown op %q", req.Op)
	}
	res.End = time.Now().UnixNano()
	return res, nil
}

func main() {
	if msg := os.Getenv("TESTFN_FAIL_INIT"); msg != "" {
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(2)
	}
	var opts []lambda.Option
	if os.Getenv("TESTFN_SIGTERM") != "" {
		opts = append(opts, lambda.WithEnableSIGTERM(func() {
			fmt.Println("sigterm received")
			os.Exit(0)
		}))
	}
	lambda.StartWithOptions(handle, opts...)
}
