package e2e_test

import (
	"net/http"
	"testing"
	"time"
)

// Rotating the admin key and the inbound secret: while AdminApiKeyPrevious and
// InboundSecretPrevious hold the old values both the old and the new are accepted; once they are
// emptied only the new ones are.
func TestOperatorSecretsRotateWithOverlap(t *testing.T) {
	t.Parallel()
	const (
		oldAdmin, newAdmin     = "old-admin-api-key-0123456789", "new-admin-api-key-0123456789"
		oldInbound, newInbound = "old-inbound-secret-0123", "new-inbound-secret-0123"
	)
	check := func(t *testing.T, e *env, admin, inbound map[string]int) {
		t.Helper()
		for key, want := range admin {
			r := do(t, http.MethodGet, e.stack.URL+"/v1/api-keys", map[string]string{"x-api-key": key}, "")
			if r.status != want {
				t.Errorf("admin key %q: %d %s, want %d", key[:3], r.status, r.raw, want)
			}
		}
		for secret, want := range inbound {
			ext := time.Now().Format("150405.000000000") + secret[:3]
			r := do(t, http.MethodPost, e.stack.URL+"/v1/inbound/generic",
				map[string]string{"content-type": "application/json", "x-hookgate-inbound-secret": secret},
				`{"channel":"cron","external_id":"`+ext+`","text":"rotation"}`)
			if r.status != want {
				t.Errorf("inbound secret %q: %d %s, want %d", secret[:3], r.status, r.raw, want)
			}
		}
	}

	during, err := startStack(t, "rot1", 0, map[string]string{
		"AdminApiKey": newAdmin, "AdminApiKeyPrevious": oldAdmin,
		"InboundSecret": newInbound, "InboundSecretPrevious": oldInbound,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	check(t, during, map[string]int{newAdmin: 200, oldAdmin: 200}, map[string]int{newInbound: 202, oldInbound: 202})
	during.stack.Close()

	after, err := startStack(t, "rot2", 0, map[string]string{"AdminApiKey": newAdmin, "InboundSecret": newInbound}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer after.stack.Close()
	check(t, after, map[string]int{newAdmin: 200, oldAdmin: 401}, map[string]int{newInbound: 202, oldInbound: 401})
}
