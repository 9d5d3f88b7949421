package approval

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const key = "test-approval-signing-key-0123"

// Known answers, computed with Python's hmac (json.dumps with separators=(',',':'), urlsafe
// base64 without padding).
const (
	vecToken    = "WyJ2MSIsImRlZmF1bHQiLCJydW5fMSIsImFwcl8xIiwiYm9zcyIsImFwcHJvdmUiLCJyZWZ1bmQiLDE4MDAwMDAwMDBd.1lspx_Rhc2WxHNmDhwqPIUaYrb34V7glCYNs_wsQzrA"
	vecCallback = "whsec_Oxf4xALsoimCVyiUQA9N1meWPc7O8zy6NWTR7Tt2osw="
)

var vec = Token{Workspace: "default", RunID: "run_1", RequestID: "apr_1", Approver: "boss", Decision: Approve, Option: "refund", Expires: time.Unix(1_800_000_000, 0).UTC()}

func clock(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestSignKnownAnswer(t *testing.T) {
	k, err := NewKeys(clock(time.Unix(1_700_000_000, 0)), key)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Sign(vec); got != vecToken {
		t.Fatalf("Sign = %s\nwant   %s", got, vecToken)
	}
	got, err := k.Verify(vecToken)
	if err != nil || got != vec {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	if got := CallbackSecret(key, "default", "ops"); got != vecCallback {
		t.Fatalf("CallbackSecret = %s, want %s", got, vecCallback)
	}
}

func TestVerifyExpiryWithInjectedClock(t *testing.T) {
	exp := vec.Expires
	for _, c := range []struct {
		now  time.Time
		want error
	}{
		{exp.Add(-time.Second), nil},
		{exp, ErrExpired},
		{exp.Add(time.Hour), ErrExpired},
	} {
		k, _ := NewKeys(clock(c.now), key)
		if _, err := k.Verify(vecToken); !errors.Is(err, c.want) && err != c.want {
			t.Errorf("at %s: %v, want %v", c.now, err, c.want)
		}
	}
}

func TestVerifyRefusesForgeries(t *testing.T) {
	k, _ := NewKeys(clock(time.Unix(1_700_000_000, 0)), key)
	other, _ := NewKeys(clock(time.Unix(1_700_000_000, 0)), "another-signing-key-0123")
	payload, sig, _ := strings.Cut(vecToken, ".")
	denyPayload, _, _ := strings.Cut(k.Sign(Token{Workspace: "default", RunID: "run_1", RequestID: "apr_1", Approver: "boss", Decision: Deny, Expires: vec.Expires}), ".")
	for name, tok := range map[string]string{
		"other key":             other.Sign(vec),
		"payload swapped":       denyPayload + "." + sig,
		"signature cut":         payload + "." + sig[:10],
		"no signature":          payload,
		"empty":                 "",
		"not base64":            "!!!." + sig,
		"too long":              strings.Repeat("a", MaxTokenLen+1),
		"signed non-canonical":  signRaw(key, `["v1", "default","run_1","apr_1","boss","approve","refund",1800000000]`),
		"signed other version":  signRaw(key, `["v2","default","run_1","apr_1","boss","approve","refund",1800000000]`),
		"signed too few fields": signRaw(key, `["v1","default","run_1","apr_1","boss","approve",1800000000]`),
	} {
		if _, err := k.Verify(tok); err != ErrInvalid {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func signRaw(k, p string) string {
	return b64.EncodeToString([]byte(p)) + "." + b64.EncodeToString(mac([]byte(k), []byte(p)))
}

func TestRotationSignsWithFirstVerifiesAll(t *testing.T) {
	now := clock(time.Unix(1_700_000_000, 0))
	old, _ := NewKeys(now, key)
	rotated, _ := NewKeys(now, "the-new-signing-key-01234", key)
	if _, err := rotated.Verify(old.Sign(vec)); err != nil {
		t.Fatalf("a token of the old key: %v", err)
	}
	if _, err := old.Verify(rotated.Sign(vec)); err != ErrInvalid {
		t.Fatalf("the new key signed with the old one: %v", err)
	}
}

func TestNewKeysChecksLength(t *testing.T) {
	if _, err := NewKeys(time.Now); err == nil {
		t.Error("no key accepted")
	}
	if _, err := NewKeys(time.Now, "tiny-key"); err == nil || strings.Contains(err.Error(), "tiny-key") {
		t.Errorf("short key: %v", err)
	}
}

func TestLinks(t *testing.T) {
	k, _ := NewKeys(clock(time.Unix(1_700_000_000, 0)), key)
	r := Request{Workspace: "default", RunID: "run_1", RequestID: "apr_1", Approvers: []string{"boss", "cfo"}, Options: []string{"refund", "refuse"},
		Expires: vec.Expires, Base: "/webhook/ops/threads/thr_1/runs/run_1"}
	links := k.Links(r)
	if len(links) != 6 {
		t.Fatalf("%d links, want 2 approvers × (2 options + deny)", len(links))
	}
	if l := links[0]; l.Approver != "boss" || l.Decision != Approve || l.Option != "refund" || l.Token != vecToken || l.Path != r.Base+"/approve?token="+vecToken {
		t.Errorf("first link %+v", l)
	}
	if l := links[5]; l.Approver != "cfo" || l.Decision != Deny || l.Option != "" || !strings.HasPrefix(l.Path, r.Base+"/deny?token=") {
		t.Errorf("last link %+v", l)
	}
	r.Options = nil
	if links := k.Links(r); len(links) != 4 || links[0].Option != "" || links[0].Decision != Approve {
		t.Errorf("without options: %+v", links)
	}
}
