package manage

import (
	"strings"
	"testing"
)

func TestMatchEvent(t *testing.T) {
	tests := []struct {
		patterns []string
		event    string
		want     bool
	}{
		{[]string{"run.completed"}, "run.completed", true},
		{[]string{"run.completed"}, "run.failed", false},
		{[]string{"run.*"}, "run.failed", true},
		{[]string{"run.*"}, "run.requires_approval", true},
		{[]string{"run.*"}, "run", false},
		{[]string{"run.*"}, "run.", false},
		{[]string{"run.*"}, "runs.created", false},
		{[]string{"run.*"}, "message.received", false},
		{[]string{"*"}, "anything.at.all", true},
		{[]string{"*"}, "", true},
		{[]string{"webhook.*"}, "webhook.test", true},
		{[]string{"webhook.*"}, "webhook.stripe.invoice_paid", true},
		{[]string{"webhook.stripe.*"}, "webhook.stripe.invoice_paid", true},
		{[]string{"webhook.stripe.*"}, "webhook.github.push", false},
		{[]string{"webhook.stripe.*"}, "webhook.stripe", false},
		{[]string{"webhook.github.push"}, "webhook.github.push", true},
		{[]string{"message.received", "run.*"}, "run.created", true},
		{[]string{"message.received", "run.*"}, "message.sent", false},
		{nil, "run.created", false},
		{[]string{}, "", false},
		{[]string{"run*"}, "run.created", false}, // not a pattern: matches only itself
		{[]string{"run*"}, "run*", true},
		{[]string{"r*"}, "run.created", false},
		{[]string{"RUN.*"}, "run.created", false}, // case matters
	}
	for _, tt := range tests {
		if got := MatchEvent(tt.patterns, tt.event); got != tt.want {
			t.Errorf("MatchEvent(%q, %q) = %v, want %v", tt.patterns, tt.event, got, tt.want)
		}
	}
}

func TestMatchEventAllocatesNothing(t *testing.T) {
	patterns := []string{"message.received", "webhook.stripe.*", "run.*"}
	if n := testing.AllocsPerRun(100, func() { MatchEvent(patterns, "run.completed") }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func TestValidPattern(t *testing.T) {
	valid := append(KnownEventTypes(),
		"*", "message.*", "run.*", "binding.*", "delivery.*", "subscription.*", "webhook.*",
		"webhook.stripe.*", "webhook.generic.received", "webhook.github.pull_request", "webhook.my_app2.order_created",
		"webhook.test.*", "webhook."+strings.Repeat("a", 64)+".x", "webhook.stripe-x.y", "telegram.*", "telegram.edited_message",
	)
	for _, p := range valid {
		if !ValidPattern(p) {
			t.Errorf("ValidPattern(%q) = false", p)
		}
	}
	invalid := []string{
		"", "run", "run.", "run.unknown", "runs.*", "run*", "*.*", ".*", "**", "run.**", "run.*.*", "message.received ",
		"Run.completed", "webhook", "webhook.", "webhook.stripe", "webhook.stripe.", "webhook..x", "webhook.Stripe.x",
		"webhook.stripe.invoice.paid", "webhook.stripe.x*", "telegram.Message", "telegram.", "webhook.*.paid", "webhook.stripe.*.x",
		"webhook." + strings.Repeat("a", 65) + ".x", "foo.bar", "message.*x", "delivery.exhausted.*",
	}
	for _, p := range invalid {
		if ValidPattern(p) {
			t.Errorf("ValidPattern(%q) = true", p)
		}
	}
}

func FuzzMatchEvent(f *testing.F) {
	for _, seed := range [][2]string{
		{"run.*", "run.completed"}, {"*", "x"}, {"webhook.stripe.*", "webhook.stripe.charge"}, {"run*", "run.x"},
		{".*", ".x"}, {"run.completed", "run.completed"}, {"", ""}, {"webhook.a.b", "webhook.a.b"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, event string) {
		got := MatchEvent([]string{pattern}, event)
		if MatchEvent(nil, event) {
			t.Fatal("an empty filter matched")
		}
		if !MatchEvent([]string{pattern, event}, event) || !MatchEvent([]string{"*"}, event) {
			t.Fatal("an exact pattern or * did not match")
		}
		// A match is exact, *, or a prefix pattern whose prefix the event extends.
		if got && pattern != "*" && pattern != event {
			prefix, ok := strings.CutSuffix(pattern, "*")
			if !ok || !strings.HasSuffix(prefix, ".") || !strings.HasPrefix(event, prefix) || len(event) == len(prefix) {
				t.Fatalf("%q matched %q", pattern, event)
			}
		}
		// A valid pattern without a wildcard matches only itself.
		if ValidPattern(pattern) && !strings.Contains(pattern, "*") && got != (pattern == event) {
			t.Fatalf("exact pattern %q vs %q: %v", pattern, event, got)
		}
		// Valid patterns are printable ASCII without spaces.
		if ValidPattern(pattern) {
			for _, c := range []byte(pattern) {
				if c <= ' ' || c > '~' {
					t.Fatalf("valid pattern %q has byte %#x", pattern, c)
				}
			}
		}
	})
}
