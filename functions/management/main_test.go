package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestNewHandlerReportsEveryProblem(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	_, err := newHandler(context.Background(), func(string) string { return "" }, log)
	if err == nil {
		t.Fatal("no error with an empty environment")
	}
	for _, name := range []string{"HOOKGATE_TABLE", "HOOKGATE_DEFAULT_WORKSPACE", "HOOKGATE_ADMIN_API_KEY", "HOOKGATE_DELIVERY_QUEUE_URL", "HOOKGATE_DELIVERY_FIFO_QUEUE_URL", "HOOKGATE_KMS_KEY_ID", "HOOKGATE_FANOUT_DLQ_URL", "HOOKGATE_TABLE_STREAM_ARN"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}

	env := map[string]string{
		"HOOKGATE_TABLE": "t", "HOOKGATE_KMS_KEY_ID": "k", "HOOKGATE_DELIVERY_QUEUE_URL": "http://q", "HOOKGATE_DELIVERY_FIFO_QUEUE_URL": "http://q.fifo", "HOOKGATE_FANOUT_DLQ_URL": "http://dlq", "HOOKGATE_TABLE_STREAM_ARN": "arn:aws:dynamodb:eu-west-1:1:table/t/stream/x", "HOOKGATE_DEFAULT_WORKSPACE": "default", "HOOKGATE_ADMIN_API_KEY": "short",
		"HOOKGATE_ALLOW_HTTP_URLS": "maybe", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret",
	}
	getenv := func(k string) string { return env[k] }
	_, err = newHandler(context.Background(), getenv, log)
	if err == nil || !strings.Contains(err.Error(), "HOOKGATE_ADMIN_API_KEY must be at least 16") || !strings.Contains(err.Error(), "HOOKGATE_ALLOW_HTTP_URLS") {
		t.Fatalf("short admin key and bad bool: %v", err)
	}
	if strings.Contains(err.Error(), "short") {
		t.Fatalf("the error shows the admin key: %v", err)
	}

	env["HOOKGATE_ADMIN_API_KEY"] = "0123456789abcdef"
	env["HOOKGATE_ALLOW_HTTP_URLS"] = ""
	h, err := newHandler(context.Background(), getenv, log)
	if err != nil || h == nil {
		t.Fatalf("full environment: %v", err)
	}
	env["HOOKGATE_ALLOW_HTTP_URLS"] = "true"
	if h, err = newHandler(context.Background(), getenv, log); err != nil || h == nil {
		t.Fatalf("with http URLs allowed: %v", err)
	}
}
