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
	for _, name := range []string{"HOOKGATE_TABLE", "HOOKGATE_KMS_KEY_ID", "HOOKGATE_INBOUND_QUEUE_URL", "HOOKGATE_APPROVAL_SIGNING_KEY"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	env := map[string]string{"HOOKGATE_TABLE": "t", "HOOKGATE_KMS_KEY_ID": "k", "HOOKGATE_INBOUND_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/q.fifo", "HOOKGATE_APPROVAL_SIGNING_KEY": "dev-approval-signing-key", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"}
	h, err := newHandler(context.Background(), func(k string) string { return env[k] }, log)
	if err != nil || h == nil {
		t.Fatalf("full environment: %v", err)
	}
}

func TestNewHandlerRefusesBadAgents(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	base := map[string]string{"HOOKGATE_TABLE": "t", "HOOKGATE_KMS_KEY_ID": "k", "HOOKGATE_INBOUND_QUEUE_URL": "q", "HOOKGATE_APPROVAL_SIGNING_KEY": "dev-approval-signing-key", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"}
	for name, env := range map[string]map[string]string{
		"unknown default agent": {"HOOKGATE_AGENT": "gpt"},
		"bad agents":            {"HOOKGATE_AGENTS": `{"gpt":{"type":"openai"}}`},
		"bad retry schedule":    {"HOOKGATE_AGENT_RETRY_SCHEDULE": "soon"},
		"short approval key":    {"HOOKGATE_APPROVAL_SIGNING_KEY": "tiny-key"},
	} {
		get := func(k string) string {
			if v, ok := env[k]; ok {
				return v
			}
			return base[k]
		}
		if _, err := newHandler(context.Background(), get, log); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
