package manage

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// Rate limits and max_in_flight: set at create, shown on read, changed and removed on update;
// bad values are 400 naming the field, and change nothing.
func TestWebhookLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	key := e.key("ws")
	var v struct {
		ID          string          `json:"id"`
		RateLimit   json.RawMessage `json:"rate_limit"`
		MaxInFlight json.RawMessage `json:"max_in_flight"`
		Circuit     struct {
			State string `json:"state"`
		} `json:"circuit"`
	}
	r := e.must(201, call{route: "POST /v1/webhooks", key: key, body: map[string]any{
		"url": "https://example.com/h", "events": []string{"*"}, "rate_limit": map[string]any{"per_second": 2.5}, "max_in_flight": 4,
	}})
	r.decode(t, &v)
	if string(v.RateLimit) != `{"per_second":2.5,"burst":3}` || string(v.MaxInFlight) != "4" || v.Circuit.State != "closed" {
		t.Fatalf("created %s", r.body)
	}
	id := map[string]string{"id": v.ID}
	r = e.must(200, call{route: "GET /v1/webhooks/{id}", key: key, params: id})
	r.decode(t, &v)
	if string(v.RateLimit) != `{"per_second":2.5,"burst":3}` || string(v.MaxInFlight) != "4" {
		t.Fatalf("read %s", r.body)
	}
	r = e.must(200, call{route: "PATCH /v1/webhooks/{id}", key: key, params: id, body: `{"rate_limit":{"per_second":10,"burst":20},"max_in_flight":null}`})
	r.decode(t, &v)
	if string(v.RateLimit) != `{"per_second":10,"burst":20}` || string(v.MaxInFlight) != "null" {
		t.Fatalf("patched %s", r.body)
	}
	r = e.must(200, call{route: "PATCH /v1/webhooks/{id}", key: key, params: id, body: `{"description":"x"}`})
	r.decode(t, &v)
	if string(v.RateLimit) != `{"per_second":10,"burst":20}` {
		t.Fatalf("a patch without limits changed them: %s", r.body)
	}
	r = e.must(200, call{route: "PATCH /v1/webhooks/{id}", key: key, params: id, body: `{"rate_limit":null,"max_in_flight":1}`})
	r.decode(t, &v)
	if string(v.RateLimit) != "null" || string(v.MaxInFlight) != "1" {
		t.Fatalf("removed %s", r.body)
	}

	before, _ := e.st.GetSubscription(context.Background(), "ws", v.ID)
	for _, tc := range []struct{ body, want string }{
		{`{"rate_limit":{"per_second":0}}`, "rate_limit.per_second must be from 0.01 to 500"},
		{`{"rate_limit":{"per_second":501}}`, "rate_limit.per_second must be from 0.01 to 500"},
		{`{"rate_limit":{"per_second":-1}}`, "rate_limit.per_second"},
		{`{"rate_limit":{"burst":5}}`, "rate_limit must be an object {per_second, burst?}"},
		{`{"rate_limit":{"per_second":5,"burst":0}}`, "rate_limit.burst must be an integer from 1 to 1000"},
		{`{"rate_limit":{"per_second":5,"burst":1.5}}`, "rate_limit.burst"},
		{`{"rate_limit":{"per_second":5,"burst":1001}}`, "rate_limit.burst"},
		{`{"rate_limit":{"per_second":5,"every":1}}`, "rate_limit must be an object"},
		{`{"rate_limit":"fast"}`, "rate_limit must be an object"},
		{`{"rate_limit":10}`, "rate_limit must be an object"},
		{`{"max_in_flight":0}`, "max_in_flight must be an integer from 1 to 100"},
		{`{"max_in_flight":101}`, "max_in_flight must be an integer from 1 to 100"},
		{`{"max_in_flight":2.5}`, "max_in_flight"},
		{`{"max_in_flight":"2"}`, "max_in_flight"},
	} {
		for _, route := range []string{"POST /v1/webhooks", "PATCH /v1/webhooks/{id}"} {
			body := tc.body
			if strings.HasPrefix(route, "POST") {
				body = `{"url":"https://example.com/h","events":["*"],` + strings.TrimPrefix(body, "{")
			}
			r := e.do(call{route: route, key: key, params: id, body: body})
			code, msg := "", ""
			if r.status == 400 {
				code, msg = r.errorCode(t)
			}
			if r.status != 400 || code != "invalid_request" || !strings.Contains(msg, tc.want) {
				t.Errorf("%s %s: %d %s; want 400 naming %q", route, tc.body, r.status, r.body, tc.want)
			}
		}
	}
	after, _ := e.st.GetSubscription(context.Background(), "ws", v.ID)
	list, _, _ := e.st.ListSubscriptions(context.Background(), "ws", 100, "")
	if len(list) != 1 || !after.UpdatedAt.Equal(before.UpdatedAt) || after.MaxInFlight != 1 || after.RateLimit != nil {
		t.Fatalf("refused requests changed state: %d subscriptions, %+v", len(list), after)
	}
}
