package trace_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/shared/trace"
)

const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestParseIsStrict(t *testing.T) {
	p, ok := trace.Parse(valid)
	if !ok || p.String() != valid || p.TraceIDString() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("valid refused: %v %q", ok, p.String())
	}
	for _, bad := range []string{
		"",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",            // another version
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",            // uppercase
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",            // zero trace id
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",            // zero span id
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff",            // unknown flags
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",      // trailing data
		" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",           // padding
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",            // not hex
		"00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",            // separators
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\n",           // control character
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\"},{\"x\":", // injection
	} {
		if _, ok := trace.Parse(bad); ok {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestFromContinuesAValidTraceAndReplacesTheRest(t *testing.T) {
	p := trace.From(valid)
	if p.TraceIDString() != "4bf92f3577b34da6a3ce929d0e0e4736" || p.String() == valid {
		t.Fatalf("continued as %s (want the same trace, a new span)", p)
	}
	q := trace.From("00-zzzz")
	if !q.Valid() || strings.Contains(q.String(), "zzzz") {
		t.Fatalf("invalid input gave %s", q)
	}
	if _, ok := trace.Parse(q.String()); !ok {
		t.Fatalf("a new trace does not parse: %s", q)
	}
	if trace.Outgoing(context.Background()) != "" {
		t.Fatal("a context without a trace sends one")
	}
	out := trace.Outgoing(trace.NewContext(context.Background(), p))
	if o, ok := trace.Parse(out); !ok || o.TraceID != p.TraceID || o.SpanID == p.SpanID {
		t.Fatalf("outgoing %s", out)
	}
}

func TestLogLinesCarryTheTraceID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(trace.LogHandler(slog.NewJSONHandler(&buf, nil))).With("fn", "x")
	p, _ := trace.Parse(valid)
	log.InfoContext(trace.NewContext(context.Background(), p), "hello")
	log.InfoContext(context.Background(), "no trace")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var first, second map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &first)
	_ = json.Unmarshal([]byte(lines[1]), &second)
	if first["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || first["fn"] != "x" {
		t.Fatalf("line %s", lines[0])
	}
	if _, ok := second["trace_id"]; ok {
		t.Fatalf("line %s", lines[1])
	}
}

func FuzzParse(f *testing.F) {
	f.Add(valid)
	f.Add("00-00000000000000000000000000000000-00f067aa0ba902b7-01")
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := trace.Parse(s)
		if ok && p.String() != s {
			t.Fatalf("%q parsed but prints %q", s, p.String())
		}
	})
}
