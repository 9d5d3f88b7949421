package outbound

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The Standard Webhooks published example (standard-webhooks/standard-webhooks,
// libraries/go/webhook_test.go TestWebhookSign; the same in every reference library's tests).
// Reproduced with Python's hmac; vecHex with `openssl dgst -sha256 -hmac <secret>`.
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecMsgID  = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = 1614265330
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	vecHex    = "sha256=80ec8a89ce3cd22133a1066caecb4d04fea7467657c8514d717ec42c38a5c94c"

	// A second secret (base64 of bytes 0..31) for rotation, signatures computed with Python.
	vec2Secret = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	vec2Sig    = "v1,O4Gjv1HqPqsMrjmczoggs/sWA8gZD0VyHG+fLh4+ktI="
	vec2Hex    = "sha256=4685c9d16f64a759d47846eae0e4f6c75bedef25470e9a0e099c5a56f2f5571f"
)

// verifyStandard is a receiver's Standard Webhooks check, written from the spec without the
// Signer: any "v1,<base64>" entry of the space-separated signature header may match.
func verifyStandard(secret string, h http.Header, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	if id == "" || ts == "" {
		return false
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, entry := range strings.Fields(h.Get("webhook-signature")) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		if got, err := base64.StdEncoding.DecodeString(sig); err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// verifyHex is a receiver's X-Webhook-Signature check: any comma-separated "sha256=<hex>" entry.
func verifyHex(secret string, h http.Header, body []byte) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, entry := range strings.Split(h.Get("x-webhook-signature"), ",") {
		sig, ok := strings.CutPrefix(strings.TrimSpace(entry), "sha256=")
		if got, err := hex.DecodeString(sig); ok && err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

func mustSigner(t testing.TB, secrets ...string) *Signer {
	t.Helper()
	s, err := NewSigner(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignerStandardWebhooksVector(t *testing.T) {
	h := http.Header{}
	mustSigner(t, vecSecret).Headers(vecMsgID, time.Unix(vecTS, 0), []byte(vecBody), h)
	want := map[string]string{
		"webhook-id":          vecMsgID,
		"webhook-timestamp":   "1614265330",
		"webhook-signature":   vecSig,
		"x-webhook-signature": vecHex,
	}
	for k, v := range want {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if len(h) != len(want) {
		t.Errorf("headers %v, want exactly %d", h, len(want))
	}
	if !verifyStandard(vecSecret, h, []byte(vecBody)) || !verifyHex(vecSecret, h, []byte(vecBody)) {
		t.Fatal("the independent verifiers reject the vector")
	}
}

func TestSignerRotation(t *testing.T) {
	h := http.Header{}
	body := []byte(vecBody)
	mustSigner(t, vec2Secret, vecSecret).Headers(vecMsgID, time.Unix(vecTS, 0), body, h)
	if got, want := h.Get("webhook-signature"), vec2Sig+" "+vecSig; got != want {
		t.Errorf("webhook-signature = %q, want %q (newest first)", got, want)
	}
	if got, want := h.Get("x-webhook-signature"), vec2Hex+","+vecHex; got != want {
		t.Errorf("x-webhook-signature = %q, want %q (newest first)", got, want)
	}
	for _, sec := range []string{vecSecret, vec2Secret} {
		if !verifyStandard(sec, h, body) || !verifyHex(sec, h, body) {
			t.Errorf("a receiver holding only %.12s… rejects the rotation headers", sec)
		}
	}
	other := NewSecret()
	if verifyStandard(other, h, body) || verifyHex(other, h, body) {
		t.Error("a third secret verifies")
	}
}

func TestSignerTamper(t *testing.T) {
	body := []byte(vecBody)
	sign := func() http.Header {
		h := http.Header{}
		mustSigner(t, vecSecret).Headers(vecMsgID, time.Unix(vecTS, 0), body, h)
		return h
	}
	tests := []struct {
		name   string
		tamper func(h http.Header) []byte
		stdOK  bool // Webhook-Signature still verifies
		hexOK  bool // X-Webhook-Signature still verifies
	}{
		{"untouched", func(http.Header) []byte { return body }, true, true},
		{"body changed", func(http.Header) []byte { return []byte(`{"test": 2432232315}`) }, false, false},
		{"body extended", func(http.Header) []byte { return append([]byte(vecBody), ' ') }, false, false},
		{"empty body", func(http.Header) []byte { return nil }, false, false},
		{"id changed", func(h http.Header) []byte { h.Set("webhook-id", "msg_other"); return body }, false, true},
		{"timestamp changed", func(h http.Header) []byte {
			h.Set("webhook-timestamp", "1614265331")
			return body
		}, false, true},
		{"signature bit flipped", func(h http.Header) []byte {
			h.Set("webhook-signature", "v1,h"+vecSig[4:])
			h.Set("x-webhook-signature", "sha256=9"+vecHex[8:])
			return body
		}, false, false},
		{"wrong version", func(h http.Header) []byte {
			h.Set("webhook-signature", "v1a,"+vecSig[3:])
			return body
		}, false, true},
		{"headers removed", func(h http.Header) []byte {
			h.Del("webhook-signature")
			h.Del("x-webhook-signature")
			return body
		}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := sign()
			b := tt.tamper(h)
			if got := verifyStandard(vecSecret, h, b); got != tt.stdOK {
				t.Errorf("standard verify = %v, want %v", got, tt.stdOK)
			}
			if got := verifyHex(vecSecret, h, b); got != tt.hexOK {
				t.Errorf("hex verify = %v, want %v", got, tt.hexOK)
			}
		})
	}
	h := sign()
	if verifyStandard(vec2Secret, h, body) || verifyHex(vec2Secret, h, body) {
		t.Error("another secret verifies")
	}
}

func TestSignerOverwritesReusedHeader(t *testing.T) {
	s := mustSigner(t, vecSecret)
	h := http.Header{}
	s.Headers("msg_first", time.Unix(1, 0), []byte("a"), h)
	h.Add("Webhook-Signature", "v1,stale")
	s.Headers(vecMsgID, time.Unix(vecTS, 0), []byte(vecBody), h)
	if got := h.Values("webhook-signature"); len(got) != 1 || got[0] != vecSig {
		t.Fatalf("webhook-signature = %q", got)
	}
}

func TestSignerConcurrent(t *testing.T) {
	s := mustSigner(t, vec2Secret, vecSecret)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				h := http.Header{}
				s.Headers(vecMsgID, time.Unix(vecTS, 0), []byte(vecBody), h)
				if h.Get("webhook-signature") != vec2Sig+" "+vecSig {
					t.Error("concurrent signing produced a wrong signature")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestSignerAllocates(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	s := mustSigner(t, vecSecret)
	h := http.Header{}
	body := []byte(vecBody)
	ts := time.Unix(vecTS, 0)
	if allocs := testing.AllocsPerRun(100, func() { s.Headers(vecMsgID, ts, body, h) }); allocs > 2 {
		t.Fatalf("Headers allocates %v times, want ≤ 2 (the header text and its value slices)", allocs)
	}
}

func TestNewSecret(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	if a == b {
		t.Fatal("two secrets are equal")
	}
	for _, s := range []string{a, b} {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		if !strings.HasPrefix(s, "whsec_") || err != nil || len(key) != 32 || !ValidSecret(s) {
			t.Fatalf("NewSecret() = %q: not whsec_ + base64 of 32 bytes", s)
		}
	}
}

func TestValidSecret(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	tests := map[string]bool{
		vecSecret:                               true, // 24 bytes
		vec2Secret:                              true,
		"whsec_" + b64(64):                      true,
		"whsec_" + b64(23):                      false,
		"whsec_" + b64(65):                      false,
		strings.TrimPrefix(vecSecret, "whsec_"): false, // no prefix
		"WHSEC_" + vecSecret[6:]:                false,
		"whsec_" + vecSecret[7:]:                false, // length not a multiple of 4
		"whsec_" + b64(32)[:43]:                 false, // padding missing
		"whsec_" + strings.Repeat("-_", 22):     false, // URL alphabet
		"":                                      false,
		"whsec_":                                false,
	}
	for s, want := range tests {
		if got := ValidSecret(s); got != want {
			t.Errorf("ValidSecret(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestSignerPrintsNoSecret(t *testing.T) {
	s := mustSigner(t, vec2Secret, vecSecret)
	out := fmt.Sprintf("%v %+v %#v %s", s, s, s, s) + fmt.Sprintf("%+v", Request{Signer: s})
	if strings.Contains(out, "whsec_") || strings.Contains(out, vecSecret[6:20]) {
		t.Fatalf("printing a Signer leaks a secret: %s", out)
	}
}

func TestNewSignerErrors(t *testing.T) {
	if _, err := NewSigner(); !errors.Is(err, ErrNoSecret) {
		t.Errorf("NewSigner() error = %v, want ErrNoSecret", err)
	}
	bad := "whsec_" + strings.Repeat("A", 20) + "!!"
	_, err := NewSigner(vecSecret, bad)
	if !errors.Is(err, ErrInvalidSecret) {
		t.Fatalf("error = %v, want ErrInvalidSecret", err)
	}
	if strings.Contains(err.Error(), "AAAA") || strings.Contains(err.Error(), vecSecret[6:]) {
		t.Errorf("error %q leaks a secret", err)
	}
}

// FuzzSignVerify: whatever the id, time and body, the independent verifiers accept what the
// Signer produces, and reject it once the body changes.
func FuzzSignVerify(f *testing.F) {
	f.Add(vecMsgID, int64(vecTS), []byte(vecBody))
	f.Add("msg_x", int64(-1), []byte{})
	f.Add("", int64(1<<40), []byte{0xff, 0x00})
	s := mustSigner(f, vec2Secret, vecSecret)
	f.Fuzz(func(t *testing.T, id string, ts int64, body []byte) {
		if strings.ContainsAny(id, ".\r\n") || id == "" {
			return // Post refuses these ids
		}
		h := http.Header{}
		s.Headers(id, time.Unix(ts, 0), body, h)
		if strings.TrimSpace(id) != id {
			return // a receiver's header parsing trims it; signing is still over the raw id
		}
		if !verifyStandard(vecSecret, h, body) || !verifyHex(vecSecret, h, body) {
			t.Fatalf("signed headers %v do not verify", h)
		}
		tampered := append(append([]byte(nil), body...), 'x')
		if verifyStandard(vecSecret, h, tampered) || verifyHex(vecSecret, h, tampered) {
			t.Fatal("a changed body verifies")
		}
	})
}
