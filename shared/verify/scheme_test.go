package verify

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The signers below are written from the providers' documentation, independently of the
// verifier's code, so a test checks the scheme rather than echoing the implementation.

func macOf(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func whsecKey(t testing.TB, secret string) []byte {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatalf("test secret is not whsec_ base64: %v", err)
	}
	return key
}

func unix(at time.Time) string { return strconv.FormatInt(at.Unix(), 10) }

// fixture describes one scheme to the shared tests.
type fixture struct {
	scheme  Scheme
	opts    Options
	secrets [3]string // old, new, and one never configured
	// sign returns the headers a sender holding secret sends with body at time at.
	sign func(t testing.TB, secret string, body []byte, at time.Time) map[string]string
	// covers: the proof covers the body (the HMAC schemes); timed: a signed timestamp is checked.
	covers, timed bool
	// optional headers may be absent (unsigned delivery ids); the others are required.
	optional []string
	// malformed: header values, derived from a valid request, that do not parse.
	malformed func(valid map[string]string) map[string][]string
	// result: what a valid request signed at at reports.
	result func(valid map[string]string, at time.Time) Result
}

const (
	swOld   = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swNew   = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
	swOther = "whsec_dGhpcyBrZXkgaXMgbmV2ZXIgY29uZmlndXJlZA=="
	ghID    = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	swID    = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
)

func fixtures() []fixture {
	hexSHA256 := func(header string) func(testing.TB, string, []byte, time.Time) map[string]string {
		return func(_ testing.TB, secret string, body []byte, _ time.Time) map[string]string {
			return map[string]string{header: "sha256=" + hex.EncodeToString(macOf([]byte(secret), string(body)))}
		}
	}
	hexMalformed := func(header string) func(map[string]string) map[string][]string {
		return func(valid map[string]string) map[string][]string {
			sig := valid[header]
			hexSig := strings.TrimPrefix(sig, "sha256=")
			return map[string][]string{header: {
				hexSig, "sha1=" + hexSig, "SHA256=" + hexSig, "sha256=", "sha256=" + hexSig[:62], sig + "00",
				"sha256=zz" + hexSig[2:], "sha256= " + hexSig[1:], "v1=" + hexSig,
			}}
		}
	}
	noResult := func(map[string]string, time.Time) Result { return Result{} }
	return []fixture{
		{
			scheme:  SharedSecret,
			secrets: [3]string{"old-shared-secret-0123456789", "new-shared-secret-0123456789", "other-secret-0123456789"},
			sign: func(_ testing.TB, secret string, _ []byte, _ time.Time) map[string]string {
				return map[string]string{"x-hookgate-inbound-secret": secret}
			},
			malformed: func(map[string]string) map[string][]string { return nil },
			result:    noResult,
		},
		{
			scheme:    HMACSHA256,
			secrets:   [3]string{"old-hmac-secret", "new-hmac-secret", "other-hmac-secret"},
			sign:      hexSHA256("x-hookgate-signature"),
			covers:    true,
			malformed: hexMalformed("x-hookgate-signature"),
			result:    noResult,
		},
		{
			scheme:  HMACSHA256,
			opts:    Options{Header: "X-Custom-Signature"},
			secrets: [3]string{"old-hmac-secret", "new-hmac-secret", "other-hmac-secret"},
			sign:    hexSHA256("x-custom-signature"), covers: true,
			malformed: hexMalformed("x-custom-signature"),
			result:    noResult,
		},
		{
			scheme:  StandardWebhooks,
			secrets: [3]string{swOld, swNew, swOther},
			sign: func(t testing.TB, secret string, body []byte, at time.Time) map[string]string {
				sig := macOf(whsecKey(t, secret), swID+"."+unix(at)+"."+string(body))
				return map[string]string{"webhook-id": swID, "webhook-timestamp": unix(at),
					"webhook-signature": "v1," + base64.StdEncoding.EncodeToString(sig)}
			},
			covers: true, timed: true,
			malformed: func(valid map[string]string) map[string][]string {
				sig := valid["webhook-signature"]
				return map[string][]string{
					"webhook-timestamp": {"abc", "-1", "+" + valid["webhook-timestamp"], "1.5", " 1", "1e9", "9999999999999999999999"},
					"webhook-signature": {strings.TrimPrefix(sig, "v1,"), "v1", "v1,", ",abc", " ", "v1 " + sig[3:]},
				}
			},
			result: func(valid map[string]string, at time.Time) Result {
				return Result{DeliveryID: valid["webhook-id"], Timestamp: time.Unix(at.Unix(), 0)}
			},
		},
		{
			scheme: Stripe,
			// Stripe's secrets look like whsec_…; the key is the string as is, not decoded.
			secrets: [3]string{"whsec_oldStripeSecret", "whsec_newStripeSecret", "whsec_otherStripeSecret"},
			sign: func(_ testing.TB, secret string, body []byte, at time.Time) map[string]string {
				sig := macOf([]byte(secret), unix(at)+"."+string(body))
				return map[string]string{"stripe-signature": "t=" + unix(at) + ",v1=" + hex.EncodeToString(sig)}
			},
			covers: true, timed: true,
			malformed: func(valid map[string]string) map[string][]string {
				sig := valid["stripe-signature"]
				ts, v1, _ := strings.Cut(sig, ",")
				return map[string][]string{"stripe-signature": {
					ts, v1, "t=abc," + v1, ts + "," + ts + "," + v1, sig + ",", "," + sig, sig + ",junk",
					ts + ",v0=" + strings.TrimPrefix(v1, "v1="), "garbage", "t=," + v1, "t=-1," + v1, sig + ",v0=a=b", sig + ",=", sig + ",x",
				}}
			},
			result: func(_ map[string]string, at time.Time) Result { return Result{Timestamp: time.Unix(at.Unix(), 0)} },
		},
		{
			scheme:  GitHub,
			secrets: [3]string{"It's a Secret to Everybody", "It's a New Secret", "Another Secret"},
			sign: func(t testing.TB, secret string, body []byte, at time.Time) map[string]string {
				h := hexSHA256("x-hub-signature-256")(t, secret, body, at)
				h["x-github-delivery"] = ghID
				return h
			},
			covers:    true,
			optional:  []string{"x-github-delivery"},
			malformed: hexMalformed("x-hub-signature-256"),
			result: func(valid map[string]string, _ time.Time) Result {
				return Result{DeliveryID: valid["x-github-delivery"]}
			},
		},
		{
			scheme:  Slack,
			secrets: [3]string{"8f742231b10e8888abcd99yyyzzz85a5", "e6b19c573432dcc6b075501d51b51bb8", "0123456789abcdef0123456789abcdef"},
			sign: func(_ testing.TB, secret string, body []byte, at time.Time) map[string]string {
				sig := macOf([]byte(secret), "v0:"+unix(at)+":"+string(body))
				return map[string]string{"x-slack-signature": "v0=" + hex.EncodeToString(sig), "x-slack-request-timestamp": unix(at)}
			},
			covers: true, timed: true,
			malformed: func(valid map[string]string) map[string][]string {
				sig := valid["x-slack-signature"]
				return map[string][]string{
					"x-slack-signature":         {sig[3:], "v1=" + sig[3:], "v0=", "v0=zz" + sig[5:], sig[:66]},
					"x-slack-request-timestamp": {"abc", "+" + valid["x-slack-request-timestamp"], "1.5", "-1"},
				}
			},
			result: func(_ map[string]string, at time.Time) Result { return Result{Timestamp: time.Unix(at.Unix(), 0)} },
		},
		{
			scheme:  Telegram,
			secrets: [3]string{"old_Telegram-token_123", "new_Telegram-token_456", "other_Telegram-token_789"},
			sign: func(_ testing.TB, secret string, _ []byte, _ time.Time) map[string]string {
				return map[string]string{"x-telegram-bot-api-secret-token": secret}
			},
			malformed: func(map[string]string) map[string][]string { return nil },
			result:    noResult,
		},
		{
			scheme:  Bearer,
			secrets: [3]string{"old-bearer-token", "new-bearer-token", "other-bearer-token"},
			sign: func(_ testing.TB, secret string, _ []byte, _ time.Time) map[string]string {
				return map[string]string{"authorization": "Bearer " + secret}
			},
			malformed: func(valid map[string]string) map[string][]string {
				tok := strings.TrimPrefix(valid["authorization"], "Bearer ")
				return map[string][]string{"authorization": {tok, "Basic " + tok, "Bearer", "Bearer ", "Bearer   ", "Bearer" + tok, "Token " + tok}}
			},
			result: noResult,
		},
	}
}

// fixtureOf returns the first fixture of scheme s.
func fixtureOf(t testing.TB, s Scheme) fixture {
	t.Helper()
	for _, f := range fixtures() {
		if f.scheme == s {
			return f
		}
	}
	t.Fatalf("no fixture for %s", s)
	return fixture{}
}

func (f fixture) name() string {
	if f.opts.Header != "" {
		return string(f.scheme) + "/custom-header"
	}
	return string(f.scheme)
}

func (f fixture) verifier(t testing.TB, secrets ...string) *Verifier {
	t.Helper()
	v, err := New(f.scheme, secrets, f.opts)
	if err != nil {
		t.Fatalf("New(%s): %v", f.scheme, err)
	}
	return v
}

func lookup(h map[string]string) func(string) string {
	return func(name string) string { return h[name] }
}

var (
	testNow  = time.Unix(1_750_000_000, 0)
	testBody = []byte(`{"id":"evt_1","type":"order.created","data":{"amount":4200,"note":"héllo"}}`)
)

// expectFailure checks err is an ErrInvalidSignature of the given reason whose text leaks no secret
// and no signature.
func expectFailure(t *testing.T, err error, reason string, leaks ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("verified; want failure %q", reason)
	}
	if !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("error %q is not ErrInvalidSignature", err)
	}
	if !strings.HasPrefix(err.Error(), "invalid signature: "+reason) {
		t.Fatalf("error %q, want reason %q", err, reason)
	}
	for _, s := range leaks {
		if len(s) >= 8 && strings.Contains(err.Error(), s) {
			t.Fatalf("error %q leaks %q", err, s)
		}
	}
}

func TestVerifySchemes(t *testing.T) {
	for _, f := range fixtures() {
		t.Run(f.name(), func(t *testing.T) {
			old, cur, other := f.secrets[0], f.secrets[1], f.secrets[2]
			v := f.verifier(t, cur)
			valid := f.sign(t, cur, testBody, testNow)
			leaks := append([]string{old, cur, other}, secretParts(valid)...)

			t.Run("valid", func(t *testing.T) {
				res, err := v.Verify(lookup(valid), testBody, testNow)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if want := f.result(valid, testNow); res != want {
					t.Fatalf("Result = %+v, want %+v", res, want)
				}
			})
			t.Run("tampered body", func(t *testing.T) {
				tampered := []byte(strings.Replace(string(testBody), "4200", "4201", 1))
				_, err := v.Verify(lookup(valid), tampered, testNow)
				if !f.covers {
					if err != nil {
						t.Fatalf("a token does not cover the body, yet: %v", err)
					}
					return
				}
				expectFailure(t, err, reasonSignature, leaks...)
				_, err = v.Verify(lookup(valid), append(testBody[:len(testBody):len(testBody)], ' '), testNow)
				expectFailure(t, err, reasonSignature, leaks...)
				_, err = v.Verify(lookup(valid), nil, testNow)
				expectFailure(t, err, reasonSignature, leaks...)
			})
			t.Run("wrong secret", func(t *testing.T) {
				_, err := v.Verify(lookup(f.sign(t, other, testBody, testNow)), testBody, testNow)
				want := reasonSignature
				if !f.covers {
					want = reasonSecret
				}
				expectFailure(t, err, want, leaks...)
				if f.covers {
					return
				}
				for _, near := range []string{cur[:len(cur)-1], cur + "x", strings.ToUpper(cur), "x", cur + " " + cur} {
					_, err := v.Verify(lookup(f.sign(t, near, testBody, testNow)), testBody, testNow)
					expectFailure(t, err, reasonSecret, leaks...)
				}
			})
			t.Run("missing header", func(t *testing.T) {
				for name := range valid {
					h := maps.Clone(valid)
					delete(h, name)
					_, err := v.Verify(lookup(h), testBody, testNow)
					if contains(f.optional, name) {
						if err != nil {
							t.Fatalf("without optional %s: %v", name, err)
						}
						continue
					}
					expectFailure(t, err, reasonMissing, leaks...)
					if !strings.Contains(err.Error(), name) {
						t.Fatalf("error %q does not name the missing header %s", err, name)
					}
				}
				_, err := v.Verify(lookup(nil), testBody, testNow)
				expectFailure(t, err, reasonMissing, leaks...)
				_, err = v.Verify(nil, testBody, testNow)
				expectFailure(t, err, reasonMissing, leaks...)
			})
			t.Run("malformed header", func(t *testing.T) {
				for name, values := range f.malformed(valid) {
					for _, val := range values {
						h := maps.Clone(valid)
						h[name] = val
						_, err := v.Verify(lookup(h), testBody, testNow)
						if err == nil {
							t.Fatalf("%s: %q verified", name, val)
						}
						expectFailure(t, err, reasonMalformed, leaks...)
					}
				}
			})
			t.Run("timestamp", func(t *testing.T) {
				tol := cmp.Or(f.opts.Tolerance, DefaultTolerance)
				for _, tt := range []struct {
					name string
					at   time.Time
					ok   bool
				}{
					{"stale", testNow.Add(-tol - time.Second), false},
					{"future", testNow.Add(tol + time.Second), false},
					{"a day old", testNow.Add(-24 * time.Hour), false},
					{"epoch", time.Unix(0, 0), false},
					{"far future", time.Unix(99_999_999_999, 0), false},
					{"oldest accepted", testNow.Add(-tol), true},
					{"newest accepted", testNow.Add(tol), true},
				} {
					_, err := v.Verify(lookup(f.sign(t, cur, testBody, tt.at)), testBody, testNow)
					switch {
					case !f.timed || tt.ok:
						if err != nil {
							t.Fatalf("%s: %v", tt.name, err)
						}
					default:
						expectFailure(t, err, reasonTimestamp, leaks...)
					}
				}
			})
			t.Run("rotation", func(t *testing.T) {
				both := f.verifier(t, old, "", cur) // an unset rotation slot is ignored
				for _, s := range []string{old, cur} {
					if _, err := both.Verify(lookup(f.sign(t, s, testBody, testNow)), testBody, testNow); err != nil {
						t.Fatalf("during the rotation: %v", err)
					}
				}
				_, err := both.Verify(lookup(f.sign(t, other, testBody, testNow)), testBody, testNow)
				if err == nil {
					t.Fatal("a secret never configured verified during the rotation")
				}
				_, err = v.Verify(lookup(f.sign(t, old, testBody, testNow)), testBody, testNow)
				if err == nil {
					t.Fatal("the removed secret still verifies")
				}
			})
		})
	}
}

// secretParts: the header values of a valid request, and the MACs inside them, which no error may quote.
func secretParts(h map[string]string) []string {
	var out []string
	for _, v := range h {
		out = append(out, v)
		for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '=' || r == ' ' }) {
			if len(part) >= 40 {
				out = append(out, part)
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Known answers published by the providers, each recomputed with crypto/hmac before being
// written here.
func TestVerifyKnownAnswers(t *testing.T) {
	// Slack's worked example on docs.slack.dev/authentication/verifying-requests-from-slack. The
	// command is /webhook-collect: with any other body the published signature does not verify.
	const slackBody = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	tests := []struct {
		name    string
		scheme  Scheme
		secret  string
		headers map[string]string
		body    string
		now     time.Time
		want    Result
	}{
		{
			// The test vector of the Standard Webhooks specification (standard-webhooks/spec).
			name: "standard webhooks spec", scheme: StandardWebhooks, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			headers: map[string]string{
				"webhook-id":        "msg_p5jXN8AQM9LWM0D4loKWxJek",
				"webhook-timestamp": "1614265330",
				"webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
			},
			body: `{"test": 2432232314}`, now: time.Unix(1614265330, 0).Add(time.Minute),
			want: Result{DeliveryID: "msg_p5jXN8AQM9LWM0D4loKWxJek", Timestamp: time.Unix(1614265330, 0)},
		},
		{
			name: "standard webhooks spec under svix names", scheme: StandardWebhooks, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			headers: map[string]string{
				"svix-id":        "msg_p5jXN8AQM9LWM0D4loKWxJek",
				"svix-timestamp": "1614265330",
				"svix-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
			},
			body: `{"test": 2432232314}`, now: time.Unix(1614265330, 0).Add(-time.Minute),
			want: Result{DeliveryID: "msg_p5jXN8AQM9LWM0D4loKWxJek", Timestamp: time.Unix(1614265330, 0)},
		},
		{
			name: "slack docs", scheme: Slack, secret: "8f742231b10e8888abcd99yyyzzz85a5",
			headers: map[string]string{
				"x-slack-request-timestamp": "1531420618",
				"x-slack-signature":         "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
			},
			body: slackBody, now: time.Unix(1531420618, 0),
			want: Result{Timestamp: time.Unix(1531420618, 0)},
		},
		{
			// docs.github.com, "Validating webhook deliveries", testing the webhook payload validation.
			name: "github docs", scheme: GitHub, secret: "It's a Secret to Everybody",
			headers: map[string]string{
				"x-hub-signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
				"x-github-delivery":   ghID,
			},
			body: "Hello, World!", now: testNow,
			want: Result{DeliveryID: ghID},
		},
		{
			// RFC 4231, test case 2.
			name: "rfc 4231", scheme: HMACSHA256, secret: rfcKey,
			headers: map[string]string{"x-hookgate-signature": "sha256=" + rfcMAC},
			body:    rfcData, now: testNow,
		},
		{
			// Computed with stripe-go's webhook.ComputeSignature (TestStripeGoSignsTheKnownAnswer).
			name: "stripe", scheme: Stripe, secret: stripeKATSecret,
			headers: map[string]string{"stripe-signature": "t=1614265330,v1=" + stripeKATMAC + ",v0=" + strings.Repeat("0", 64)},
			body:    stripeKATBody, now: time.Unix(1614265330, 0),
			want: Result{Timestamp: time.Unix(1614265330, 0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(tt.scheme, []string{tt.secret}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := v.Verify(lookup(tt.headers), []byte(tt.body), tt.now)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res != tt.want {
				t.Fatalf("Result = %+v, want %+v", res, tt.want)
			}
			// One bit of the body off, and the vector no longer verifies.
			body := []byte(tt.body)
			body[len(body)/2] ^= 1
			if _, err := v.Verify(lookup(tt.headers), body, tt.now); !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("a flipped bit verified: %v", err)
			}
		})
	}
}

const (
	stripeKATSecret = "whsec_test_secret"
	stripeKATBody   = `{"id":"evt_test_webhook","object":"event"}`
	stripeKATMAC    = "3c5817089d739023dd6190f70a3757e04f7a2fd8b5dab12c2e000f51970dccff"
)

func TestStandardWebhooksSignatureList(t *testing.T) {
	f := fixtureOf(t, StandardWebhooks)
	v := f.verifier(t, swOld)
	good := f.sign(t, swOld, testBody, testNow)["webhook-signature"]
	bad := f.sign(t, swOther, testBody, testNow)["webhook-signature"]
	sig := strings.TrimPrefix(good, "v1,")
	for list, ok := range map[string]bool{
		good:                                true,
		bad + " " + good:                    true,
		good + " " + bad:                    true,
		"v1a,xyz " + good:                   true,
		"v2," + sig + " " + good:            true,
		"  " + good + "  ":                  true,
		bad:                                 false,
		"v1a," + sig:                        false, // other versions are ignored, even with the right bytes
		"v2," + sig:                         false,
		"V1," + sig:                         false,
		"v1;" + sig:                         false,
		"v1." + sig + " v2," + sig:          false,
		good + "x":                          false,
		"v1," + sig[:43] + "+":              false,
		"v1," + strings.ToLower(sig):        false,
		"v1," + sig + "," + "v1":            false,
		"v1," + strings.TrimRight(sig, "="): false,
	} {
		h := map[string]string{"webhook-id": swID, "webhook-timestamp": unix(testNow), "webhook-signature": list}
		if _, err := v.Verify(lookup(h), testBody, testNow); (err == nil) != ok {
			t.Errorf("webhook-signature %q: err %v, want ok=%v", list, err, ok)
		}
	}
}

func TestStandardWebhooksHeaderSets(t *testing.T) {
	f := fixtureOf(t, StandardWebhooks)
	v := f.verifier(t, swOld)
	valid := f.sign(t, swOld, testBody, testNow)
	svix := map[string]string{}
	for k, val := range valid {
		svix["svix-"+strings.TrimPrefix(k, "webhook-")] = val
	}
	if res, err := v.Verify(lookup(svix), testBody, testNow); err != nil || res.DeliveryID != swID {
		t.Fatalf("svix-* names: %+v, %v", res, err)
	}
	// The sets are not mixed: one webhook-* header means the webhook-* set is the one checked.
	mixed := maps.Clone(svix)
	mixed["webhook-id"] = swID
	_, err := v.Verify(lookup(mixed), testBody, testNow)
	expectFailure(t, err, reasonMissing)
	if !strings.Contains(err.Error(), "webhook-timestamp") {
		t.Fatalf("error %q should name webhook-timestamp", err)
	}
	// The id is signed: a replay under another id, to dodge deduplication, fails.
	other := maps.Clone(valid)
	other["webhook-id"] = "msg_other"
	_, err = v.Verify(lookup(other), testBody, testNow)
	expectFailure(t, err, reasonSignature)
}

func TestStripeSignatureList(t *testing.T) {
	f := fixtureOf(t, Stripe)
	v := f.verifier(t, f.secrets[0])
	ts, good, _ := strings.Cut(f.sign(t, f.secrets[0], testBody, testNow)["stripe-signature"], ",")
	_, bad, _ := strings.Cut(f.sign(t, f.secrets[2], testBody, testNow)["stripe-signature"], ",")
	for header, ok := range map[string]bool{
		ts + "," + good:                     true,
		good + "," + ts:                     true,
		ts + "," + bad + "," + good:         true, // Stripe rolling a secret sends both
		ts + "," + good + ",v0=" + good[3:]: true,
		ts + ",v1=zz," + good:               true, // undecodable entries are skipped, as stripe-go does
		ts + "," + good + ",scheme=future":  true,
		ts + "," + bad:                      false,
		ts + ",v0=" + good[3:] + ",v1=" + strings.Repeat("0", 64): false,
		ts + ",V1=" + good[3:]:                             false,
		"t=" + unix(testNow.Add(time.Second)) + "," + good: false, // the timestamp is signed
		ts + strings.Repeat(","+bad, 7) + "," + good:       true,
		ts + strings.Repeat(","+bad, 8) + "," + good:       false, // more v1 entries than any sender sends
	} {
		_, err := v.Verify(lookup(map[string]string{"stripe-signature": header}), testBody, testNow)
		if (err == nil) != ok {
			t.Errorf("stripe-signature %q: err %v, want ok=%v", header, err, ok)
		}
	}
}

func TestSlackTimestampIsSigned(t *testing.T) {
	f := fixtureOf(t, Slack)
	v := f.verifier(t, f.secrets[0])
	h := f.sign(t, f.secrets[0], testBody, testNow)
	h["x-slack-request-timestamp"] = unix(testNow.Add(time.Second))
	_, err := v.Verify(lookup(h), testBody, testNow)
	expectFailure(t, err, reasonSignature)
}

func TestBearerSchemeNameAnyCase(t *testing.T) {
	v, err := New(Bearer, []string{"tok-123"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for auth, ok := range map[string]bool{
		"Bearer tok-123":     true,
		"bearer tok-123":     true,
		"BEARER tok-123":     true,
		"Bearer  tok-123 ":   true,
		"Bearer tok-1234":    false,
		"Bearer tok-12":      false,
		"Bearer Tok-123":     false,
		"Bearer tok-123 x":   false,
		"Bearer\ttok-123":    false,
		"Basic dG9rLTEyMw==": false,
	} {
		_, err := v.Verify(lookup(map[string]string{"authorization": auth}), nil, testNow)
		if (err == nil) != ok {
			t.Errorf("authorization %q: err %v, want ok=%v", auth, err, ok)
		}
	}
}

func TestVerifyCustomTolerance(t *testing.T) {
	f := fixtureOf(t, Slack)
	v, err := New(Slack, []string{f.secrets[0]}, Options{Tolerance: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(lookup(f.sign(t, f.secrets[0], testBody, testNow.Add(-time.Minute))), testBody, testNow); err != nil {
		t.Fatalf("a minute old: %v", err)
	}
	_, err = v.Verify(lookup(f.sign(t, f.secrets[0], testBody, testNow.Add(-2*time.Minute))), testBody, testNow)
	expectFailure(t, err, reasonTimestamp)
}

func TestNoneAndUnconfigured(t *testing.T) {
	v, err := New(None, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(nil, nil, time.Time{}); err != nil {
		t.Fatalf("none: %v", err)
	}
	var zero Verifier
	_, err = zero.Verify(lookup(nil), testBody, testNow)
	expectFailure(t, err, reasonUnconfigured)
	var nilV *Verifier
	_, err = nilV.Verify(lookup(nil), testBody, testNow)
	expectFailure(t, err, reasonUnconfigured)
	if nilV.Scheme() != "" || v.Scheme() != None {
		t.Fatal("Scheme()")
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name    string
		scheme  Scheme
		secrets []string
		opts    Options
		want    []string // parts of the error, all reported together; none means valid
	}{
		{"unknown scheme", "hmac", []string{"s"}, Options{}, []string{`unknown scheme "hmac"`}},
		{"empty scheme", "", []string{"s"}, Options{}, []string{`unknown scheme ""`}},
		{"no secrets", Stripe, nil, Options{}, []string{"needs at least one secret"}},
		{"only empty secrets", GitHub, []string{"", ""}, Options{}, []string{"needs at least one secret"}},
		{"none with a secret", None, []string{"s"}, Options{}, []string{"takes no secrets"}},
		{"none", None, nil, Options{}, nil},
		{"none with empty slots", None, []string{""}, Options{}, nil},
		{"whsec not base64", StandardWebhooks, []string{"whsec_not*base64!"}, Options{}, []string{"secret 1: not whsec_ followed by standard base64"}},
		{"whsec empty", StandardWebhooks, []string{"whsec_"}, Options{}, []string{"secret 1: not whsec_"}},
		{"whsec second bad", StandardWebhooks, []string{swOld, "whsec_%%%"}, Options{}, []string{"secret 2"}},
		{"bare base64 key", StandardWebhooks, []string{strings.TrimPrefix(swOld, "whsec_")}, Options{}, nil},
		{"stripe whsec not decoded", Stripe, []string{"whsec_not*base64!"}, Options{}, nil},
		{"header for a fixed scheme", GitHub, []string{"s"}, Options{Header: "x-sig"}, []string{"header option"}},
		{"header for shared secret", SharedSecret, []string{"s"}, Options{Header: "X-Token"}, nil},
		{"negative tolerance", Slack, []string{"s"}, Options{Tolerance: -time.Second}, []string{"negative tolerance"}},
		{"every problem together", StandardWebhooks, []string{"whsec_%%%"}, Options{Header: "x", Tolerance: -1},
			[]string{"header option", "negative tolerance", "secret 1"}},
		{"no secret and a bad option", Stripe, []string{""}, Options{Header: "x"}, []string{"header option", "needs at least one secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(tt.scheme, tt.secrets, tt.opts)
			if len(tt.want) == 0 {
				if err != nil || v == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || v != nil {
				t.Fatalf("New = %v, %v; want an error", v, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, s := range tt.secrets {
				if len(s) > 6 && strings.Contains(err.Error(), s) {
					t.Errorf("error %q quotes a secret", err)
				}
			}
		})
	}
}

func TestHeaderOptionIsLowerCased(t *testing.T) {
	v, err := New(SharedSecret, []string{"sekrit-value"}, Options{Header: "X-Token"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(lookup(map[string]string{"x-token": "sekrit-value"}), nil, testNow); err != nil {
		t.Fatal(err)
	}
}

// The HMAC schemes allocate nothing on success, a rotation's second secret included.

func TestVerifyHMACSHA256AllocatesNothing(t *testing.T) { testAllocatesNothing(t, HMACSHA256) }
func TestVerifyStandardWebhooksAllocatesNothing(t *testing.T) {
	testAllocatesNothing(t, StandardWebhooks)
}
func TestVerifyStripeAllocatesNothing(t *testing.T) { testAllocatesNothing(t, Stripe) }
func TestVerifyGitHubAllocatesNothing(t *testing.T) { testAllocatesNothing(t, GitHub) }
func TestVerifySlackAllocatesNothing(t *testing.T)  { testAllocatesNothing(t, Slack) }

func testAllocatesNothing(t *testing.T, s Scheme) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector; make test runs this without -race")
	}
	f := fixtureOf(t, s)
	if !f.covers {
		t.Fatalf("%s is not an HMAC scheme", s)
	}
	v := f.verifier(t, f.secrets[0], f.secrets[1])
	h := f.sign(t, f.secrets[1], testBody, testNow)
	header := func(name string) string { return h[name] }
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := v.Verify(header, testBody, testNow); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Verify(%s) allocates %v times per call", f.scheme, allocs)
	}
}

// The token schemes allocate nothing on success either, with secrets as long as those generated
// (64 characters) and as long as a source's may be (256), a rotation's second secret included.

func TestVerifySharedSecretAllocatesNothing(t *testing.T) { testTokenAllocatesNothing(t, SharedSecret) }
func TestVerifyBearerAllocatesNothing(t *testing.T)       { testTokenAllocatesNothing(t, Bearer) }
func TestVerifyTelegramAllocatesNothing(t *testing.T)     { testTokenAllocatesNothing(t, Telegram) }

func testTokenAllocatesNothing(t *testing.T, s Scheme) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts; make test runs this without -race")
	}
	f := fixtureOf(t, s)
	if f.covers {
		t.Fatalf("%s is not a token scheme", s)
	}
	for _, n := range []int{64, 256} {
		old, cur := generatedSecret(0), generatedSecret(1)
		if n == 256 {
			old, cur = strings.Repeat(old, 4), strings.Repeat(cur, 4)
		}
		v := f.verifier(t, old, cur)
		h := f.sign(t, cur, nil, testNow)
		header := func(name string) string { return h[name] }
		allocs := testing.AllocsPerRun(200, func() {
			if _, err := v.Verify(header, nil, testNow); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Fatalf("Verify(%s) with a %d-character secret allocates %v times per call", s, n, allocs)
		}
	}
}

// generatedSecret is a secret shaped as the management API generates them: 64 hex characters.
func generatedSecret(i int) string {
	return hex.EncodeToString(macOf([]byte("generated"), strconv.Itoa(i)))
}

// One verifier serves concurrent requests: the pooled HMAC states never mix two requests.
func TestVerifyConcurrent(t *testing.T) {
	for _, s := range []Scheme{HMACSHA256, StandardWebhooks, Stripe, GitHub, Slack} {
		t.Run(string(s), func(t *testing.T) {
			f := fixtureOf(t, s)
			v := f.verifier(t, f.secrets[0], f.secrets[1])
			done := make(chan error)
			for g := range 8 {
				go func() {
					for i := range 100 {
						body := []byte(strconv.Itoa(g*1000 + i))
						h := f.sign(t, f.secrets[i%2], body, testNow)
						if _, err := v.Verify(lookup(h), body, testNow); err != nil {
							done <- err
							return
						}
						if _, err := v.Verify(lookup(h), append(body, 'x'), testNow); err == nil {
							done <- errors.New("a tampered body verified")
							return
						}
					}
					done <- nil
				}()
			}
			for range 8 {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
