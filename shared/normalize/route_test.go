package normalize

import (
	"strings"
	"testing"
)

func TestValidPattern(t *testing.T) {
	tests := []struct {
		p    string
		want bool
	}{
		{"*", true},
		{"webhook.*", true},
		{"webhook.stripe.*", true},
		{"webhook.stripe.invoice_paid", true},
		{"webhook.my-app_2.received", true},
		{"webhook.generic.received", true},
		{"webhook.9.x", true},
		{"webhook." + strings.Repeat("s", 64) + ".x", true},
		{"webhook.s." + strings.Repeat("t", 200), true},

		{"", false},
		{"**", false},
		{"webhook", false},
		{"webhook.", false},
		{"webhook.stripe", false},
		{"webhook.stripe.", false},
		{"webhook.stripe*", false},
		{"webhook.stripe.invoice*", false},
		{"webhook.stripe.invoice.paid", false}, // slugs have no dots
		{"webhook.stripe.Invoice_paid", false},
		{"webhook.stripe.invoice-paid", false},
		{"webhook.Stripe.*", false},
		{"webhook.-x.*", false},
		{"webhook._x.y", false},
		{"webhook." + strings.Repeat("s", 65) + ".x", false},
		{"webhook.s." + strings.Repeat("t", 201), false},
		{"webhook.*.x", false},
		{"run.*", false},
		{"Webhook.stripe.*", false},
		{" webhook.stripe.*", false},
	}
	for _, tt := range tests {
		if got := ValidPattern(tt.p); got != tt.want {
			t.Errorf("ValidPattern(%q) = %v, want %v", tt.p, got, tt.want)
		}
	}
}

func TestValidSource(t *testing.T) {
	for _, s := range []string{"a", "9", "generic", "my-app_2", "a-", "a_", strings.Repeat("z", 64)} {
		if !ValidSource(s) {
			t.Errorf("ValidSource(%q) = false", s)
		}
	}
	for _, s := range []string{"", " a", "a ", "-a", "_a", "A", "a.b", "a/b", "é", "a\n", strings.Repeat("z", 65)} {
		if ValidSource(s) {
			t.Errorf("ValidSource(%q) = true", s)
		}
	}
}

func TestRoute(t *testing.T) {
	r := func(pattern, agent string) RoleRoute { return RoleRoute{Pattern: pattern, Agent: agent} }
	tests := []struct {
		name   string
		routes []RoleRoute
		role   string
		want   string // agent; "" means no route
	}{
		{"no routes", nil, "webhook.stripe.invoice_paid", ""},
		{"no match", []RoleRoute{r("webhook.github.*", "gh"), r("webhook.stripe.charge_failed", "cf")}, "webhook.stripe.invoice_paid", ""},
		{"catch-all", []RoleRoute{r("*", "all")}, "webhook.stripe.invoice_paid", "all"},
		{"exact", []RoleRoute{r("webhook.stripe.invoice_paid", "ip")}, "webhook.stripe.invoice_paid", "ip"},
		{"exact beats prefix listed first",
			[]RoleRoute{r("*", "all"), r("webhook.stripe.*", "stripe"), r("webhook.stripe.invoice_paid", "ip")},
			"webhook.stripe.invoice_paid", "ip"},
		{"exact beats prefix listed later",
			[]RoleRoute{r("webhook.stripe.invoice_paid", "ip"), r("webhook.stripe.*", "stripe"), r("*", "all")},
			"webhook.stripe.invoice_paid", "ip"},
		{"longer prefix beats shorter",
			[]RoleRoute{r("*", "all"), r("webhook.*", "webhooks"), r("webhook.stripe.*", "stripe")},
			"webhook.stripe.charge_failed", "stripe"},
		{"shorter prefix beats catch-all",
			[]RoleRoute{r("*", "all"), r("webhook.*", "webhooks"), r("webhook.stripe.*", "stripe")},
			"webhook.github.push", "webhooks"},
		{"catch-all last",
			[]RoleRoute{r("*", "all"), r("webhook.stripe.*", "stripe")},
			"webhook.github.push", "all"},
		{"tie: first listed wins", []RoleRoute{r("webhook.stripe.*", "a"), r("webhook.stripe.*", "b")}, "webhook.stripe.x", "a"},
		{"tie of exact: first listed wins", []RoleRoute{r("webhook.s.x", "a"), r("webhook.s.x", "b")}, "webhook.s.x", "a"},
		{"tie of catch-alls: first listed wins", []RoleRoute{r("*", "a"), r("*", "b")}, "webhook.s.x", "a"},
		{"prefix only at a dot", []RoleRoute{r("webhook.stripe.*", "stripe")}, "webhook.stripe2.x", ""},
		{"prefix needs more after the dot", []RoleRoute{r("webhook.stripe.*", "stripe")}, "webhook.stripe.", ""},
		{"prefix does not select its own stem", []RoleRoute{r("webhook.stripe.*", "stripe")}, "webhook.stripe", ""},
		{"star without a dot is not a prefix", []RoleRoute{r("webhook.stripe*", "s")}, "webhook.stripe.x", ""},
		{"case matters", []RoleRoute{r("webhook.Stripe.*", "s")}, "webhook.stripe.x", ""},
		{"empty pattern never matches", []RoleRoute{r("", "e")}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Route(tt.routes, tt.role)
			if ok != (tt.want != "") || got.Agent != tt.want {
				t.Fatalf("Route(%q) = %+v, %v; want agent %q", tt.role, got, ok, tt.want)
			}
		})
	}
}

func TestRouteAllocatesNothing(t *testing.T) {
	routes := []RoleRoute{{"*", "all"}, {"webhook.*", "w"}, {"webhook.stripe.*", "s"}, {"webhook.stripe.invoice_paid", "ip"}}
	if n := testing.AllocsPerRun(100, func() { Route(routes, "webhook.stripe.invoice_paid") }); n != 0 {
		t.Errorf("Route allocates %v times, want 0", n)
	}
}
