package verify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// Each HMAC scheme against its floor: baseline is a reused crypto/hmac HMAC-SHA256 over the same
// signed bytes and hmac.Equal against a precomputed MAC; verify is the verifier, header lookups and
// parsing included. make bench prints verify/baseline.

func BenchmarkVerifyHMACSHA256(b *testing.B) { benchVerify(b, HMACSHA256, "") }
func BenchmarkVerifyGitHub(b *testing.B)     { benchVerify(b, GitHub, "") }
func BenchmarkVerifyStandardWebhooks(b *testing.B) {
	benchVerify(b, StandardWebhooks, swID+"."+unix(testNow)+".")
}
func BenchmarkVerifyStripe(b *testing.B) { benchVerify(b, Stripe, unix(testNow)+".") }
func BenchmarkVerifySlack(b *testing.B)  { benchVerify(b, Slack, "v0:"+unix(testNow)+":") }

// benchVerify: fixture i on a 1 KB body; prefix is what the scheme signs before the body.
func benchVerify(b *testing.B, s Scheme, prefix string) {
	f := fixtureOf(b, s)
	body := bytes.Repeat([]byte(`{"k":"v"}`), 1024/9+1)[:1024]
	h := f.sign(b, f.secrets[0], body, testNow)
	key := []byte(f.secrets[0])
	if f.scheme == StandardWebhooks {
		key = whsecKey(b, f.secrets[0])
	}

	signed := append([]byte(prefix), body...)
	m := hmac.New(sha256.New, key)
	m.Write(signed)
	want := m.Sum(nil)
	// The baseline signs the same bytes as the scheme: its MAC is the one in the headers.
	var values []string
	for _, val := range h {
		values = append(values, val)
	}
	if all := strings.Join(values, " "); !strings.Contains(all, hex.EncodeToString(want)) &&
		!strings.Contains(all, base64.StdEncoding.EncodeToString(want)) {
		b.Fatalf("baseline MAC is not the one in %q", all)
	}

	b.Run("baseline", func(b *testing.B) {
		var buf [sha256.Size]byte
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			m.Reset()
			m.Write(signed)
			if !hmac.Equal(m.Sum(buf[:0]), want) {
				b.Fatal("mismatch")
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		v := f.verifier(b, f.secrets[0])
		header := func(name string) string { return h[name] }
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(header, body, testNow); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Each token scheme against its floor: baseline is subtle.ConstantTimeCompare of the presented
// token's bytes with the secret's; verify is the verifier, header lookup, parsing and the SHA-256
// that keeps the secret's length from the timing included. The secret is one as generated (64
// hex characters). make bench prints verify/baseline.

func BenchmarkVerifySharedSecret(b *testing.B) { benchToken(b, SharedSecret) }
func BenchmarkVerifyBearer(b *testing.B)       { benchToken(b, Bearer) }
func BenchmarkVerifyTelegram(b *testing.B)     { benchToken(b, Telegram) }

func benchToken(b *testing.B, s Scheme) {
	f := fixtureOf(b, s)
	secret := generatedSecret(0)
	h := f.sign(b, secret, nil, testNow)
	presented, want := []byte(secret), []byte(secret)

	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if subtle.ConstantTimeCompare(presented, want) != 1 {
				b.Fatal("mismatch")
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		v := f.verifier(b, secret)
		header := func(name string) string { return h[name] }
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(header, nil, testNow); err != nil {
				b.Fatal(err)
			}
		}
	})
}
