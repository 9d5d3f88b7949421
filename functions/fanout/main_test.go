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
	for _, name := range []string{"HOOKGATE_TABLE", "HOOKGATE_DELIVERY_QUEUE_URL", "HOOKGATE_DELIVERY_FIFO_QUEUE_URL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	env := map[string]string{"HOOKGATE_TABLE": "t", "HOOKGATE_DELIVERY_QUEUE_URL": "http://q", "HOOKGATE_DELIVERY_FIFO_QUEUE_URL": "http://q.fifo", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"}
	h, err := newHandler(context.Background(), func(k string) string { return env[k] }, log)
	if err != nil || h == nil {
		t.Fatalf("full environment: %v", err)
	}
}
