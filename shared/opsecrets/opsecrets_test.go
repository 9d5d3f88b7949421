package opsecrets

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// fakeSSM and fakeSM stand in for the two SDK calls (there is no SSM or Secrets Manager emulator
// here): they hold values by full name and answer the SDK's not-found errors for the others.
type fakeSSM struct {
	values    map[string]string
	decrypted bool
	err       error
}

func (f *fakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	f.decrypted = aws.ToBool(in.WithDecryption)
	if f.err != nil {
		return nil, f.err
	}
	v, ok := f.values[aws.ToString(in.Name)]
	if !ok {
		return nil, &ssmtypes.ParameterNotFound{Message: aws.String("parameter not found")}
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Name: in.Name, Value: aws.String(v), Type: ssmtypes.ParameterTypeSecureString}}, nil
}

type fakeSM struct{ values map[string]string }

func (f *fakeSM) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	v, ok := f.values[aws.ToString(in.SecretId)]
	if !ok {
		return nil, &smtypes.ResourceNotFoundException{Message: aws.String("secret not found")}
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(v)}, nil
}

func declared(names ...string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		for _, n := range names {
			if n == k {
				return "", true
			}
		}
		return "", false
	}
}

func TestLoadReadsTheDeclaredSecrets(t *testing.T) {
	ctx := context.Background()
	const admin, prev = "admin-key-from-the-store-0123", "admin-key-previous-0123456"
	for name, fetch := range map[string]Fetch{
		"ssm":            FromSSM(&fakeSSM{values: map[string]string{"/hg/prod/AdminApiKey": admin, "/hg/prod/AdminApiKeyPrevious": prev, "/hg/prod/InboundSecret": "unused"}}),
		"secretsmanager": FromSecretsManager(&fakeSM{values: map[string]string{"/hg/prod/AdminApiKey": admin, "/hg/prod/AdminApiKeyPrevious": prev, "/hg/prod/InboundSecret": "unused"}}),
	} {
		got, err := Load(ctx, Config{Source: name, Prefix: "/hg/prod/"}, declared("HOOKGATE_ADMIN_API_KEY", "HOOKGATE_ADMIN_API_KEY_PREVIOUS", "HOOKGATE_OPENAI_API_KEY"), fetch)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := map[string]string{"HOOKGATE_ADMIN_API_KEY": admin, "HOOKGATE_ADMIN_API_KEY_PREVIOUS": prev, "HOOKGATE_OPENAI_API_KEY": ""}
		if len(got) != len(want) {
			t.Errorf("%s: read %d secrets, want %d (only the declared ones)", name, len(got), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s wrong", name, k)
			}
		}
		env := Overlay(func(k string) string {
			return map[string]string{"HOOKGATE_ADMIN_API_KEY": "placeholder", "HOOKGATE_TABLE": "t"}[k]
		}, got)
		if env("HOOKGATE_ADMIN_API_KEY") != admin || env("HOOKGATE_TABLE") != "t" {
			t.Errorf("%s: overlay", name)
		}
	}
	f := &fakeSSM{values: map[string]string{"/p/AdminApiKey": admin}}
	if _, err := Load(ctx, Config{Source: SSM, Prefix: "/p/"}, declared("HOOKGATE_ADMIN_API_KEY"), FromSSM(f)); err != nil || !f.decrypted {
		t.Errorf("SecureString read without decryption (%v)", err)
	}
}

// A required secret the store lacks, or one it cannot read, fails with an error naming the
// parameter and the variable, and holding no value.
func TestLoadNamesTheMissingSecret(t *testing.T) {
	ctx := context.Background()
	const inbound = "inbound-secret-in-the-store-0123"
	fetch := FromSSM(&fakeSSM{values: map[string]string{"/hg/InboundSecret": inbound}})
	_, err := Load(ctx, Config{Source: SSM, Prefix: "/hg/"}, declared("HOOKGATE_INBOUND_SECRET", "HOOKGATE_ADMIN_API_KEY", "HOOKGATE_WIDGET_SIGNING_KEY"), fetch)
	if err == nil {
		t.Fatal("missing secrets accepted")
	}
	for _, want := range []string{"/hg/AdminApiKey", "HOOKGATE_ADMIN_API_KEY", "/hg/WidgetSigningKey", "does not exist"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), inbound) {
		t.Errorf("error %q holds a secret", err)
	}
	// The template's MinLength checks only the placeholder: a short stored secret is refused here.
	_, err = Load(ctx, Config{Source: SSM, Prefix: "/hg/"}, declared("HOOKGATE_INBOUND_SECRET"), FromSSM(&fakeSSM{values: map[string]string{"/hg/InboundSecret": "short-7"}}))
	if err == nil || !strings.Contains(err.Error(), "shorter than 16") || strings.Contains(err.Error(), "short-7") {
		t.Errorf("short secret: %v", err)
	}
	denied := errors.New("AccessDeniedException: not authorized to perform ssm:GetParameter")
	_, err = Load(ctx, Config{Source: SSM, Prefix: "/hg/"}, declared("HOOKGATE_ADAPTER_SECRET"), FromSSM(&fakeSSM{err: denied}))
	if err == nil || !strings.Contains(err.Error(), "/hg/AdapterSecret") || !errors.Is(err, denied) {
		t.Errorf("unreadable secret: %v", err)
	}
}

func TestConfigFrom(t *testing.T) {
	for _, c := range []struct {
		source, prefix string
		ok             bool
	}{
		{"", "", true}, {"environment", "", true}, {"ssm", "/hookgate/prod/", true}, {"secretsmanager", "hookgate/prod/", true},
		{"ssm", "", false}, {"ssm", "hookgate/", false}, {"secretsmanager", "", false}, {"vault", "/x/", false},
	} {
		_, err := ConfigFrom(func(k string) string { return map[string]string{EnvSource: c.source, EnvPrefix: c.prefix}[k] })
		if (err == nil) != c.ok {
			t.Errorf("source %q prefix %q: %v", c.source, c.prefix, err)
		}
	}
}
