package manage

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/store"
)

// Odd values for the throttles (huge, tiny, negative zero, strings, NaN, duplicate keys, nulls in
// the object) are refused or read as the last duplicate, as Go reads JSON; a key of another
// workspace can neither read nor change a subscription's limits or circuit.
func TestLimitsAttacks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	keyA, keyB := e.key("wsa"), e.key("wsb")
	var v struct {
		ID string `json:"id"`
	}
	e.must(201, call{route: "POST /v1/webhooks", key: keyB, body: map[string]any{
		"url": "https://example.com/b", "events": []string{"*"}, "rate_limit": map[string]any{"per_second": 1}, "max_in_flight": 2,
	}}).decode(t, &v)
	ctx := context.Background()
	probe := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, _, err := e.st.OpenCircuit(ctx, "wsb", v.ID, e.clk.now(), probe); err != nil {
		t.Fatal(err)
	}
	before, _ := e.st.GetSubscription(ctx, "wsb", v.ID)
	id := map[string]string{"id": v.ID}

	for _, c := range []call{
		{route: "GET /v1/webhooks/{id}", key: keyA, params: id},
		{route: "PATCH /v1/webhooks/{id}", key: keyA, params: id, body: `{"rate_limit":null,"max_in_flight":null}`},
		{route: "PATCH /v1/webhooks/{id}", key: keyA, params: id, body: `{"rate_limit":{"per_second":500,"burst":1000}}`},
	} {
		if r := e.do(c); r.status != 404 || strings.Contains(r.body, "circuit") || strings.Contains(r.body, "per_second") {
			t.Errorf("workspace A's %s of B's subscription: %d %s", c.route, r.status, r.body)
		}
	}
	if r := e.must(200, call{route: "GET /v1/webhooks", key: keyA}); strings.Contains(r.body, v.ID) {
		t.Errorf("workspace A lists B's subscription: %s", r.body)
	}

	for _, body := range []string{
		`{"rate_limit":{"per_second":1e400}}`,
		`{"rate_limit":{"per_second":"NaN"}}`,
		`{"rate_limit":{"per_second":"Infinity"}}`,
		`{"rate_limit":{"per_second":-0}}`,
		`{"rate_limit":{"per_second":5e-324}}`,
		`{"rate_limit":{"per_second":null}}`,
		`{"rate_limit":{"per_second":5,"burst":-0}}`,
		`{"rate_limit":{"per_second":5,"burst":1e400}}`,
		`{"rate_limit":{"per_second":5,"burst":"10"}}`,
		`{"rate_limit":{"per_second":5,"burst":1000.5}}`,
		`{"rate_limit":{"per_second":5},"rate_limit":{"per_second":0}}`,
		`{"rate_limit":{"per_second":5,"per_second":600}}`,
		`{"rate_limit":[{"per_second":5}]}`,
		`{"rate_limit":true}`,
		`{"max_in_flight":-1}`,
		`{"max_in_flight":1e400}`,
		`{"max_in_flight":9223372036854775808}`,
		`{"max_in_flight":"NaN"}`,
		`{"max_in_flight":{}}`,
		`{"max_in_flight":1.0000001}`,
		`{"max_in_flight":5,"max_in_flight":0}`,
	} {
		r := e.do(call{route: "PATCH /v1/webhooks/{id}", key: keyB, params: id, body: body})
		if r.status != 400 {
			t.Errorf("PATCH %s: %d %s", body, r.status, r.body)
		}
	}
	after, _ := e.st.GetSubscription(ctx, "wsb", v.ID)
	if !after.UpdatedAt.Equal(before.UpdatedAt) || after.MaxInFlight != 2 || after.RateLimit == nil || *after.RateLimit != *before.RateLimit ||
		after.Circuit.State != store.CircuitOpen || !after.Circuit.Until.Equal(probe) {
		t.Fatalf("refused requests changed B's subscription: %+v", after)
	}
	// The last duplicate wins, as everywhere in the API: a valid one is applied, whole.
	var got struct {
		RateLimit json.RawMessage `json:"rate_limit"`
	}
	e.must(200, call{route: "PATCH /v1/webhooks/{id}", key: keyB, params: id, body: `{"rate_limit":{"per_second":0},"rate_limit":{"per_second":2}}`}).decode(t, &got)
	if string(got.RateLimit) != `{"per_second":2,"burst":2}` {
		t.Fatalf("duplicates read as %s", got.RateLimit)
	}
}
