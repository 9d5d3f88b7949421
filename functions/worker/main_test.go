package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
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

// With DynamoDB unreachable the stack's seed cannot be written and nothing of the batch can run:
// the batch is handed back as batch item failures (visible again after the failure delay), not
// a function error, which would hold all of its threads for the queue's whole visibility timeout.
func TestSeedFailureHandsTheBatchBack(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	env := map[string]string{
		"HOOKGATE_TABLE": "t", "HOOKGATE_KMS_KEY_ID": "k", "HOOKGATE_INBOUND_QUEUE_URL": "http://127.0.0.1:1/000000000000/q.fifo",
		"HOOKGATE_APPROVAL_SIGNING_KEY": "dev-approval-signing-key", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret",
		"HOOKGATE_DYNAMODB_ENDPOINT": "http://127.0.0.1:1", "HOOKGATE_SQS_ENDPOINT": "http://127.0.0.1:1", "HOOKGATE_KMS_ENDPOINT": "http://127.0.0.1:1",
	}
	h, err := newHandler(context.Background(), func(k string) string { return env[k] }, log)
	if err != nil {
		t.Fatal(err)
	}
	ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "a", ReceiptHandle: "ra", Body: "{}"}, {MessageId: "b", ReceiptHandle: "rb", Body: "{}"}}}
	resp, err := h(context.Background(), ev)
	if err != nil {
		t.Fatalf("a function error: %v", err)
	}
	if len(resp.BatchItemFailures) != 2 || resp.BatchItemFailures[0].ItemIdentifier != "a" || resp.BatchItemFailures[1].ItemIdentifier != "b" {
		t.Fatalf("failures %+v", resp.BatchItemFailures)
	}
}
