package doors

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/verify"
)

// door is one inbound door with its sample in events/.
type door struct {
	name    string
	sample  string
	handler func(*Doors) handlerFunc
	scope   string                                // the dedupe scope of the sample's delivery id; "" for doors that do not dedupe
	key     string                                // the sample's delivery id
	forge   func(*events.APIGatewayV2HTTPRequest) // replaces the sample's proof with a wrong one
	check   func(t *testing.T, r reply, m queue.Inbound)
}

const stripeEventID = "evt_1QdZx82eZvKYlo2CwT9yE3aB"

var sampleDoors = []door{
	{
		name: "webhook", sample: "inbound-webhook.json", handler: func(d *Doors) handlerFunc { return d.Webhook },
		scope: "webhook.stripe", key: stripeEventID,
		forge: func(req *events.APIGatewayV2HTTPRequest) {
			signStripe(req, "whsec_someone_elses_secret", sampleTime(*req))
		},
		check: func(t *testing.T, r reply, m queue.Inbound) {
			if r.body["accepted"] != true || r.body["role"] != "webhook.stripe.invoice_paid" {
				t.Errorf("reply %s", r.raw)
			}
			if m.Source != "webhook.stripe" || m.Event == nil || m.Event.Type != "webhook.stripe.invoice_paid" ||
				m.MessageID != testIDs.Derive("msg", "default", "webhook.stripe", stripeEventID) {
				t.Errorf("message %+v", m)
			}
		},
	},
	{
		name: "telegram", sample: "inbound-telegram.json", handler: func(d *Doors) handlerFunc { return d.Telegram },
		scope: "telegram:telegram", key: "912345678",
		forge: func(req *events.APIGatewayV2HTTPRequest) {
			req.Headers["x-telegram-bot-api-secret-token"] = "someone-elses-token"
		},
		check: func(t *testing.T, r reply, m queue.Inbound) {
			thread := testIDs.Thread("default", "telegram", "111111111")
			if r.body["accepted"] != true || r.body["thread_id"] != thread || r.body["run_id"] != m.RunID || m.RunID == "" {
				t.Errorf("reply %s, run %s", r.raw, m.RunID)
			}
			if m.ThreadID != thread || m.Channel != "telegram" || m.ExternalID != "111111111" || m.Text != "Hello, agent" || m.User != "ada_l" || m.Event != nil ||
				m.Source != "telegram" || m.TelegramSource != "telegram" {
				t.Errorf("message %+v", m)
			}
		},
	},
	{
		name: "binding", sample: "inbound-binding.json", handler: func(d *Doors) handlerFunc { return d.Binding },
		forge: func(req *events.APIGatewayV2HTTPRequest) {
			req.Headers["x-hookgate-signature"] = hmacHex("someone-elses-secret", req.Body)
		},
		check: func(t *testing.T, r reply, m queue.Inbound) {
			if r.body["accepted"] != true || r.body["role"] != "binding.status" {
				t.Errorf("reply %s", r.raw)
			}
			b := m.Binding
			if b == nil || b.Channel != "slack" || b.BindingID != "T024BE7LD:C0123456789" || b.Status != "connected" || b.Detail != "bot added to #support" {
				t.Errorf("message %+v, binding %+v", m, b)
			}
		},
	},
	{
		name: "trigger", sample: "integrations-trigger.json", handler: func(d *Doors) handlerFunc { return d.Trigger },
		forge: func(req *events.APIGatewayV2HTTPRequest) {
			req.Headers["x-hookgate-signature"] = hmacHex("someone-elses-secret", req.Body)
		},
		check: func(t *testing.T, r reply, m queue.Inbound) {
			key := "zap-218734562-run-0001" // the body's event_id
			if r.body["message_id"] != testIDs.Derive("msg", "default", "trigger", "trigger", key) || r.body["run_id"] != testIDs.Derive("run", "default", "trigger", "trigger", key) ||
				r.body["thread_id"] != testIDs.Thread("default", "zapier", "lead-4821") || r.body["run_id"] == ids.Derive("run", "default", "trigger", key) {
				t.Errorf("reply %s", r.raw)
			}
			if m.Source != "trigger" || m.WorkspaceID != "default" || m.Channel != "zapier" || !strings.Contains(m.Text, "<jenny.rosen@example.com>") {
				t.Errorf("message %+v", m)
			}
		},
	},
}

// request is the door's sample as its sender would send it now: a Stripe signature is made
// afresh, as Stripe signs every attempt.
func (dr door) request(t *testing.T, h *harness) events.APIGatewayV2HTTPRequest {
	t.Helper()
	req := sample(t, dr.sample)
	if req.Headers["stripe-signature"] != "" {
		signStripe(&req, devStripeSecret, h.clock.now())
	}
	return req
}

func (dr door) post(t *testing.T, h *harness) reply {
	t.Helper()
	return invoke(t, dr.handler(h.doors), dr.request(t, h))
}

// The samples of events/ are accepted as they are, at the time they were made, when the
// workspace holds the matching source or secret; the same requests with another proof are not.
func TestSampleEventsAreAccepted(t *testing.T) {
	for _, dr := range sampleDoors {
		t.Run(dr.name, func(t *testing.T) {
			req := sample(t, dr.sample)
			h := newHarness(t, sampleTime(req))
			r := invoke(t, dr.handler(h.doors), req)
			if r.status != http.StatusAccepted || r.header["content-type"] != "application/json" {
				t.Fatalf("sample: %d %s", r.status, r.raw)
			}
			if len(h.sqs.accepted) != 1 {
				t.Fatalf("%d messages queued, want 1", len(h.sqs.accepted))
			}
			m := h.sqs.accepted[0]
			if m.Version != queue.InboundVersion || m.WorkspaceID != "default" || !m.ReceivedAt.Equal(sampleTime(req)) || m.GroupID() == "" {
				t.Errorf("message %+v", m)
			}
			dr.check(t, r, m)
			if dr.scope != "" && !h.store.claimed("default", dr.scope, dr.key) {
				t.Errorf("delivery id %s not claimed in scope %s", dr.key, dr.scope)
			}

			forged := sample(t, dr.sample)
			dr.forge(&forged)
			if r := invoke(t, dr.handler(newHarness(t, sampleTime(req)).doors), forged); r.status != http.StatusUnauthorized || r.errorCode() != "unauthorized" {
				t.Errorf("forged proof: %d %s, want 401", r.status, r.raw)
			}
		})
	}
	t.Run("stale stripe signature", func(t *testing.T) {
		req := sample(t, "inbound-webhook.json")
		h := newHarness(t, sampleTime(req).Add(verify.DefaultTolerance+time.Second))
		if r := invoke(t, h.doors.Webhook, req); r.status != http.StatusUnauthorized {
			t.Fatalf("%d %s, want 401", r.status, r.raw)
		}
	})
}

// When the queue refuses, the door answers 503 with a JSON error that tells nothing of the cause
// and forgets the delivery id it claimed, so that the sender's retry is processed.
func TestQueueRefusalReleasesTheClaim(t *testing.T) {
	for _, dr := range sampleDoors {
		t.Run(dr.name, func(t *testing.T) {
			h := newHarness(t, sampleTime(sample(t, dr.sample)))
			h.sqs.fail(errors.New("ThrottlingException: rate exceeded for arn:aws:sqs:us-east-1:000000000000:InboundQueue.fifo"))
			r := dr.post(t, h)
			if r.status != http.StatusServiceUnavailable || r.errorCode() != "unavailable" || r.header["content-type"] != "application/json" {
				t.Fatalf("queue refuses: %d %s, want 503 with a JSON error", r.status, r.raw)
			}
			if strings.Contains(r.raw, "Throttling") || strings.Contains(r.raw, "arn:") {
				t.Errorf("the error shows its cause: %s", r.raw)
			}
			if dr.scope != "" {
				if h.store.claimed("default", dr.scope, dr.key) || len(h.store.released) != 1 || h.store.released[0] != claimKey("default", dr.scope, dr.key) {
					t.Fatalf("claim not released: released %q", h.store.released)
				}
			}

			h.sqs.fail(nil)
			h.clock.advance(time.Minute) // the sender retries
			r = dr.post(t, h)
			if r.status != http.StatusAccepted || (dr.name != "trigger" && r.body["accepted"] != true) {
				t.Fatalf("retry: %d %s, want 202", r.status, r.raw)
			}
			if sends, accepted := h.sqs.counts(); sends != 2 || accepted != 1 {
				t.Fatalf("%d sends, %d queued; want 2 and 1", sends, accepted)
			}
		})
	}
}

// dedupingDoors are the doors that remember delivery ids.
func dedupingDoors() []door {
	var out []door
	for _, dr := range sampleDoors {
		if dr.scope != "" {
			out = append(out, dr)
		}
	}
	return out
}

// A copy whose resend fails must not release the claim the first delivery holds.
func TestFailedResendKeepsTheFirstClaim(t *testing.T) {
	for _, dr := range dedupingDoors() {
		t.Run(dr.name, func(t *testing.T) {
			h := newHarness(t, sampleTime(sample(t, dr.sample)))
			if r := dr.post(t, h); r.status != http.StatusAccepted {
				t.Fatalf("first: %d %s", r.status, r.raw)
			}
			h.clock.advance(30 * time.Second)
			h.sqs.fail(errors.New("ServiceUnavailable"))
			if r := dr.post(t, h); r.status != http.StatusServiceUnavailable {
				t.Fatalf("copy while the queue refuses: %d %s, want 503", r.status, r.raw)
			}
			if !h.store.claimed("default", dr.scope, dr.key) || len(h.store.released) != 0 {
				t.Fatalf("the first delivery's claim was released (%q)", h.store.released)
			}
			h.sqs.fail(nil)
			h.clock.advance(30 * time.Second)
			if r := dr.post(t, h); r.status != http.StatusOK || r.body["accepted"] != false {
				t.Fatalf("copy after: %d %s, want 200 accepted:false", r.status, r.raw)
			}
			if _, accepted := h.sqs.counts(); accepted != 1 {
				t.Fatalf("%d messages queued, want 1", accepted)
			}
		})
	}
}

// A claim the door could not release (the store failed too) still does not lose a message whose
// sender retries within SQS's window: the retry is sent again and this time queued.
func TestUnreleasedClaimRetriedSoonIsQueued(t *testing.T) {
	for _, dr := range dedupingDoors() {
		t.Run(dr.name, func(t *testing.T) {
			h := newHarness(t, sampleTime(sample(t, dr.sample)))
			h.sqs.fail(errors.New("ServiceUnavailable"))
			h.store.releaseErr = errors.New("ProvisionedThroughputExceededException")
			if r := dr.post(t, h); r.status != http.StatusServiceUnavailable || r.errorCode() != "unavailable" {
				t.Fatalf("first: %d %s, want 503", r.status, r.raw)
			}
			h.sqs.fail(nil)
			h.clock.advance(time.Minute)
			if r := dr.post(t, h); r.status != http.StatusOK || r.body["accepted"] != false {
				t.Fatalf("retry: %d %s, want 200 accepted:false", r.status, r.raw)
			}
			if _, accepted := h.sqs.counts(); accepted != 1 {
				t.Fatalf("%d messages queued, want 1", accepted)
			}
		})
	}
}

// A store outage while claiming is a 503 and queues nothing.
func TestClaimFailureIsUnavailable(t *testing.T) {
	for _, dr := range dedupingDoors() {
		t.Run(dr.name, func(t *testing.T) {
			h := newHarness(t, sampleTime(sample(t, dr.sample)))
			h.store.claimErr = errors.New("RequestLimitExceeded")
			if r := dr.post(t, h); r.status != http.StatusServiceUnavailable || r.errorCode() != "unavailable" || strings.Contains(r.raw, "RequestLimit") {
				t.Fatalf("%d %s, want 503 with a safe JSON error", r.status, r.raw)
			}
			if sends, _ := h.sqs.counts(); sends != 0 {
				t.Fatalf("%d sends, want none", sends)
			}
		})
	}
}

// A copy of a delivery is acknowledged with 200 {"accepted":false}. When the first was seen so
// recently that its message may still be on its way, the copy is sent again with the same
// deduplication id (SQS drops it if the first made it); a copy seen later is not sent at all. A
// copy after the dedupe window is a new delivery.
func TestDuplicates(t *testing.T) {
	cases := []struct {
		after  time.Duration
		resend bool
	}{
		{10 * time.Second, true},
		{3*time.Minute + 59*time.Second, true},
		{4*time.Minute + 30*time.Second, false},
		{6 * time.Minute, false},
		{71 * time.Hour, false},
	}
	for _, dr := range dedupingDoors() {
		for _, c := range cases {
			t.Run(dr.name+" after "+c.after.String(), func(t *testing.T) {
				h := newHarness(t, sampleTime(sample(t, dr.sample)))
				if r := dr.post(t, h); r.status != http.StatusAccepted || r.body["accepted"] != true {
					t.Fatalf("first: %d %s", r.status, r.raw)
				}
				h.clock.advance(c.after)
				r := dr.post(t, h)
				if r.status != http.StatusOK || r.body["accepted"] != false {
					t.Fatalf("copy: %d %s, want 200 accepted:false", r.status, r.raw)
				}
				sends, accepted := h.sqs.counts()
				if !c.resend {
					if r.raw != `{"accepted":false}` || sends != 1 {
						t.Fatalf("copy: %s and %d sends, want {\"accepted\":false} and only the first send", r.raw, sends)
					}
					return
				}
				first, again := h.sqs.sends[0], h.sqs.sends[len(h.sqs.sends)-1]
				if sends != 2 || aws.ToString(again.MessageDeduplicationId) != aws.ToString(first.MessageDeduplicationId) ||
					aws.ToString(again.MessageGroupId) != aws.ToString(first.MessageGroupId) {
					t.Fatalf("%d sends; resent with deduplication id %s and group %s, want %s and %s", sends,
						aws.ToString(again.MessageDeduplicationId), aws.ToString(again.MessageGroupId),
						aws.ToString(first.MessageDeduplicationId), aws.ToString(first.MessageGroupId))
				}
				if accepted != 1 {
					t.Fatalf("%d messages queued, want SQS to drop the copy", accepted)
				}
			})
		}
		t.Run(dr.name+" after the window", func(t *testing.T) {
			h := newHarness(t, sampleTime(sample(t, dr.sample)))
			if r := dr.post(t, h); r.status != http.StatusAccepted {
				t.Fatalf("first: %d %s", r.status, r.raw)
			}
			h.clock.advance(72*time.Hour + time.Second)
			if r := dr.post(t, h); r.status != http.StatusAccepted || r.body["accepted"] != true {
				t.Fatalf("after the window: %d %s, want 202 accepted:true", r.status, r.raw)
			}
			if _, accepted := h.sqs.counts(); accepted != 2 {
				t.Fatalf("%d messages queued, want 2", accepted)
			}
		})
	}
}

// webhookRequest is the webhook sample rewritten for workspace acme's hmac_sha256 source "shop".
func webhookRequest(t *testing.T, body string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	req := sample(t, "inbound-webhook.json")
	req.RawPath = "/v1/webhooks/generic/acme"
	req.RequestContext.HTTP.Path = req.RawPath
	req.PathParameters = map[string]string{"workspace_id": "acme"}
	req.RawQueryString, req.QueryStringParameters = "source=shop", map[string]string{"source": "shop"}
	delete(req.Headers, "stripe-signature")
	delete(req.Headers, "content-length")
	req.Body = body
	req.Headers["x-hookgate-signature"] = hmacHex(shopSecret, body)
	return req
}

const shopSecret = "shop-signing-secret-0123"

func withShop(t *testing.T) *harness {
	h := newHarness(t, time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	h.sources.put(store.Source{WorkspaceID: "acme", Name: "shop", Scheme: string(verify.HMACSHA256), Secrets: []store.SigningSecret{{Value: shopSecret}}})
	return h
}

// The event the worker records keeps the payload byte for byte: white space, key order,
// duplicate keys, escapes and <, > and & as sent (encoding/json would rewrite all of these).
func TestStoredEventKeepsThePayload(t *testing.T) {
	bodies := map[string]string{
		"indented":     "{\r\n\t\"type\" : \"order.created\",\r\n\t\"zeta\": \"<b>Tom & Jerry</b>\",\n  \"alpha\":[1, 2.50, 1e3, -0.0]\n}",
		"escapes":      `{"id":"ord_1","note":"caf\u00e9 \/ \"q\" \u003c\u0026","type":"order.paid"}`,
		"unicode":      `{"text":"日本語 🙂 &amp;","type":"message"}`,
		"spaces":       "  \n{\"type\":\"a&b\"}\n\n",
		"repeated key": `{"type":"first","type":"second","b":{},"a":[]}`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			h := withShop(t)
			r := invoke(t, h.doors.Webhook, webhookRequest(t, body))
			if r.status != http.StatusAccepted {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			m := h.sqs.accepted[0] // decoded from the SQS body, as the worker decodes it
			data := m.Event.Data
			if !strings.HasSuffix(data, `"payload":`+body+"}") || !json.Valid([]byte(data)) {
				t.Fatalf("event data %q does not end with the payload %q", data, body)
			}
			var ev struct {
				Source  string          `json:"source"`
				Role    string          `json:"role"`
				Payload json.RawMessage `json:"payload"`
			}
			if err := json.Unmarshal([]byte(data), &ev); err != nil || ev.Source != "shop" || ev.Role != m.Event.Type ||
				!bytes.Equal(ev.Payload, bytes.TrimSpace([]byte(body))) {
				t.Fatalf("event %+v (%v) from data %q", ev, err, data)
			}
		})
	}

	t.Run("telegram update", func(t *testing.T) {
		body := "{ \"update_id\": 77,\n  \"my_chat_member\": {\"chat\": {\"id\": 5}, \"note\": \"<buy & hold>\"} }"
		req := sample(t, "inbound-telegram.json")
		req.Body = body
		delete(req.Headers, "content-length")
		h := newHarness(t, sampleTime(req))
		r := invoke(t, h.doors.Telegram, req)
		if r.status != http.StatusAccepted || r.body["role"] != "telegram.my_chat_member" {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		m := h.sqs.accepted[0]
		if m.Event == nil || !strings.HasSuffix(m.Event.Data, `"update":`+body+"}") || !json.Valid([]byte(m.Event.Data)) || m.RunID != "" {
			t.Fatalf("message %+v", m)
		}
	})
}

// A role route that selects the webhook's role starts a run with its agent on the thread of the
// event's source identifier; without one the event is only recorded.
func TestRoleRoutes(t *testing.T) {
	const role = "webhook.stripe.invoice_paid"
	route := func(pattern, agent string) store.RoleRoute { return store.RoleRoute{Pattern: pattern, Agent: agent} }
	cases := []struct {
		name   string
		routes []store.RoleRoute
		agent  string // "" means no run
	}{
		{"no routes", nil, ""},
		{"no match", []store.RoleRoute{route("webhook.github.*", "gh"), route("webhook.stripe.charge_failed", "cf")}, ""},
		{"prefix", []store.RoleRoute{route("webhook.stripe.*", "billing")}, "billing"},
		{"catch-all", []store.RoleRoute{route("*", "all")}, "all"},
		{"exact beats prefix", []store.RoleRoute{route("*", "all"), route("webhook.stripe.*", "billing"), route(role, "invoices")}, "invoices"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dr := sampleDoors[0]
			h := newHarness(t, sampleTime(sample(t, dr.sample)))
			h.store.routes["default"] = c.routes
			r := dr.post(t, h)
			if r.status != http.StatusAccepted || r.body["role"] != role {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			m := h.sqs.accepted[0]
			if m.Event == nil || m.Event.Type != role {
				t.Fatalf("message %+v: the event is recorded either way", m)
			}
			if c.agent == "" {
				if m.ThreadID != "" || m.RunID != "" || m.Agent != "" || m.Text != "" || m.Group == "" || r.body["thread_id"] != nil || r.body["run_id"] != nil {
					t.Fatalf("no route, yet message %+v, reply %s", m, r.raw)
				}
				return
			}
			thread := testIDs.Thread("default", "webhook.stripe", stripeEventID)
			if m.ThreadID != thread || m.RunID == "" || m.Agent != c.agent || m.Channel != "webhook.stripe" ||
				m.ExternalID != stripeEventID || m.Text != role || m.GroupID() != thread {
				t.Fatalf("message %+v, want a run of %s on %s", m, c.agent, thread)
			}
			if r.body["thread_id"] != m.ThreadID || r.body["run_id"] != m.RunID {
				t.Fatalf("reply %s, message thread %s run %s", r.raw, m.ThreadID, m.RunID)
			}
		})
	}

	t.Run("routes unreadable", func(t *testing.T) {
		dr := sampleDoors[0]
		h := newHarness(t, sampleTime(sample(t, dr.sample)))
		h.store.routesErr = errors.New("InternalServerError")
		if r := dr.post(t, h); r.status != http.StatusServiceUnavailable || r.errorCode() != "unavailable" {
			t.Fatalf("%d %s, want 503", r.status, r.raw)
		}
		if h.store.claimed("default", dr.scope, dr.key) {
			t.Fatal("the delivery id was claimed, so the sender's retry would be dropped")
		}
		if sends, _ := h.sqs.counts(); sends != 0 {
			t.Fatalf("%d sends, want none", sends)
		}
	})
}

// A claim whose request died before queueing (never marked queued) does not swallow the
// delivery: a copy long after queues the message itself, and still answers as a duplicate.
func TestDeadClaimantsMessageIsQueuedByACopy(t *testing.T) {
	for _, dr := range dedupingDoors() {
		t.Run(dr.name, func(t *testing.T) {
			h := newHarness(t, sampleTime(sample(t, dr.sample)))
			if _, err := h.store.ClaimDedupe(t.Context(), "default", dr.scope, dr.key, DefaultDedupeWindow); err != nil {
				t.Fatal(err)
			}
			h.clock.advance(2 * time.Hour)
			if r := dr.post(t, h); r.status != http.StatusOK || r.body["accepted"] != false {
				t.Fatalf("copy: %d %s, want 200 accepted:false", r.status, r.raw)
			}
			if sends, accepted := h.sqs.counts(); sends != 1 || accepted != 1 {
				t.Fatalf("%d sends, %d queued; want the copy to queue the message", sends, accepted)
			}
			h.clock.advance(2 * time.Hour)
			dr.post(t, h)
			if sends, _ := h.sqs.counts(); sends != 1 {
				t.Fatalf("%d sends: once queued and marked, a later copy must not queue again", sends)
			}
		})
	}
}

// The trigger and binding doors accept the scheme of their source and nothing else: with an
// hmac_sha256 source a plain secret or a Bearer token is refused even when it is the right secret,
// since either would let whoever saw it once send any body; a bearer source takes only
// Authorization: Bearer; a shared_secret source opens neither door, whatever it is sent. The
// default workspace's stack secret is the exception the Zapier/Make door calls for: an HMAC key or
// a Bearer token.
func TestHookgateDoorsAcceptOnlyTheSourcesScheme(t *testing.T) {
	const secret = "acme-door-secret-0123456789"
	proofs := map[verify.Scheme]func(body string) map[string]string{
		verify.HMACSHA256: func(body string) map[string]string {
			return map[string]string{"x-hookgate-signature": hmacHex(secret, body)}
		},
		verify.Bearer:       func(string) map[string]string { return map[string]string{"authorization": "Bearer " + secret} },
		verify.SharedSecret: func(string) map[string]string { return map[string]string{"x-hookgate-inbound-secret": secret} },
	}
	both := func(a, b map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range a {
			out[k] = v
		}
		for k, v := range b {
			out[k] = v
		}
		return out
	}
	for _, dr := range sampleDoors {
		if dr.name != "trigger" && dr.name != "binding" {
			continue
		}
		for scheme := range proofs {
			for proof, sign := range proofs {
				t.Run(dr.name+" "+string(scheme)+" source, "+string(proof)+" proof", func(t *testing.T) {
					h := newHarness(t, sampleTime(sample(t, dr.sample)))
					h.sources.put(store.Source{WorkspaceID: "acme", Name: dr.name, Scheme: string(scheme), Secrets: []store.SigningSecret{{Value: secret}}})
					req := sample(t, dr.sample)
					req.QueryStringParameters = map[string]string{"workspace_id": "acme"}
					for _, name := range []string{"authorization", "x-hookgate-signature", "x-hookgate-inbound-secret"} {
						delete(req.Headers, name)
					}
					for k, v := range sign(req.Body) {
						req.Headers[k] = v
					}
					r := invoke(t, dr.handler(h.doors), req)
					if scheme == verify.SharedSecret {
						if r.status != http.StatusUnauthorized || len(h.sqs.accepted) != 0 {
							t.Fatalf("a shared_secret source opened the %s door: %d %s", dr.name, r.status, r.raw)
						}
						return
					}
					if proof == scheme {
						if r.status != http.StatusAccepted || len(h.sqs.accepted) != 1 || h.sqs.accepted[0].WorkspaceID != "acme" {
							t.Fatalf("the source's own scheme: %d %s", r.status, r.raw)
						}
						return
					}
					if r.status != http.StatusUnauthorized || r.errorCode() != "unauthorized" {
						t.Fatalf("%d %s, want 401", r.status, r.raw)
					}
					// With the source's own proof added it is accepted: only that proof counts.
					req.Headers = both(req.Headers, proofs[scheme](req.Body))
					if r := invoke(t, dr.handler(h.doors), req); r.status != http.StatusAccepted {
						t.Fatalf("with the right proof too: %d %s", r.status, r.raw)
					}
					if sends, _ := h.sqs.counts(); sends != 1 {
						t.Fatalf("%d sends, want only the one with the right proof", sends)
					}
				})
			}
		}
		t.Run(dr.name+" default workspace, stack secret", func(t *testing.T) {
			// The stack's inbound secret is an HMAC key or a Bearer token, never a plain header.
			h := newHarness(t, sampleTime(sample(t, dr.sample)))
			for name, tc := range map[string]struct {
				headers map[string]string
				status  int
			}{
				"plain secret": {map[string]string{"x-hookgate-inbound-secret": devInboundSecret}, http.StatusUnauthorized},
				"wrong bearer": {map[string]string{"authorization": "Bearer " + devInboundSecret + "x"}, http.StatusUnauthorized},
				"bearer":       {map[string]string{"authorization": "Bearer " + devInboundSecret}, http.StatusAccepted},
			} {
				req := sample(t, dr.sample)
				delete(req.Headers, "x-hookgate-signature")
				for k, v := range tc.headers {
					req.Headers[k] = v
				}
				if r := invoke(t, dr.handler(h.doors), req); r.status != tc.status {
					t.Errorf("%s: %d %s, want %d", name, r.status, r.raw, tc.status)
				}
			}
			if sends, _ := h.sqs.counts(); sends != 1 {
				t.Fatalf("%d sends, want the bearer one", sends)
			}
		})
	}
}
