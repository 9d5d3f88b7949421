package queue

import (
	"context"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/hookgate/hookgate/shared/trace"
)

func TestInboundCarriesTheTraceAsAMessageAttribute(t *testing.T) {
	f := &fakeSQS{}
	s := NewSender(f, "https://sqs.example/q.fifo")
	p, _ := trace.Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	m := &Inbound{Version: InboundVersion, WorkspaceID: "ws", ThreadID: "t", MessageID: "m", RunID: "r"}
	if err := s.SendInbound(trace.NewContext(context.Background(), p), m); err != nil {
		t.Fatal(err)
	}
	if err := s.SendInbound(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	a, ok := f.sent[0].MessageAttributes[trace.Header]
	if !ok || aws.ToString(a.DataType) != "String" {
		t.Fatalf("attributes %v", f.sent[0].MessageAttributes)
	}
	got := InboundTrace(map[string]events.SQSMessageAttribute{trace.Header: {DataType: "String", StringValue: a.StringValue}})
	if got.TraceID != p.TraceID {
		t.Fatalf("received trace %s, sent %s", got, p)
	}
	if f.sent[1].MessageAttributes != nil {
		t.Fatalf("no trace, yet attributes %v", f.sent[1].MessageAttributes)
	}
	bad := "not-a-traceparent"
	if got := InboundTrace(map[string]events.SQSMessageAttribute{trace.Header: {StringValue: &bad}}); !got.Valid() || got.String() == bad {
		t.Fatalf("an invalid attribute gave %s", got)
	}
}
