// Package awscfg loads the AWS SDK configuration once per process and builds the DynamoDB and SQS
// clients (and KMS's), pointed at local emulators when HOOKGATE_DYNAMODB_ENDPOINT, HOOKGATE_SQS_ENDPOINT
// or HOOKGATE_KMS_ENDPOINT is set. Every call fits inside the invocation that makes it: each attempt
// is bounded, retries are few and quick, and the whole call (retries included) ends Reserve before
// the context's deadline, so a stalled dependency is an error the handler answers (503), not a
// Lambda timeout.
package awscfg

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"
)

// Endpoint overrides. They are optional and local-only: on AWS they are unset and the SDK resolves
// the regional endpoints itself.
const (
	EnvDynamoEndpoint = "HOOKGATE_DYNAMODB_ENDPOINT"
	EnvSQSEndpoint    = "HOOKGATE_SQS_ENDPOINT"
	EnvKMSEndpoint    = "HOOKGATE_KMS_ENDPOINT"
)

// The budget of one SDK call. Table and queue calls take milliseconds; an attempt that has not
// answered in AttemptTimeout is stalled and is tried again, at most MaxAttempts times, waiting at
// most MaxBackoff between attempts. AttemptTimeout stays long: a write that DynamoDB applied but
// answered late would be sent again by the retry (a conditional put then reads as a conflict, an
// ADD counts twice), so only a connection that is truly stuck is retried. With a deadline on the
// context, the call also ends Reserve before it, leaving the handler time to answer: an inbound
// door (10 s) answers 503 after at most about 9 s however its queue behaves.
const (
	AttemptTimeout = 10 * time.Second
	MaxAttempts    = 3
	MaxBackoff     = 500 * time.Millisecond
	Reserve        = time.Second
)

// Config is the loaded SDK configuration plus the optional endpoint overrides.
type Config struct {
	AWS            aws.Config
	DynamoEndpoint string
	SQSEndpoint    string
	KMSEndpoint    string
}

// Load builds the SDK configuration from the environment Lambda provides (AWS_REGION and the
// function role's AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN). It deliberately
// does not use the SDK's config package: profiles, SSO and IMDS are never needed in a function, and
// leaving them out keeps each bootstrap about a third smaller. With an endpoint override and no
// credentials set, dummy credentials are used, as emulators accept any.
func Load(ctx context.Context, getenv func(string) string) (Config, error) {
	c := Config{DynamoEndpoint: getenv(EnvDynamoEndpoint), SQSEndpoint: getenv(EnvSQSEndpoint), KMSEndpoint: getenv(EnvKMSEndpoint)}
	local := c.DynamoEndpoint != "" || c.SQSEndpoint != "" || c.KMSEndpoint != ""
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	if region == "" && local {
		region = "us-east-1"
	}
	id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" && local {
		id, secret = "local", "local"
	}
	var errs []error
	if region == "" {
		errs = append(errs, errors.New("AWS_REGION is not set"))
	}
	if id == "" || secret == "" {
		errs = append(errs, errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("aws config: %w", err)
	}
	// The SDK adjusts only a BuildableClient to its defaults modes; wrapped in OwnBodies, this one
	// is used as built here (the legacy mode, which adjusts nothing, is what Hookgate runs in),
	// and AttemptTimeout bounds each attempt.
	httpClient := awshttp.NewBuildableClient().
		WithTimeout(AttemptTimeout).
		WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConnsPerHost = 64
			t.IdleConnTimeout = 90 * time.Second
		})
	c.AWS = aws.Config{
		Region:      region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN"))),
		HTTPClient:  OwnBodies(httpClient),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = MaxAttempts
				o.MaxBackoff = MaxBackoff
			})
		},
		APIOptions: []func(*middleware.Stack) error{withinDeadline(Reserve)},
	}
	_ = ctx
	return c, nil
}

// DynamoDB builds a DynamoDB client. Against a local endpoint response checksum validation is
// off: DynamoDB Local's checksums do not always match what the SDK expects.
func (c Config) DynamoDB() *dynamodb.Client {
	return dynamodb.NewFromConfig(c.AWS, func(o *dynamodb.Options) {
		if c.DynamoEndpoint != "" {
			o.BaseEndpoint = aws.String(c.DynamoEndpoint)
			o.DisableValidateResponseChecksum = true
		}
	})
}

// SQS builds an SQS client.
func (c Config) SQS() *sqs.Client {
	return sqs.NewFromConfig(c.AWS, func(o *sqs.Options) {
		if c.SQSEndpoint != "" {
			o.BaseEndpoint = aws.String(c.SQSEndpoint)
		}
	})
}

// withinDeadline ends every call, its retries included, reserve before its context's deadline (a
// Lambda invocation's context has one: the function's timeout). A context without a deadline is
// left as it is.
func withinDeadline(reserve time.Duration) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("HookgateWithinDeadline",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if deadline, ok := ctx.Deadline(); ok {
					var cancel context.CancelFunc
					ctx, cancel = context.WithDeadline(ctx, deadline.Add(-reserve))
					defer cancel()
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	}
}

// KMS builds a KMS client.
func (c Config) KMS() *kms.Client {
	return kms.NewFromConfig(c.AWS, func(o *kms.Options) {
		if c.KMSEndpoint != "" {
			o.BaseEndpoint = aws.String(c.KMSEndpoint)
		}
	})
}
