package delivery

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/hookgate/hookgate/local/emf"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/trace"
)

func TestDeliveryEmitsEMFAndSendsTheTraceOnEveryAttempt(t *testing.T) {
	var buf bytes.Buffer
	var sentTraces []string
	r := newRig(t, "simple", 0, func(int) outbound.Result { return outbound.Result{StatusCode: 502, Latency: 30 * time.Millisecond} })
	post := r.h.post
	r.h.post = func(ctx context.Context, req outbound.Request) outbound.Result {
		sentTraces = append(sentTraces, req.Trace)
		return post(ctx, req)
	}
	r.h.WithMetrics(metrics.New(&buf, "", time.Now))
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r.deliver(t, queue.Delivery{Trace: tp})
	for len(r.q.sent) > 0 {
		next := r.q.sent[0]
		r.q.sent = r.q.sent[1:]
		if next.m.Trace != tp {
			t.Fatalf("retry queued with trace %q", next.m.Trace)
		}
		r.now = r.now.Add(next.delay)
		r.deliver(t, next.m)
	}
	if len(sentTraces) != 3 {
		t.Fatalf("%d attempts", len(sentTraces))
	}
	for _, s := range sentTraces {
		if p, ok := trace.Parse(s); !ok || p.TraceIDString() != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Fatalf("attempt sent traceparent %q", s)
		}
	}
	if e := r.st.events[0]; e.Type != EventDeliveryExhausted || e.Trace == "" {
		t.Fatalf("exhausted event %+v", e)
	}
	ds, err := emf.ParseAll(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, d := range ds {
		for _, v := range d.Values {
			if d.Unit == metrics.UnitCount {
				got[d.Name+"/"+d.Dimensions["Target"]+"/"+d.Dimensions["Outcome"]] += v
			} else {
				got[d.Name+"/"+d.Dimensions["Target"]]++
			}
		}
	}
	want := map[string]float64{
		"Deliveries/webhook/retry": 2, "Deliveries/webhook/exhausted": 1, "RetriesWaiting/webhook/": 2, "AttemptLatency/webhook": 3,
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %v, want %v (all %v)", k, got[k], v, got)
		}
	}

	// A message without a valid trace starts its own: never an attacker's header value.
	sentTraces = nil
	r2 := newRig(t, "0s", 0, func(int) outbound.Result { return outbound.Result{StatusCode: 200} })
	r2.h.post = func(_ context.Context, req outbound.Request) outbound.Result {
		sentTraces = append(sentTraces, req.Trace)
		return outbound.Result{StatusCode: 200}
	}
	r2.h.log = slog.New(slog.DiscardHandler)
	r2.deliver(t, queue.Delivery{Trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nX: y"})
	if len(sentTraces) != 1 {
		t.Fatalf("%d attempts", len(sentTraces))
	}
	if p, ok := trace.Parse(sentTraces[0]); !ok || p.TraceIDString() == "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("invalid trace was continued: %q", sentTraces[0])
	}
}
