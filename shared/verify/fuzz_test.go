package verify

import (
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v93/github"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stripe/stripe-go/v85/webhook"
)

// Each target feeds arbitrary headers and bodies to one scheme. Nothing may panic; a failure is
// always an ErrInvalidSignature with a known reason and no secret in its text; what we accept,
// the provider's library (or an independent check) accepts too; and a body signed properly for
// the fuzzed values verifies. The seeds run in plain go test.

// checkFailure: the error of a rejected request is well formed.
func checkFailure(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("error %v is not ErrInvalidSignature", err)
	}
	msg := err.Error()
	known := false
	for _, r := range []string{reasonMissing, reasonMalformed, reasonTimestamp, reasonSignature, reasonSecret} {
		known = known || strings.HasPrefix(msg, "invalid signature: "+r)
	}
	if !known {
		t.Fatalf("error %q has no known reason", msg)
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Fatalf("error %q quotes a secret", msg)
		}
	}
}

// fuzzVerifier builds the verifier of scheme s with its old and new secrets.
func fuzzVerifier(f *testing.F, s Scheme) (fixture, *Verifier) {
	fx := fixtureOf(f, s)
	return fx, fx.verifier(f, fx.secrets[0], fx.secrets[1])
}

// plainUnix: the value is what a provider sends (digits, no sign, no leading zero), in a range
// time.Unix and the libraries agree on.
func plainUnix(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0 && n < 1e12 && strconv.FormatInt(n, 10) == s
}

func FuzzVerifyStandardWebhooks(f *testing.F) {
	fx, v := fuzzVerifier(f, StandardWebhooks)
	wh, err := standardwebhooks.NewWebhook(fx.secrets[1])
	if err != nil {
		f.Fatal(err)
	}
	ts := unix(testNow)
	h := fx.sign(f, fx.secrets[1], testBody, testNow)
	f.Add(testBody, h["webhook-id"], ts, h["webhook-signature"], testNow.Unix())
	f.Add(testBody, h["webhook-id"], ts, "v1a,xyz "+h["webhook-signature"]+" v2,abc", testNow.Unix())
	f.Add([]byte(`{"test": 2432232314}`), "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", int64(1614265330))
	f.Add([]byte{}, "", "", "", int64(0))
	f.Add([]byte("x"), "id", "-1", "v1,", int64(-1))
	f.Add([]byte("x"), "id", "99999999999999999999", "v1,====", int64(1<<62))
	f.Fuzz(func(t *testing.T, body []byte, id, ts, sig string, now int64) {
		at := time.Unix(now, 0)
		hdr := map[string]string{"webhook-id": id, "webhook-timestamp": ts, "webhook-signature": sig}
		res, err := v.Verify(lookup(hdr), body, at)
		if err != nil {
			checkFailure(t, err, fx.secrets[:]...)
		} else {
			if res.DeliveryID != id || res.Timestamp.Unix() != mustUnix(t, ts) {
				t.Fatalf("Result %+v for id %q ts %q", res, id, ts)
			}
			// Accepted: the reference library agrees, for one of the two secrets.
			if !libAccepts(t, fx.secrets[:2], body, hdr) {
				t.Fatalf("accepted what standard-webhooks rejects: %q", hdr)
			}
		}
		// Signed properly for these values, the request verifies.
		sec, ok := plainUnix(ts)
		if !ok || id == "" {
			return
		}
		good, err := wh.Sign(id, time.Unix(sec, 0), body)
		if err != nil {
			t.Fatal(err)
		}
		hdr["webhook-signature"] = sig + " " + good
		if _, err := v.Verify(lookup(hdr), body, time.Unix(sec, 0).Add(time.Minute)); err != nil {
			t.Fatalf("a proper signature fails: %v (headers %q)", err, hdr)
		}
	})
}

func mustUnix(t *testing.T, s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("accepted timestamp %q does not parse", s)
	}
	return n
}

func libAccepts(t *testing.T, secrets []string, body []byte, hdr map[string]string) bool {
	h := http.Header{}
	for k, val := range hdr {
		h.Set(k, val)
	}
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		if wh.VerifyIgnoringTimestamp(body, h) == nil {
			return true
		}
	}
	return false
}

func FuzzVerifyStripe(f *testing.F) {
	fx, v := fuzzVerifier(f, Stripe)
	h := fx.sign(f, fx.secrets[0], testBody, testNow)
	f.Add(testBody, h["stripe-signature"], testNow.Unix())
	f.Add(testBody, h["stripe-signature"]+",v1=00,v0=abc", testNow.Unix())
	f.Add([]byte(stripeKATBody), "t=1614265330,v1="+stripeKATMAC, int64(1614265330))
	f.Add([]byte{}, "t=,v1=", int64(0))
	f.Add([]byte("x"), "t=1,t=2,v1=zz,=,a=b=c,", int64(1))
	f.Add([]byte("x"), ",,,", int64(-1<<62))
	f.Fuzz(func(t *testing.T, body []byte, sig string, now int64) {
		res, err := v.Verify(lookup(map[string]string{"stripe-signature": sig}), body, time.Unix(now, 0))
		if err != nil {
			checkFailure(t, err, fx.secrets[:]...)
		} else {
			if d := time.Unix(now, 0).Sub(res.Timestamp); d > DefaultTolerance || d < -DefaultTolerance {
				t.Fatalf("accepted a timestamp %v from now %v", res.Timestamp, time.Unix(now, 0))
			}
			if webhook.ValidatePayloadIgnoringTolerance(body, sig, fx.secrets[0]) != nil &&
				webhook.ValidatePayloadIgnoringTolerance(body, sig, fx.secrets[1]) != nil {
				t.Fatalf("accepted what stripe-go rejects: %q", sig)
			}
		}
		if now < 0 || now >= 1e12 {
			return
		}
		p := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: fx.secrets[1], Timestamp: time.Unix(now, 0)})
		if _, err := v.Verify(lookup(map[string]string{"stripe-signature": p.Header}), body, time.Unix(now, 0)); err != nil {
			t.Fatalf("stripe-go's signature fails: %v (%q)", err, p.Header)
		}
	})
}

func FuzzVerifyGitHub(f *testing.F) {
	fx, v := fuzzVerifier(f, GitHub)
	h := fx.sign(f, fx.secrets[1], testBody, testNow)
	f.Add(testBody, h["x-hub-signature-256"], ghID)
	f.Add([]byte("Hello, World!"), "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "")
	f.Add([]byte{}, "sha256=", "x")
	f.Add([]byte("x"), "sha1=abc", "")
	f.Fuzz(func(t *testing.T, body []byte, sig, delivery string) {
		res, err := v.Verify(lookup(map[string]string{"x-hub-signature-256": sig, "x-github-delivery": delivery}), body, testNow)
		// go-github also takes sha1= and sha512=; this scheme reads only the sha256 header.
		lib := strings.HasPrefix(sig, "sha256=") && (github.ValidateSignature(sig, body, []byte(fx.secrets[0])) == nil ||
			github.ValidateSignature(sig, body, []byte(fx.secrets[1])) == nil)
		if (err == nil) != lib {
			t.Fatalf("we say %v, go-github says %v, for %q", err, lib, sig)
		}
		if err != nil {
			checkFailure(t, err, fx.secrets[:]...)
		} else if res.DeliveryID != delivery {
			t.Fatalf("DeliveryID %q, want %q", res.DeliveryID, delivery)
		}
		if _, err := v.Verify(lookup(fx.sign(t, fx.secrets[0], body, testNow)), body, testNow); err != nil {
			t.Fatalf("a proper signature fails: %v", err)
		}
	})
}

func FuzzVerifySlack(f *testing.F) {
	fx, v := fuzzVerifier(f, Slack)
	h := fx.sign(f, fx.secrets[0], testBody, testNow)
	f.Add(testBody, h["x-slack-signature"], h["x-slack-request-timestamp"], testNow.Unix())
	f.Add(testBody, strings.ToUpper(h["x-slack-signature"]), "0"+h["x-slack-request-timestamp"], testNow.Unix())
	f.Add([]byte{}, "v0=", "", int64(0))
	f.Add([]byte("x"), "v0=zz", "+1", int64(1))
	f.Fuzz(func(t *testing.T, body []byte, sig, ts string, now int64) {
		at := time.Unix(now, 0)
		res, err := v.Verify(lookup(map[string]string{"x-slack-signature": sig, "x-slack-request-timestamp": ts}), body, at)
		// An independent reading of Slack's documentation: v0= then the hex HMAC of v0:{ts}:{body},
		// the timestamp an integer within five minutes.
		want, decErr := hex.DecodeString(strings.TrimPrefix(sig, "v0="))
		sec, tsErr := strconv.ParseInt(ts, 10, 64)
		d := at.Sub(time.Unix(sec, 0))
		docOK := strings.HasPrefix(sig, "v0=") && decErr == nil && tsErr == nil && d <= DefaultTolerance && d >= -DefaultTolerance &&
			(hmac.Equal(want, macOf([]byte(fx.secrets[0]), "v0:"+ts+":"+string(body))) ||
				hmac.Equal(want, macOf([]byte(fx.secrets[1]), "v0:"+ts+":"+string(body))))
		if err == nil && !docOK {
			t.Fatalf("accepted sig %q ts %q at %d", sig, ts, now)
		}
		if _, plain := plainUnix(ts); docOK && plain && err != nil {
			t.Fatalf("rejected sig %q ts %q at %d: %v", sig, ts, now, err)
		}
		if err != nil {
			checkFailure(t, err, fx.secrets[:]...)
		} else if res.Timestamp.Unix() != sec {
			t.Fatalf("Timestamp %v, want %d", res.Timestamp, sec)
		}
		if now < 0 || now >= 1e12 {
			return
		}
		if _, err := v.Verify(lookup(fx.sign(t, fx.secrets[1], body, at)), body, at); err != nil {
			t.Fatalf("a proper signature fails: %v", err)
		}
	})
}

func FuzzVerifyHMACSHA256(f *testing.F) {
	fx, v := fuzzVerifier(f, HMACSHA256)
	h := fx.sign(f, fx.secrets[0], testBody, testNow)
	f.Add(testBody, h["x-hookgate-signature"])
	f.Add([]byte{}, "sha256=")
	f.Add([]byte("x"), "SHA256=00")
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		_, err := v.Verify(lookup(map[string]string{"x-hookgate-signature": sig}), body, testNow)
		hexSig, ok := strings.CutPrefix(sig, "sha256=")
		want, decErr := hex.DecodeString(hexSig)
		lib := ok && decErr == nil && (hmac.Equal(want, macOf([]byte(fx.secrets[0]), string(body))) ||
			hmac.Equal(want, macOf([]byte(fx.secrets[1]), string(body))))
		if (err == nil) != lib {
			t.Fatalf("we say %v, an independent check says %v, for %q", err, lib, sig)
		}
		if err != nil {
			checkFailure(t, err, fx.secrets[:]...)
		}
		if v.secrets.VerifyHMAC(body, sig) != lib {
			t.Fatal("Secrets.VerifyHMAC disagrees with Verify")
		}
	})
}

// The token schemes: a presented value verifies exactly when it is one of the secrets.

func FuzzVerifySharedSecret(f *testing.F) {
	fuzzToken(f, SharedSecret, "x-hookgate-inbound-secret", "")
}
func FuzzVerifyTelegram(f *testing.F) { fuzzToken(f, Telegram, "x-telegram-bot-api-secret-token", "") }
func FuzzVerifyBearer(f *testing.F)   { fuzzToken(f, Bearer, "authorization", "Bearer ") }

func fuzzToken(f *testing.F, s Scheme, name, prefix string) {
	fx, v := fuzzVerifier(f, s)
	f.Add(prefix + fx.secrets[0])
	f.Add(prefix + fx.secrets[2])
	f.Add(strings.ToLower(prefix) + " \t" + fx.secrets[1] + " ")
	f.Add("")
	f.Add(prefix)
	f.Fuzz(func(t *testing.T, val string) {
		_, err := v.Verify(lookup(map[string]string{name: val}), nil, testNow)
		tok := val
		if prefix != "" {
			// RFC 9110: the scheme name in any case, then a space; the token trimmed.
			if len(val) < len(prefix) || !strings.EqualFold(val[:len(prefix)], prefix) {
				tok = ""
			} else {
				tok = strings.Trim(val[len(prefix):], " \t")
			}
		}
		ok := tok != "" && (tok == fx.secrets[0] || tok == fx.secrets[1])
		if (err == nil) != ok {
			t.Fatalf("%s %q: we say %v, want ok=%v", name, val, err, ok)
		}
		if err != nil {
			checkFailure(t, err, fx.secrets[:]...)
		}
	})
}
