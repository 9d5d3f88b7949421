package verify

import (
	"bytes"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v93/github"
	"github.com/slack-go/slack"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stripe/stripe-go/v85/webhook"
)

// Requests signed, and signatures judged, by each provider's own Go library. The libraries that
// read the clock themselves are given requests signed now.

// lowerHeaders is what API Gateway HTTP API hands a function: names lower-cased, values joined.
func lowerHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[strings.ToLower(k)] = strings.Join(v, ",")
	}
	return out
}

func TestStripeGoSignsTheKnownAnswer(t *testing.T) {
	got := hex.EncodeToString(webhook.ComputeSignature(time.Unix(1614265330, 0), []byte(stripeKATBody), stripeKATSecret))
	if got != stripeKATMAC {
		t.Fatalf("stripe-go computes %s, the known answer says %s", got, stripeKATMAC)
	}
}

func TestStripeGo(t *testing.T) {
	const oldSecret, newSecret = "whsec_8a7c1f0e2b3d4c5e6f708192a3b4c5d6", "whsec_rotated_0f1e2d3c4b5a69788796a5b4"
	v := fixture{scheme: Stripe}.verifier(t, oldSecret, newSecret)
	for _, tt := range []struct {
		name    string
		payload webhook.UnsignedPayload
		now     time.Time
		reason  string // "" when it verifies
	}{
		{"signed now", webhook.UnsignedPayload{Payload: testBody, Secret: newSecret, Timestamp: testNow}, testNow, ""},
		{"old secret", webhook.UnsignedPayload{Payload: testBody, Secret: oldSecret, Timestamp: testNow}, testNow, ""},
		{"4 minutes old", webhook.UnsignedPayload{Payload: testBody, Secret: newSecret, Timestamp: testNow.Add(-4 * time.Minute)}, testNow, ""},
		{"empty body", webhook.UnsignedPayload{Payload: []byte{}, Secret: newSecret, Timestamp: testNow}, testNow, ""},
		{"6 minutes old", webhook.UnsignedPayload{Payload: testBody, Secret: newSecret, Timestamp: testNow.Add(-6 * time.Minute)}, testNow, reasonTimestamp},
		{"6 minutes ahead", webhook.UnsignedPayload{Payload: testBody, Secret: newSecret, Timestamp: testNow.Add(6 * time.Minute)}, testNow, reasonTimestamp},
		{"other secret", webhook.UnsignedPayload{Payload: testBody, Secret: "whsec_other", Timestamp: testNow}, testNow, reasonSignature},
		{"v0 scheme only", webhook.UnsignedPayload{Payload: testBody, Secret: newSecret, Timestamp: testNow, Scheme: "v0"}, testNow, reasonMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := webhook.GenerateTestSignedPayload(&tt.payload)
			res, err := v.Verify(lookup(map[string]string{"stripe-signature": p.Header}), p.Payload, tt.now)
			if tt.reason != "" {
				expectFailure(t, err, tt.reason, oldSecret, newSecret, hex.EncodeToString(p.Signature))
				return
			}
			if err != nil {
				t.Fatalf("Verify(%q): %v", p.Header, err)
			}
			if !res.Timestamp.Equal(p.Timestamp.Truncate(time.Second)) {
				t.Fatalf("Timestamp %v, want %v", res.Timestamp, p.Timestamp)
			}
			tampered := append(bytes.Clone(p.Payload), '\n')
			_, err = v.Verify(lookup(map[string]string{"stripe-signature": p.Header}), tampered, tt.now)
			expectFailure(t, err, reasonSignature)
		})
	}

	// Stripe rolling its secret sends one v1 per secret; stripe-go and we both take either.
	at := time.Now()
	a := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: testBody, Secret: "whsec_expired", Timestamp: at})
	b := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: testBody, Secret: newSecret, Timestamp: at})
	header := a.Header + ",v1=" + hex.EncodeToString(b.Signature)
	if err := webhook.ValidatePayload(testBody, header, newSecret); err != nil {
		t.Fatalf("stripe-go rejects the two-signature header: %v", err)
	}
	if _, err := v.Verify(lookup(map[string]string{"stripe-signature": header}), testBody, at); err != nil {
		t.Fatalf("two signatures: %v", err)
	}

	// And the other way: what our reference signer sends, stripe-go accepts, and we do too.
	f := fixtureOf(t, Stripe)
	ours := f.sign(t, newSecret, testBody, at)["stripe-signature"]
	if err := webhook.ValidatePayload(testBody, ours, newSecret); err != nil {
		t.Fatalf("stripe-go rejects our reference signature: %v", err)
	}
	if err := webhook.ValidatePayload(append(bytes.Clone(testBody), ' '), ours, newSecret); err == nil {
		t.Fatal("stripe-go accepts a tampered body")
	}
}

func TestGoGitHub(t *testing.T) {
	const secret = "It's a Secret to Everybody"
	v := fixture{scheme: GitHub}.verifier(t, "previous secret", secret)
	f := fixtureOf(t, GitHub)
	for _, tt := range []struct {
		name   string
		signer string
		body   []byte
	}{
		{"json", secret, testBody},
		{"empty", secret, []byte{}},
		{"docs payload", secret, []byte("Hello, World!")},
		{"wrong secret", "not the secret", testBody},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := f.sign(t, tt.signer, tt.body, testNow)
			// A request as GitHub sends it, judged by go-github's ValidatePayload.
			r, err := http.NewRequest(http.MethodPost, "https://hooks.example.com/github", bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set(github.SHA256SignatureHeader, h["x-hub-signature-256"])
			r.Header.Set(github.DeliveryIDHeader, ghID)
			payload, ghErr := github.ValidatePayload(r, []byte(secret))
			res, err := v.Verify(lookup(lowerHeaders(r.Header)), tt.body, testNow)
			if (ghErr == nil) != (err == nil) {
				t.Fatalf("go-github says %v, we say %v", ghErr, err)
			}
			if err != nil {
				expectFailure(t, err, reasonSignature, secret, h["x-hub-signature-256"])
				return
			}
			if !bytes.Equal(payload, tt.body) || res.DeliveryID != github.DeliveryID(r) {
				t.Fatalf("payload %q, delivery %q (go-github %q)", payload, res.DeliveryID, github.DeliveryID(r))
			}
			if err := github.ValidateSignature(h["x-hub-signature-256"], append(bytes.Clone(tt.body), 'x'), []byte(secret)); err == nil {
				t.Fatal("go-github accepts a tampered body")
			}
		})
	}
}

func TestSlackGo(t *testing.T) {
	const secret = "e6b19c573432dcc6b075501d51b51bb8"
	v := fixture{scheme: Slack}.verifier(t, secret)
	f := fixtureOf(t, Slack)
	now := time.Now() // slack-go reads the clock itself
	valid := f.sign(t, secret, testBody, now)
	for _, tt := range []struct {
		name    string
		headers map[string]string
		body    []byte
	}{
		{"valid", valid, testBody},
		{"valid, empty body", f.sign(t, secret, nil, now), nil},
		{"tampered body", valid, append(bytes.Clone(testBody), ' ')},
		{"wrong secret", f.sign(t, "0123456789abcdef0123456789abcdef", testBody, now), testBody},
		{"stale", f.sign(t, secret, testBody, now.Add(-10*time.Minute)), testBody},
		{"future", f.sign(t, secret, testBody, now.Add(10*time.Minute)), testBody},
		{"no v0=", map[string]string{"x-slack-signature": strings.TrimPrefix(valid["x-slack-signature"], "v0="),
			"x-slack-request-timestamp": valid["x-slack-request-timestamp"]}, testBody},
		{"short", map[string]string{"x-slack-signature": valid["x-slack-signature"][:40],
			"x-slack-request-timestamp": valid["x-slack-request-timestamp"]}, testBody},
		{"no timestamp", map[string]string{"x-slack-signature": valid["x-slack-signature"]}, testBody},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, val := range tt.headers {
				h.Set(k, val)
			}
			slackErr := func() error {
				sv, err := slack.NewSecretsVerifier(h, secret)
				if err != nil {
					return err
				}
				if _, err := sv.Write(tt.body); err != nil {
					return err
				}
				return sv.Ensure()
			}()
			_, err := v.Verify(lookup(tt.headers), tt.body, now)
			if (slackErr == nil) != (err == nil) {
				t.Fatalf("slack-go says %v, we say %v", slackErr, err)
			}
			if tt.name[:5] == "valid" && err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestStandardWebhooksLibrary(t *testing.T) {
	wh, err := standardwebhooks.NewWebhook(swNew)
	if err != nil {
		t.Fatal(err)
	}
	v := fixture{scheme: StandardWebhooks}.verifier(t, swOld, swNew)
	sign := func(id string, at time.Time, body []byte) string {
		sig, err := wh.Sign(id, at, body)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	for _, tt := range []struct {
		name   string
		id     string
		at     time.Time
		body   []byte
		reason string
	}{
		{"signed now", "msg_2LJJlq5mhXxc5dd3spmFG8wsyyB", testNow, testBody, ""},
		{"empty body", "msg_empty", testNow, []byte{}, ""},
		{"long id", "msg_" + strings.Repeat("x", 300), testNow, testBody, ""},
		{"4 minutes old", "msg_1", testNow.Add(-4 * time.Minute), testBody, ""},
		{"6 minutes old", "msg_1", testNow.Add(-6 * time.Minute), testBody, reasonTimestamp},
		{"6 minutes ahead", "msg_1", testNow.Add(6 * time.Minute), testBody, reasonTimestamp},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sig := sign(tt.id, tt.at, tt.body)
			for _, prefix := range []string{"webhook-", "svix-"} {
				h := map[string]string{prefix + "id": tt.id, prefix + "timestamp": unix(tt.at), prefix + "signature": sig}
				res, err := v.Verify(lookup(h), tt.body, testNow)
				if tt.reason != "" {
					expectFailure(t, err, tt.reason, swOld, swNew, sig[3:])
					continue
				}
				if err != nil {
					t.Fatalf("%s*: Verify: %v", prefix, err)
				}
				if res.DeliveryID != tt.id || !res.Timestamp.Equal(tt.at.Truncate(time.Second)) {
					t.Fatalf("Result %+v", res)
				}
				_, err = v.Verify(lookup(h), append(bytes.Clone(tt.body), '\n'), testNow)
				expectFailure(t, err, reasonSignature)
			}
		})
	}

	// The other way: the library judges our reference signer (it reads the clock itself).
	now := time.Now()
	f := fixtureOf(t, StandardWebhooks)
	h := http.Header{}
	for k, val := range f.sign(t, swNew, testBody, now) {
		h.Set(k, val)
	}
	if err := wh.Verify(testBody, h); err != nil {
		t.Fatalf("standard-webhooks rejects our reference signature: %v", err)
	}
	if err := wh.Verify(append(bytes.Clone(testBody), ' '), h); err == nil {
		t.Fatal("standard-webhooks accepts a tampered body")
	}
	// A list with the rotated-out secret's signature first, as senders do during a rotation.
	oldSig := f.sign(t, swOld, testBody, now)["webhook-signature"]
	h.Set("webhook-signature", oldSig+" "+h.Get("webhook-signature"))
	if err := wh.Verify(testBody, h); err != nil {
		t.Fatalf("standard-webhooks rejects a signature list: %v", err)
	}
	if _, err := v.Verify(lookup(lowerHeaders(h)), testBody, now); err != nil {
		t.Fatalf("a signature list: %v", err)
	}
}
