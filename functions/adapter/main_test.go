package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestNewHandlerReportsEveryMissingVariable(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	_, err := newHandler(context.Background(), func(string) string { return "" }, log)
	if err == nil {
		t.Fatal("no error with an empty environment")
	}
	for _, name := range []string{"HOOKGATE_TABLE", "HOOKGATE_KMS_KEY_ID", "HOOKGATE_INBOUND_QUEUE_URL", "HOOKGATE_DEFAULT_WORKSPACE", "HOOKGATE_ADAPTER_SECRET", "HOOKGATE_APPROVAL_SIGNING_KEY"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	env := map[string]string{"HOOKGATE_TABLE": "t", "HOOKGATE_KMS_KEY_ID": "k", "HOOKGATE_INBOUND_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/q.fifo", "HOOKGATE_DEFAULT_WORKSPACE": "default", "HOOKGATE_ADAPTER_SECRET": "0123456789abcdef", "HOOKGATE_APPROVAL_SIGNING_KEY": "dev-approval-signing-key", "HOOKGATE_ID_DERIVATION_KEY": "test-id-derivation-key", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"}
	h, err := newHandler(context.Background(), func(k string) string { return env[k] }, log)
	if err != nil || h == nil {
		t.Fatalf("full environment: %v", err)
	}
}
