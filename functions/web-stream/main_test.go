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
	for _, name := range []string{"HOOKGATE_TABLE", "HOOKGATE_DEFAULT_WORKSPACE", "HOOKGATE_WIDGET_SIGNING_KEY"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	env := map[string]string{
		"HOOKGATE_TABLE": "t", "HOOKGATE_DEFAULT_WORKSPACE": "default", "HOOKGATE_WIDGET_SIGNING_KEY": "dev-widget-signing-key",
		"HOOKGATE_WIDGET_ALLOWED_ORIGINS": "http://127.0.0.1:3000", "HOOKGATE_STREAM_WINDOW_SECONDS": "26",
		"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret",
	}
	getenv := func(k string) string { return env[k] }
	if _, err := newHandler(context.Background(), getenv, log); err == nil || !strings.Contains(err.Error(), "HOOKGATE_STREAM_WINDOW_SECONDS") {
		t.Fatalf("window over 25 s: %v", err)
	}
	env["HOOKGATE_STREAM_WINDOW_SECONDS"] = "20"
	if h, err := newHandler(context.Background(), getenv, log); err != nil || h == nil {
		t.Fatalf("full environment: %v", err)
	}
}
