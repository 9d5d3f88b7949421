package delivery

import (
	"context"
	"testing"

	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/store"
)

// Every attempt carries the subscription's custom headers.
func TestCustomHeadersGoWithEveryAttempt(t *testing.T) {
	r := newRig(t, "0s,1s,1s", 0, func(n int) outbound.Result {
		if n < 3 {
			return outbound.Result{StatusCode: 503}
		}
		return outbound.Result{StatusCode: 200}
	})
	r.st.sub.Headers = store.NewCustomHeaders(map[string]string{"Authorization": "Bearer t", "X-Tenant": "acme"})
	var seen []map[string]string
	r.h.post = func(_ context.Context, req outbound.Request) outbound.Result {
		r.posts++
		seen = append(seen, req.Headers)
		if r.posts < 3 {
			return outbound.Result{StatusCode: 503}
		}
		return outbound.Result{StatusCode: 200}
	}
	r.run(t)
	if len(seen) != 3 || r.st.d.Status != store.DeliverySucceeded {
		t.Fatalf("%d attempts, status %s", len(seen), r.st.d.Status)
	}
	for i, h := range seen {
		if len(h) != 2 || h["Authorization"] != "Bearer t" || h["X-Tenant"] != "acme" {
			t.Fatalf("attempt %d headers %v", i+1, h)
		}
	}
}

// Headers a store could not open (a delivery function without kms:Decrypt on their kind) are not
// dropped silently: the attempt is not made, and the message is retried.
func TestUnopenedHeadersStopTheAttempt(t *testing.T) {
	r := newRig(t, "0s", 0, func(int) outbound.Result { return outbound.Result{StatusCode: 200} })
	r.st.sub.Headers = store.CustomHeaders{Names: []string{"Authorization"}} // sealed, not opened
	if _, _, err := r.h.resolve(context.Background(), r.st.d, &subCache{store: r.st, m: map[string]*subEntry{}}, r.now); err == nil {
		t.Fatal("a subscription with unopened headers resolved")
	}
}
