package verify

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v93/github"
	"github.com/slack-go/slack"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stripe/stripe-go/v85/webhook"
)

func fieldsOf(f []Field) map[string]string {
	out := map[string]string{}
	for _, h := range f {
		out[strings.ToLower(h.Name)] = h.Value
	}
	return out
}

// What Sign writes, the Verifier of the same scheme and secret accepts; another secret or a
// changed body it refuses.
func TestSignVerifiesForEveryScheme(t *testing.T) {
	for _, s := range Schemes() {
		if s == None {
			continue
		}
		t.Run(string(s), func(t *testing.T) {
			secret, other := "a-secret-of-sixteen+", "another-secret-16+++"
			if s == StandardWebhooks {
				secret, other = swNew, swOld
			}
			v, err := New(s, []string{secret}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			f, err := Sign(s, secret, testBody, "msg_1", testNow, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(lookup(fieldsOf(f)), testBody, testNow); err != nil {
				t.Fatalf("Verify(Sign): %v", err)
			}
			f, _ = Sign(s, other, testBody, "msg_1", testNow, Options{})
			if _, err := v.Verify(lookup(fieldsOf(f)), testBody, testNow); err == nil {
				t.Fatal("another secret verifies")
			}
		})
	}
	v, _ := New(HMACSHA256, []string{"a-secret-of-sixteen+"}, Options{Header: "X-Sig"})
	f, _ := Sign(HMACSHA256, "a-secret-of-sixteen+", testBody, "", testNow, Options{Header: "X-Sig"})
	if _, err := v.Verify(lookup(fieldsOf(f)), testBody, testNow); err != nil {
		t.Fatalf("hmac_sha256 with its own header: %v", err)
	}
	if _, err := Sign(StandardWebhooks, swNew, testBody, "a.b", testNow, Options{}); err == nil {
		t.Fatal("a webhook id with '.' is signed")
	}
	if _, err := Sign("rot13", "x", testBody, "", testNow, Options{}); err == nil {
		t.Fatal("an unknown scheme is signed")
	}
}

// The providers' own libraries accept what Sign writes.
func TestSignIsAcceptedByTheProvidersLibraries(t *testing.T) {
	now := time.Now() // the libraries read the clock themselves
	const secret = "whsec_provider_secret_0123456789"

	f := fieldsOf(must(Sign(Stripe, secret, testBody, "", now, Options{})))
	if err := webhook.ValidatePayload(testBody, f["stripe-signature"], secret); err != nil {
		t.Errorf("stripe-go: %v", err)
	}

	f = fieldsOf(must(Sign(GitHub, secret, testBody, "d-1", now, Options{})))
	if err := github.ValidateSignature(f["x-hub-signature-256"], testBody, []byte(secret)); err != nil {
		t.Errorf("go-github: %v", err)
	}

	h := http.Header{}
	for _, fl := range must(Sign(Slack, secret, testBody, "", now, Options{})) {
		h.Set(fl.Name, fl.Value)
	}
	sv, err := slack.NewSecretsVerifier(h, secret)
	if err == nil {
		_, _ = sv.Write(testBody)
		err = sv.Ensure()
	}
	if err != nil {
		t.Errorf("slack-go: %v", err)
	}

	wh, err := standardwebhooks.NewWebhook(swNew)
	if err != nil {
		t.Fatal(err)
	}
	h = http.Header{}
	for _, fl := range must(Sign(StandardWebhooks, swNew, testBody, "msg_1", now, Options{})) {
		h.Set(fl.Name, fl.Value)
	}
	if err := wh.Verify(bytes.Clone(testBody), h); err != nil {
		t.Errorf("standard-webhooks: %v", err)
	}
}

func must(f []Field, err error) []Field {
	if err != nil {
		panic(err)
	}
	return f
}
