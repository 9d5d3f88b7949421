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
	for _, name := range []string{"HOOKGATE_TABLE", "HOOKGATE_DELIVERY_QUEUE_URL", "HOOKGATE_DELIVERY_FIFO_QUEUE_URL", "HOOKGATE_APPROVAL_SIGNING_KEY", "HOOKGATE_KMS_KEY_ID"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	env := map[string]string{"HOOKGATE_TABLE": "t", "HOOKGATE_KMS_KEY_ID": "k", "HOOKGATE_DELIVERY_QUEUE_URL": "http://q", "HOOKGATE_DELIVERY_FIFO_QUEUE_URL": "http://q.fifo", "HOOKGATE_DELIVERY_SCHEDULE": "simple", "HOOKGATE_ADAPTER_SECRET": "adapter-secret-0123456789", "HOOKGATE_APPROVAL_SIGNING_KEY": "dev-approval-signing-key", "HOOKGATE_TELEGRAM_BOT_TOKEN": "123:abc", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"}
	h, err := newHandler(context.Background(), func(k string) string { return env[k] }, log)
	if err != nil || h == nil {
		t.Fatalf("full environment: %v", err)
	}
}

func TestBadScheduleIsAConfigurationError(t *testing.T) {
	env := map[string]string{"HOOKGATE_TABLE": "t", "HOOKGATE_DELIVERY_QUEUE_URL": "http://q", "HOOKGATE_DELIVERY_FIFO_QUEUE_URL": "http://q.fifo", "HOOKGATE_DELIVERY_SCHEDULE": "soon,later", "HOOKGATE_ADAPTER_SECRET": "adapter-secret-0123456789", "HOOKGATE_APPROVAL_SIGNING_KEY": "dev-approval-signing-key", "AWS_REGION": "r", "AWS_ACCESS_KEY_ID": "i", "AWS_SECRET_ACCESS_KEY": "s"}
	if _, err := newHandler(context.Background(), func(k string) string { return env[k] }, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("an unparsable schedule was accepted")
	}
}

func TestBadTelegramTokenAndAdaptersAreConfigurationErrors(t *testing.T) {
	base := map[string]string{"HOOKGATE_TABLE": "t", "HOOKGATE_DELIVERY_QUEUE_URL": "http://q", "HOOKGATE_DELIVERY_FIFO_QUEUE_URL": "http://q.fifo", "HOOKGATE_ADAPTER_SECRET": "adapter-secret-0123456789", "HOOKGATE_APPROVAL_SIGNING_KEY": "dev-approval-signing-key", "AWS_REGION": "r", "AWS_ACCESS_KEY_ID": "i", "AWS_SECRET_ACCESS_KEY": "s"}
	for name, extra := range map[string]map[string]string{
		"token with a slash": {"HOOKGATE_TELEGRAM_BOT_TOKEN": "123/abc"},
		"adapters not JSON":  {"HOOKGATE_ADAPTERS": "default"},
	} {
		get := func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return base[k]
		}
		_, err := newHandler(context.Background(), get, slog.New(slog.DiscardHandler))
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "123/abc") || strings.Contains(err.Error(), "adapter-secret") {
			t.Errorf("%s: the error quotes a secret: %v", name, err)
		}
	}
}
