// Package opsecrets reads the operator's own secrets (the stack-level InboundSecret, AdapterSecret,
// AdminApiKey, WidgetSigningKey, OpenAIApiKey, TelegramBotToken and their *Previous rotation values)
// from SSM Parameter Store or Secrets Manager instead of the function's environment, as the
// template's SecretsSource parameter chooses. A function reads the secrets its environment declares
// (the template lists, per function, the variables it uses), once per cold start and again after
// RefreshEvery; their values never reach a log, an error or an event.
package opsecrets

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// Sources: the values of SecretsSource (HOOKGATE_SECRETS_SOURCE).
const (
	Environment    = "environment" // the NoEcho parameters, in the function's environment (the default)
	SSM            = "ssm"         // SSM Parameter Store, SecureString: <prefix><ParameterName>
	SecretsManager = "secretsmanager"
)

// Environment variables of the choice.
const (
	EnvSource = "HOOKGATE_SECRETS_SOURCE"
	EnvPrefix = "HOOKGATE_SECRETS_PREFIX"
)

// Secret is one operator secret: its environment variable, the template parameter (and name under
// the prefix) it comes from, and whether a function that declares it can do without it.
type Secret struct {
	Env      string
	Name     string
	Optional bool
	MinLen   int // a value read from the store must be at least this long (the template's MinLength)
}

// Secrets are the stack-level secrets a store can hold.
func Secrets() []Secret {
	return []Secret{
		{"HOOKGATE_INBOUND_SECRET", "InboundSecret", false, 16},
		{"HOOKGATE_INBOUND_SECRET_PREVIOUS", "InboundSecretPrevious", true, 16},
		{"HOOKGATE_ADAPTER_SECRET", "AdapterSecret", false, 16},
		{"HOOKGATE_ADMIN_API_KEY", "AdminApiKey", false, 16},
		{"HOOKGATE_ADMIN_API_KEY_PREVIOUS", "AdminApiKeyPrevious", true, 16},
		{"HOOKGATE_WIDGET_SIGNING_KEY", "WidgetSigningKey", false, 16},
		{"HOOKGATE_OPENAI_API_KEY", "OpenAIApiKey", true, 0},
		{"HOOKGATE_TELEGRAM_BOT_TOKEN", "TelegramBotToken", true, 0},
	}
}

// Fetch reads one secret by its full name; found is false for a name the store does not hold.
type Fetch func(ctx context.Context, name string) (value string, found bool, err error)

// SSMClient is the part of the SSM client FromSSM uses (ssm:GetParameter).
type SSMClient interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// SecretsManagerClient is the part of the Secrets Manager client FromSecretsManager uses.
type SecretsManagerClient interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// FromSSM fetches SecureString (or String) parameters, decrypted.
func FromSSM(c SSMClient) Fetch {
	return func(ctx context.Context, name string) (string, bool, error) {
		out, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
		var nf *ssmtypes.ParameterNotFound
		if errors.As(err, &nf) {
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		if out.Parameter == nil || out.Parameter.Value == nil {
			return "", false, nil
		}
		return *out.Parameter.Value, true, nil
	}
}

// FromSecretsManager fetches secrets' current string values.
func FromSecretsManager(c SecretsManagerClient) Fetch {
	return func(ctx context.Context, name string) (string, bool, error) {
		out, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
		var nf *smtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		if out.SecretString == nil {
			return "", false, nil
		}
		return *out.SecretString, true, nil
	}
}

// Config is the choice read from the environment.
type Config struct {
	Source string
	Prefix string
}

// ConfigFrom reads HOOKGATE_SECRETS_SOURCE (default environment) and HOOKGATE_SECRETS_PREFIX.
func ConfigFrom(getenv func(string) string) (Config, error) {
	c := Config{Source: getenv(EnvSource), Prefix: getenv(EnvPrefix)}
	switch c.Source {
	case "", Environment:
		c.Source = Environment
		return c, nil
	case SSM, SecretsManager:
	default:
		return Config{}, fmt.Errorf("%s: %q is not environment, ssm or secretsmanager", EnvSource, c.Source)
	}
	if c.Prefix == "" || (c.Source == SSM && !strings.HasPrefix(c.Prefix, "/")) {
		return Config{}, fmt.Errorf("%s: a prefix is required with %s (an SSM one starts with /, such as /hookgate/prod/)", EnvPrefix, c.Source)
	}
	return c, nil
}

// Load reads every secret whose variable the environment declares (lookup, as os.LookupEnv),
// as <prefix><Name>. A required one the store lacks, or one that cannot be read, fails with an
// error naming it (never a value); an optional one the store lacks is "".
func Load(ctx context.Context, c Config, lookup func(string) (string, bool), fetch Fetch) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	for _, s := range Secrets() {
		if _, declared := lookup(s.Env); !declared {
			continue
		}
		name := c.Prefix + s.Name
		v, found, err := fetch(ctx, name)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %s %s (for %s) cannot be read: %w", EnvSource, c.Source, name, s.Env, err))
		case !found && !s.Optional:
			errs = append(errs, fmt.Errorf("%s: %s %s (for %s) does not exist", EnvSource, c.Source, name, s.Env))
		case found && len(v) < s.MinLen && !(s.Optional && v == ""):
			errs = append(errs, fmt.Errorf("%s: %s %s (for %s) is shorter than %d characters", EnvSource, c.Source, name, s.Env, s.MinLen))
		default:
			out[s.Env] = v
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// Overlay is getenv with the loaded secrets in place of the environment's values.
func Overlay(getenv func(string) string, secrets map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := secrets[k]; ok {
			return v
		}
		return getenv(k)
	}
}
