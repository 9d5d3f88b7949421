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
	for _, name := range []string{"HOOKGATE_TABLE", "HOOKGATE_DEFAULT_WORKSPACE", "HOOKGATE_ADMIN_API_KEY"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	env := map[string]string{
		"HOOKGATE_TABLE": "t", "HOOKGATE_DEFAULT_WORKSPACE": "default", "HOOKGATE_ADMIN_API_KEY": "short",
		"HOOKGATE_STREAM_WINDOW_SECONDS": "30", "HOOKGATE_STREAM_POLL_MS": "10",
		"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret",
	}
	getenv := func(k string) string { return env[k] }
	_, err = newHandler(context.Background(), getenv, log)
	for _, want := range []string{"HOOKGATE_ADMIN_API_KEY must be at least 16", "HOOKGATE_STREAM_WINDOW_SECONDS must be an integer from 1 to 25", "HOOKGATE_STREAM_POLL_MS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "short") {
		t.Fatalf("the error shows the admin key: %v", err)
	}
	env["HOOKGATE_ADMIN_API_KEY"], env["HOOKGATE_STREAM_WINDOW_SECONDS"], env["HOOKGATE_STREAM_POLL_MS"] = "0123456789abcdef", "20", "200"
	if h, err := newHandler(context.Background(), getenv, log); err != nil || h == nil {
		t.Fatalf("full environment: %v", err)
	}
}
