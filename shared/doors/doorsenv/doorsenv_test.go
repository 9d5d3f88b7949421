package doorsenv

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/doors"
)

func TestFromEnv(t *testing.T) {
	valid := map[string]string{
		"HOOKGATE_TABLE":             "hookgate-Table",
		"HOOKGATE_INBOUND_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/000000000000/InboundQueue.fifo",
		"HOOKGATE_DEFAULT_WORKSPACE": "default",
		"HOOKGATE_ID_DERIVATION_KEY": "test-id-derivation-key",
		"HOOKGATE_KMS_KEY_ID":        "0c5a1f3e-7b2d-4e8a-9c61-5d0f2b7a4e19",
		// An emulator endpoint: the SDK configuration loads without AWS credentials.
		"HOOKGATE_DYNAMODB_ENDPOINT": "http://127.0.0.1:8000",
	}
	with := func(changes map[string]string) func(string) string {
		env := map[string]string{}
		for k, v := range valid {
			env[k] = v
		}
		for k, v := range changes {
			env[k] = v
		}
		return func(k string) string { return env[k] }
	}
	log := slog.New(slog.DiscardHandler)

	errCases := []struct {
		name string
		env  map[string]string
		want []string // every problem the error must name
	}{
		{"nothing set", map[string]string{"HOOKGATE_TABLE": "", "HOOKGATE_INBOUND_QUEUE_URL": "", "HOOKGATE_DEFAULT_WORKSPACE": ""},
			[]string{"HOOKGATE_TABLE is required", "HOOKGATE_INBOUND_QUEUE_URL is required", "HOOKGATE_DEFAULT_WORKSPACE is required"}},
		{"blank", map[string]string{"HOOKGATE_TABLE": "  "}, []string{"HOOKGATE_TABLE is required"}},
		{"one missing", map[string]string{"HOOKGATE_INBOUND_QUEUE_URL": ""}, []string{"HOOKGATE_INBOUND_QUEUE_URL is required"}},
		{"no kms key", map[string]string{"HOOKGATE_KMS_KEY_ID": ""}, []string{"HOOKGATE_KMS_KEY_ID is required"}},
		{"no id key", map[string]string{"HOOKGATE_ID_DERIVATION_KEY": ""}, []string{"HOOKGATE_ID_DERIVATION_KEY is required"}},
		{"short id key", map[string]string{"HOOKGATE_ID_DERIVATION_KEY": "short"}, []string{"HOOKGATE_ID_DERIVATION_KEY"}},
		{"missing and malformed together", map[string]string{
			"HOOKGATE_TABLE": "", "HOOKGATE_DEFAULT_WORKSPACE": "",
			"HOOKGATE_MAX_BODY_BYTES": "1MB", "HOOKGATE_DEDUPE_WINDOW_HOURS": "0", "HOOKGATE_SOURCE_CACHE_SECONDS": "301",
		}, []string{
			"HOOKGATE_TABLE is required", "HOOKGATE_DEFAULT_WORKSPACE is required", "HOOKGATE_MAX_BODY_BYTES must be",
			"HOOKGATE_DEDUPE_WINDOW_HOURS must be", "HOOKGATE_SOURCE_CACHE_SECONDS must be",
		}},
	}
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			d, err := FromEnv(context.Background(), with(c.env), log)
			if err == nil {
				t.Fatalf("FromEnv = %v, nil; want an error naming %q", d, c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(c.want) {
				t.Errorf("error %q has %d problems, want %d", err, n, len(c.want))
			}
		})
	}

	okCases := []struct {
		name   string
		env    map[string]string
		body   int
		window time.Duration
	}{
		{"defaults", nil, doors.MaxStoredBody, doors.DefaultDedupeWindow},
		{"template defaults", map[string]string{"HOOKGATE_MAX_BODY_BYTES": "1000000", "HOOKGATE_DEDUPE_WINDOW_HOURS": "72"}, doors.MaxStoredBody, 72 * time.Hour},
		{"smaller", map[string]string{"HOOKGATE_MAX_BODY_BYTES": "4096", "HOOKGATE_DEDUPE_WINDOW_HOURS": "1", "HOOKGATE_SOURCE_CACHE_SECONDS": "0"}, 4096, time.Hour},
	}
	for _, c := range okCases {
		t.Run(c.name, func(t *testing.T) {
			d, err := FromEnv(context.Background(), with(c.env), log)
			if err != nil {
				t.Fatal(err)
			}
			if d.Config().DefaultWorkspace != "default" || d.Config().MaxBodyBytes != c.body || d.Config().DedupeWindow != c.window {
				t.Fatalf("config %+v, want body %d and window %s", d.Config(), c.body, c.window)
			}
		})
	}
}
