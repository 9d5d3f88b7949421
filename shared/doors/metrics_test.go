package doors

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/hookgate/hookgate/local/emf"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/trace"
	"github.com/hookgate/hookgate/shared/verify"
)

// traceQueue remembers the trace each queued message was sent with.
type traceQueue struct{ traces []trace.Parent }

func (q *traceQueue) SendInbound(ctx context.Context, _ *queue.Inbound) error {
	q.traces = append(q.traces, trace.FromContext(ctx))
	return nil
}

func TestGenericDoorEmitsEMFAndCarriesTheTrace(t *testing.T) {
	var buf bytes.Buffer
	q := &traceQueue{}
	h := NewGeneric(GenericConfig{Workspace: "default", MaxBodyBytes: 1_000_000, Secrets: verify.NewSecrets(genericSecret), IDs: testIDs}, q,
		slog.New(slog.DiscardHandler), time.Now).WithMetrics(metrics.New(&buf, "", time.Now))

	const sent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ev := genericSample(t)
	ev.Headers["traceparent"] = sent
	if r, _ := h.Handle(context.Background(), ev); r.StatusCode != 202 {
		t.Fatalf("status %d %s", r.StatusCode, r.Body)
	}
	ev.Headers["traceparent"] = "00-ffffffffffffffffffffffffffffffff-00f067aa0ba902b7-ff" // invalid flags: replaced
	delete(ev.Headers, HeaderSignature)
	ev.Headers[HeaderSecret] = "wrong"
	if r, _ := h.Handle(context.Background(), ev); r.StatusCode != 401 {
		t.Fatalf("status %d", r.StatusCode)
	}
	if len(q.traces) != 1 || q.traces[0].TraceIDString() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("queued traces %v", q.traces)
	}
	ds, err := emf.ParseAll(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, d := range ds {
		got[d.Name+"/"+d.Dimensions["Door"]+"/"+d.Dimensions["Reason"]] += d.Values[0]
	}
	if got["InboundAccepted/generic/"] != 1 || got["InboundRefused/generic/unauthorized"] != 1 || len(got) != 2 {
		t.Fatalf("metrics %v", got)
	}
}
