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

func TestSampleEvent(t *testing.T) {
	h, err := newHandler(context.Background(), func(string) string { return "" }, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../events/widget-assets.json")
	if err != nil {
		t.Fatal(err)
	}
	out, err := lambda.NewHandler(h).Invoke(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Headers["content-type"], "text/javascript") || !strings.Contains(resp.Body, "EventSource") {
		t.Fatalf("GET /widget.js: %d %v", resp.StatusCode, resp.Headers)
	}
}
