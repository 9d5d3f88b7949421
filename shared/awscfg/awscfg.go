// Package awscfg loads the AWS SDK configuration once per process and builds the DynamoDB and SQS
// clients (and KMS's), pointed at local emulators when HOOKGATE_DYNAMODB_ENDPOINT, HOOKGATE_SQS_ENDPOINT
// or HOOKGATE_KMS_ENDPOINT is set.
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
)

// Endpoint overrides. They are optional and local-only: on AWS they are unset and the SDK resolves
// the regional endpoints itself.
const (
	EnvDynamoEndpoint = "HOOKGATE_DYNAMODB_ENDPOINT"
	EnvSQSEndpoint    = "HOOKGATE_SQS_ENDPOINT"
	EnvKMSEndpoint    = "HOOKGATE_KMS_ENDPOINT"
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
	// A BuildableClient, not a plain http.Client: with AWS_CA_BUNDLE set the SDK panics on the latter.
	httpClient := awshttp.NewBuildableClient().
		WithTimeout(10 * time.Second).
		WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConnsPerHost = 64
			t.IdleConnTimeout = 90 * time.Second
		})
	c.AWS = aws.Config{
		Region:      region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN"))),
		HTTPClient:  httpClient,
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 3 })
		},
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

// KMS builds a KMS client.
func (c Config) KMS() *kms.Client {
	return kms.NewFromConfig(c.AWS, func(o *kms.Options) {
		if c.KMSEndpoint != "" {
			o.BaseEndpoint = aws.String(c.KMSEndpoint)
		}
	})
}
