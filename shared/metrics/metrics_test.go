package metrics_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/local/emf"
	"github.com/hookgate/hookgate/shared/metrics"
)

func TestFlushWritesOneValidEMFLinePerDimensionSet(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	m := metrics.New(&buf, "", func() time.Time { return at })
	m.Count(metrics.InboundAccepted, 1, "Door", "generic")
	m.Count(metrics.InboundAccepted, 1, "Door", "generic")
	m.Count(metrics.InboundRefused, 1, "Door", "generic", "Reason", "unauthorized")
	m.Millis(metrics.AgentLatency, 1500*time.Microsecond, "Outcome", "ok")
	m.Millis(metrics.AgentLatency, 20*time.Millisecond, "Outcome", "ok")
	m.Count("Odd", 1, "Door") // an odd dimension list is dropped, not guessed at
	m.Flush()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	ds, err := emf.ParseAll(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]float64{}
	for _, d := range ds {
		if d.Namespace != metrics.DefaultNamespace {
			t.Fatalf("namespace %q", d.Namespace)
		}
		got[d.Name+"/"+d.Dimensions["Door"]+d.Dimensions["Reason"]+d.Dimensions["Outcome"]] = d.Values
	}
	want := map[string][]float64{
		"InboundAccepted/generic":            {2},
		"InboundRefused/genericunauthorized": {1},
		"AgentLatency/ok":                    {1.5, 20},
	}
	for k, v := range want {
		if g := got[k]; len(g) != len(v) || g[0] != v[0] || g[len(g)-1] != v[len(v)-1] {
			t.Fatalf("%s = %v, want %v (all: %v)", k, g, v, got)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("metrics %v", got)
	}
	if !strings.Contains(lines[0], `"Timestamp":1796551200000`) {
		t.Fatalf("timestamp: %s", lines[0])
	}
	buf.Reset()
	m.Flush() // flushed once: nothing left
	if buf.Len() != 0 {
		t.Fatalf("second flush wrote %s", buf.String())
	}
	var nilEmitter *metrics.Emitter
	nilEmitter.Count(metrics.Runs, 1, "Outcome", "completed")
	nilEmitter.Flush()
}

func TestNamespaceAndBounds(t *testing.T) {
	var buf bytes.Buffer
	m := metrics.New(&buf, "Acme/Hooks", time.Now)
	for i := 0; i < 150; i++ {
		m.Millis(metrics.AttemptLatency, time.Millisecond, "Target", "webhook")
	}
	m.Flush()
	ds, err := emf.ParseAll(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Namespace != "Acme/Hooks" || len(ds[0].Values) != 100 {
		t.Fatalf("%+v", ds)
	}
	if metrics.Target("") != "webhook" || metrics.Target("callback") != "callback" || metrics.Target("x/../evil") != "other" {
		t.Fatal("Target is not bounded")
	}
}
