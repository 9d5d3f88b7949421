package worker

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/local/emf"
	"github.com/hookgate/hookgate/shared/agent"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/trace"
)

func TestWorkerEmitsEMFAndKeepsTheMessagesTrace(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var agentTrace string
	r := newRig(t, 0, func(req agent.Request, n int) (agent.Reply, error) { return echoing(req, n) })
	r.h.WithMetrics(metrics.New(&buf, "", time.Now))
	r.agent.respondCtx = func(ctx context.Context) { agentTrace = trace.FromContext(ctx).TraceIDString() }
	const sent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	rec := record("1", message("thr_m", "rm", "hello"))
	rec.MessageAttributes = map[string]events.SQSMessageAttribute{"traceparent": {DataType: "String", StringValue: ptr(sent)}}
	if failed := r.handle(t, rec); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if agentTrace != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("the agent was called with trace %q", agentTrace)
	}
	evs, err := r.st.ListEvents(context.Background(), "ws", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	for _, e := range evs {
		if p, ok := trace.Parse(e.Trace); !ok || p.TraceIDString() != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Fatalf("event %s stored trace %q", e.Type, e.Trace)
		}
	}
	ds, err := emf.ParseAll(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, d := range ds {
		got[d.Name+"/"+d.Dimensions["Outcome"]] += len(d.Values)
	}
	if got["Runs/"+store.RunCompleted] != 1 || got["AgentLatency/ok"] != 2 { // session_start and user_speak
		t.Fatalf("metrics %v", got)
	}
}

func ptr(s string) *string { return &s }
