package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func TestNewHandlerReportsEveryProblem(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	_, err := newHandler(context.Background(), func(string) string { return "" }, log)
	if err == nil {
		t.Fatal("no error with an empty environment")
	}
	for _, name := range []string{"HOOKGATE_INBOUND_QUEUE_URL", "HOOKGATE_DEFAULT_WORKSPACE", "HOOKGATE_WIDGET_SIGNING_KEY"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	env := map[string]string{
		"HOOKGATE_TABLE": "t", "HOOKGATE_INBOUND_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/q.fifo", "HOOKGATE_DEFAULT_WORKSPACE": "default",
		"HOOKGATE_WIDGET_SIGNING_KEY": "tooshort", "HOOKGATE_WIDGET_ALLOWED_ORIGINS": "https://ok.example.com,https://*.example.com",
		"HOOKGATE_WIDGET_SESSION_MINUTES": "1", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret",
	}
	getenv := func(k string) string { return env[k] }
	_, err = newHandler(context.Background(), getenv, log)
	for _, want := range []string{"HOOKGATE_WIDGET_SIGNING_KEY: key 1 is shorter than 16", `"https://*.example.com"`, "HOOKGATE_WIDGET_SESSION_MINUTES"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "tooshort") {
		t.Fatalf("the error shows the key: %v", err)
	}
	env["HOOKGATE_WIDGET_SIGNING_KEY"], env["HOOKGATE_WIDGET_ALLOWED_ORIGINS"], env["HOOKGATE_WIDGET_SESSION_MINUTES"] = "dev-widget-signing-key", "http://127.0.0.1:3000", ""
	// No rate limits: the session sample would take a token from a table this test has not got.
	env["HOOKGATE_WIDGET_SESSIONS_PER_MINUTE"] = "0"
	h, err := newHandler(context.Background(), getenv, log)
	if err != nil {
		t.Fatalf("full environment: %v", err)
	}
	// The sample events go through the real decoder: a session, and a preflight.
	for file, want := range map[string]int{"session": 201, "preflight": 204} {
		raw, err := os.ReadFile("../../events/web-widget-" + file + ".json")
		if err != nil {
			t.Fatal(err)
		}
		out, err := lambda.NewHandler(h).Invoke(context.Background(), raw)
		if err != nil {
			t.Fatal(err)
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode != want || resp.Headers["access-control-allow-origin"] != "http://127.0.0.1:3000" {
			t.Errorf("events/web-widget-%s.json: %d %v %s", file, resp.StatusCode, resp.Headers, resp.Body)
		}
	}
}
