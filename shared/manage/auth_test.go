package manage

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
)

// The Authenticator other functions use answers like the management API: the admin key acts on
// the default workspace, a stored key on its own, anything else is Unauthorized.
func TestAuthenticator(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	a := NewAuthenticator("default", adminKey, e.st)
	keyA := e.key("ws-a")
	revoked := e.key("ws-b")
	keys, err := e.st.ListAPIKeys(context.Background(), "ws-b")
	if err != nil || len(keys) != 1 {
		t.Fatal(keys, err)
	}
	if err := e.st.RevokeAPIKey(context.Background(), "ws-b", keys[0].ID); err != nil {
		t.Fatal(err)
	}
	req := func(h map[string]string) *events.APIGatewayV2HTTPRequest {
		return &events.APIGatewayV2HTTPRequest{Headers: h}
	}
	cases := []struct {
		name    string
		headers map[string]string
		ws      string
		admin   bool
	}{
		{"admin key", map[string]string{"x-api-key": adminKey}, "default", true},
		{"admin key as bearer", map[string]string{"authorization": "Bearer " + adminKey}, "default", true},
		{"stored key", map[string]string{"x-api-key": keyA}, "ws-a", false},
		{"stored key as bearer", map[string]string{"authorization": "bearer " + keyA}, "ws-a", false},
		{"no key", nil, "", false},
		{"wrong key", map[string]string{"x-api-key": wrongLast(keyA)}, "", false},
		{"revoked key", map[string]string{"x-api-key": revoked}, "", false},
		{"not a key", map[string]string{"authorization": "Basic abc"}, "", false},
	}
	for _, c := range cases {
		got, err := a.Authenticate(context.Background(), req(c.headers))
		if c.ws == "" {
			if apierr.CodeOf(err) != apierr.Unauthorized {
				t.Errorf("%s: got %+v, %v; want Unauthorized", c.name, got, err)
			}
			continue
		}
		if err != nil || got.Workspace != c.ws || got.Admin != c.admin {
			t.Errorf("%s: got %+v, %v; want workspace %s admin %v", c.name, got, err, c.ws, c.admin)
		}
	}
	if _, err := NewAuthenticator("default", "", e.st).Authenticate(context.Background(), req(map[string]string{"x-api-key": adminKey})); apierr.CodeOf(err) != apierr.Unauthorized {
		t.Errorf("no admin key configured: %v", err)
	}
}

// During an admin key rotation the previous key is accepted too; without it, only the current one.
func TestAuthenticatorAdminKeyOverlap(t *testing.T) {
	t.Parallel()
	const previous = "previous-admin-key-0123456789"
	req := func(k string) *events.APIGatewayV2HTTPRequest {
		return &events.APIGatewayV2HTTPRequest{Headers: map[string]string{"x-api-key": k}}
	}
	e := newEnv(t, false)
	during := NewAuthenticator("default", adminKey, e.st, previous)
	after := NewAuthenticator("default", adminKey, e.st)
	for _, k := range []string{adminKey, previous} {
		if c, err := during.Authenticate(context.Background(), req(k)); err != nil || !c.Admin {
			t.Errorf("during the overlap, key %q: %+v %v", k[:4], c, err)
		}
	}
	if c, err := after.Authenticate(context.Background(), req(adminKey)); err != nil || !c.Admin {
		t.Errorf("after the overlap, the current key: %+v %v", c, err)
	}
	if c, err := after.Authenticate(context.Background(), req(previous)); apierr.CodeOf(err) != apierr.Unauthorized {
		t.Errorf("after the overlap, the previous key: %+v %v", c, err)
	}
	if c, err := NewAuthenticator("default", "", e.st, previous).Authenticate(context.Background(), req(previous)); apierr.CodeOf(err) != apierr.Unauthorized {
		t.Errorf("a previous key without a current one: %+v %v", c, err)
	}
}

// wrongLast is key with its last character changed (to "a", or "b" when it is an "a": a key that
// ended in "a" was once its own wrong key, one run in 32).
func wrongLast(key string) string {
	last := "a"
	if strings.HasSuffix(key, "a") {
		last = "b"
	}
	return key[:len(key)-1] + last
}
