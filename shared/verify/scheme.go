package verify

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Scheme names how a source proves a request is its own.
type Scheme string

// The schemes a source can be configured with.
const (
	SharedSecret     Scheme = "shared_secret"     // a header carries one of the secrets as is
	HMACSHA256       Scheme = "hmac_sha256"       // a header carries sha256=<hex HMAC-SHA256(secret, body)>
	StandardWebhooks Scheme = "standard_webhooks" // webhook-id, webhook-timestamp, webhook-signature (also svix-*)
	Stripe           Scheme = "stripe"            // stripe-signature: t=<unix>,v1=<hex>
	GitHub           Scheme = "github"            // x-hub-signature-256: sha256=<hex>
	Slack            Scheme = "slack"             // x-slack-signature: v0=<hex>, x-slack-request-timestamp
	Telegram         Scheme = "telegram"          // x-telegram-bot-api-secret-token carries one of the secrets
	Bearer           Scheme = "bearer"            // authorization: Bearer <one of the secrets>
	None             Scheme = "none"              // no proof; only when configured explicitly
)

// DefaultTolerance is how far a signed timestamp may be from now, either way, unless Options say.
const DefaultTolerance = 5 * time.Minute

// Default header names of the hookgate schemes, lower-case as API Gateway HTTP API delivers them.
const (
	defaultSecretHeader    = "x-hookgate-inbound-secret"
	defaultSignatureHeader = "x-hookgate-signature"
)

// Options tune a scheme; the zero value gives the defaults.
type Options struct {
	// Header is the header of shared_secret (default x-hookgate-inbound-secret) or hmac_sha256
	// (default x-hookgate-signature). Other schemes use their provider's names and refuse it.
	Header string
	// Tolerance is how far a signed timestamp may be from now, either way (default 5 minutes).
	Tolerance time.Duration
}

// Result is what a verified request tells about itself.
type Result struct {
	// DeliveryID is the provider's id of the delivery carried in headers, for deduplication:
	// webhook-id (Standard Webhooks, signed) or x-github-delivery (GitHub, NOT signed); empty otherwise.
	DeliveryID string
	// Timestamp is the signed time of the request, for the schemes that sign one.
	Timestamp time.Time
}

// ErrInvalidSignature is the cause of every verification failure: missing or malformed headers,
// timestamps outside the tolerance, signatures or secrets that do not match.
var ErrInvalidSignature = errors.New("invalid signature")

// Reasons a request fails. They name a class of failure and the header concerned, never a secret,
// a presented value or an expected MAC, so they are safe for server logs.
const (
	reasonUnconfigured = "verifier not configured"
	reasonMissing      = "missing header"
	reasonMalformed    = "malformed header"
	reasonTimestamp    = "timestamp outside tolerance"
	reasonSignature    = "no matching signature"
	reasonSecret       = "secret mismatch"
)

type failure struct {
	reason string
	header string
}

func (f *failure) Error() string {
	if f.header == "" {
		return "invalid signature: " + f.reason
	}
	return "invalid signature: " + f.reason + " (" + f.header + ")"
}

func (f *failure) Unwrap() error { return ErrInvalidSignature }

func fail(reason, header string) error { return &failure{reason: reason, header: header} }

// Verifier checks requests against one scheme and its secrets. It is safe for concurrent use; its
// zero value rejects everything.
type Verifier struct {
	scheme    Scheme
	header    string // shared_secret and hmac_sha256 only
	tolerance time.Duration
	secrets   *Secrets // for standard_webhooks, the decoded whsec_ keys
}

// New returns a verifier for scheme s accepting any of secrets (empty strings are ignored: an
// unset rotation slot). Every problem of the configuration is reported together.
func New(s Scheme, secrets []string, o Options) (*Verifier, error) {
	v := &Verifier{scheme: s, tolerance: cmp.Or(o.Tolerance, DefaultTolerance), secrets: &Secrets{}}
	var errs []error
	switch s {
	case SharedSecret:
		v.header = cmp.Or(strings.ToLower(o.Header), defaultSecretHeader)
	case HMACSHA256:
		v.header = cmp.Or(strings.ToLower(o.Header), defaultSignatureHeader)
	case StandardWebhooks, Stripe, GitHub, Slack, Telegram, Bearer, None:
		if o.Header != "" {
			errs = append(errs, fmt.Errorf("verify: scheme %s has fixed header names; the header option is for %s and %s",
				s, SharedSecret, HMACSHA256))
		}
	default:
		return nil, fmt.Errorf("verify: unknown scheme %q", s)
	}
	if o.Tolerance < 0 {
		errs = append(errs, fmt.Errorf("verify: scheme %s: negative tolerance %s", s, o.Tolerance))
	}
	given := 0
	for i, sec := range secrets {
		if sec == "" {
			continue
		}
		given++
		raw := []byte(sec)
		if s == StandardWebhooks {
			var err error
			if raw, err = decodeWhsec(sec); err != nil {
				errs = append(errs, fmt.Errorf("verify: scheme %s: secret %d: %w", s, i+1, err))
				continue
			}
		}
		v.secrets.keys = append(v.secrets.keys, newKey(raw))
	}
	switch {
	case s == None && given > 0:
		errs = append(errs, fmt.Errorf("verify: scheme %s takes no secrets", s))
	case s != None && given == 0:
		errs = append(errs, fmt.Errorf("verify: scheme %s needs at least one secret", s))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return v, nil
}

// decodeWhsec returns the key of a Standard Webhooks secret: base64 after an optional whsec_
// prefix, as the reference libraries read it. Its errors never quote the secret.
func decodeWhsec(sec string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sec, "whsec_"))
	if err != nil || len(raw) == 0 {
		return nil, errors.New("not whsec_ followed by standard base64")
	}
	return raw, nil
}

// Scheme returns the scheme the verifier checks.
func (v *Verifier) Scheme() Scheme {
	if v == nil {
		return ""
	}
	return v.scheme
}

// Verify checks the request given by its raw body and header, which is called with lower-case
// names and returns "" for an absent header; now is the time timestamps are checked against.
// Every failure is an ErrInvalidSignature. The HMAC schemes allocate nothing when they succeed.
func (v *Verifier) Verify(header func(lowerName string) string, body []byte, now time.Time) (Result, error) {
	if v == nil || v.secrets == nil {
		return Result{}, fail(reasonUnconfigured, "")
	}
	if header == nil {
		header = noHeaders
	}
	switch v.scheme {
	case None:
		return Result{}, nil
	case SharedSecret:
		return Result{}, v.token(header(v.header), v.header)
	case Telegram:
		const name = "x-telegram-bot-api-secret-token"
		return Result{}, v.token(header(name), name)
	case Bearer:
		return Result{}, v.bearer(header("authorization"))
	case HMACSHA256:
		return Result{}, v.sha256Hex(header(v.header), v.header, body)
	case GitHub:
		const name = "x-hub-signature-256"
		if err := v.sha256Hex(header(name), name, body); err != nil {
			return Result{}, err
		}
		return Result{DeliveryID: header("x-github-delivery")}, nil
	case StandardWebhooks:
		return v.standardWebhooks(header, body, now)
	case Stripe:
		return v.stripe(header("stripe-signature"), body, now)
	case Slack:
		return v.slack(header("x-slack-signature"), header("x-slack-request-timestamp"), body, now)
	}
	return Result{}, fail(reasonUnconfigured, "")
}

func noHeaders(string) string { return "" }

// token: the header carries one of the secrets as is.
func (v *Verifier) token(presented, name string) error {
	if presented == "" {
		return fail(reasonMissing, name)
	}
	if !v.secrets.Equal(presented) {
		return fail(reasonSecret, name)
	}
	return nil
}

// bearer: "Bearer <token>", the scheme name in any case (RFC 9110 section 11.1).
func (v *Verifier) bearer(auth string) error {
	const name = "authorization"
	if auth == "" {
		return fail(reasonMissing, name)
	}
	scheme, token, ok := strings.Cut(auth, " ")
	token = strings.Trim(token, " \t")
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return fail(reasonMalformed, name)
	}
	if !v.secrets.Equal(token) {
		return fail(reasonSecret, name)
	}
	return nil
}

// sha256Hex: "sha256=<hex of HMAC-SHA256(secret, body)>" (hmac_sha256, GitHub).
func (v *Verifier) sha256Hex(sig, name string, body []byte) error {
	if sig == "" {
		return fail(reasonMissing, name)
	}
	var want [sha256.Size]byte
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	if !ok || !decodeHex(&want, hexSig) {
		return fail(reasonMalformed, name)
	}
	if !v.secrets.matchSum(&want, body) {
		return fail(reasonSignature, name)
	}
	return nil
}

// standardWebhooks: webhook-signature lists "v1,<base64 of HMAC-SHA256(key, id.timestamp.body)>"
// entries separated by spaces; one matching entry is enough, other versions are ignored.
func (v *Verifier) standardWebhooks(header func(string) string, body []byte, now time.Time) (Result, error) {
	names := [3]string{"webhook-id", "webhook-timestamp", "webhook-signature"}
	id, ts, sigs := header(names[0]), header(names[1]), header(names[2])
	if id == "" && ts == "" && sigs == "" { // Svix sends the same values under its own names
		names = [3]string{"svix-id", "svix-timestamp", "svix-signature"}
		id, ts, sigs = header(names[0]), header(names[1]), header(names[2])
	}
	for i, val := range [3]string{id, ts, sigs} {
		if val == "" {
			return Result{}, fail(reasonMissing, names[i])
		}
	}
	sec, ok := parseUnix(ts)
	if !ok {
		return Result{}, fail(reasonMalformed, names[1])
	}
	if !v.fresh(sec, now) {
		return Result{}, fail(reasonTimestamp, names[1])
	}
	const encLen = 44 // base64.StdEncoding.EncodedLen(sha256.Size)
	match := false
	for _, k := range v.secrets.keys {
		m := k.sum(body, id, ".", ts, ".")
		var want [encLen]byte
		base64.StdEncoding.Encode(want[:], m.sum[:])
		k.pool.Put(m)
		for rest := sigs; rest != ""; {
			var entry string
			entry, rest, _ = strings.Cut(rest, " ")
			if len(entry) != len("v1,")+encLen || entry[:3] != "v1," {
				continue
			}
			var got [encLen]byte
			copy(got[:], entry[3:])
			if hmac.Equal(got[:], want[:]) {
				match = true
			}
		}
	}
	switch {
	case match:
		return Result{DeliveryID: id, Timestamp: time.Unix(sec, 0)}, nil
	case !hasEntry(sigs):
		return Result{}, fail(reasonMalformed, names[2])
	}
	return Result{}, fail(reasonSignature, names[2])
}

// hasEntry reports whether a webhook-signature header has at least one "<version>,<signature>".
func hasEntry(sigs string) bool {
	for rest := sigs; rest != ""; {
		var entry string
		entry, rest, _ = strings.Cut(rest, " ")
		if version, sig, ok := strings.Cut(entry, ","); ok && version != "" && sig != "" {
			return true
		}
	}
	return false
}

// stripe: "t=<unix>,v1=<hex>[,v1=<hex>...]" over "{t}.{body}", keyed with the secret as is (a
// whsec_ secret is not decoded). Several v1 entries arrive while Stripe rolls a secret; v0 and
// unknown keys are ignored, v1 entries that are not hex too, as stripe-go does.
func (v *Verifier) stripe(sig string, body []byte, now time.Time) (Result, error) {
	const name = "stripe-signature"
	if sig == "" {
		return Result{}, fail(reasonMissing, name)
	}
	var (
		ts   string
		sigs [maxStripeSignatures][sha256.Size]byte
		n    int // decoded into sigs
		v1   int // v1 entries seen
	)
	for rest, more := sig, true; more; {
		var pair string
		pair, rest, more = strings.Cut(rest, ",")
		k, val, ok := strings.Cut(pair, "=")
		switch {
		case !ok || k == "" || k == "t" && ts != "": // key=value pairs, one timestamp
			return Result{}, fail(reasonMalformed, name)
		case k == "t":
			ts = val // parseUnix takes digits only
			continue
		case k == "v1":
			if v1++; v1 > len(sigs) {
				return Result{}, fail(reasonMalformed, name)
			}
			if decodeHex(&sigs[n], val) {
				n++
				continue
			}
		}
		if strings.Contains(val, "=") { // a second '=' in a pair: stripe-go refuses the header
			return Result{}, fail(reasonMalformed, name)
		}
	}
	sec, ok := parseUnix(ts)
	if !ok || v1 == 0 {
		return Result{}, fail(reasonMalformed, name)
	}
	if !v.fresh(sec, now) {
		return Result{}, fail(reasonTimestamp, name)
	}
	match := false
	for _, k := range v.secrets.keys {
		m := k.sum(body, ts, ".")
		for i := range n {
			if hmac.Equal(sigs[i][:], m.sum[:]) {
				match = true
			}
		}
		k.pool.Put(m)
	}
	if !match {
		return Result{}, fail(reasonSignature, name)
	}
	return Result{Timestamp: time.Unix(sec, 0)}, nil
}

// maxStripeSignatures bounds the v1 entries of one header: Stripe sends one, two while a secret
// rolls; a header with more is refused rather than searched.
const maxStripeSignatures = 8

// slack: x-slack-signature "v0=<hex of HMAC-SHA256(secret, "v0:{timestamp}:{body}")>".
func (v *Verifier) slack(sig, ts string, body []byte, now time.Time) (Result, error) {
	const sigName, tsName = "x-slack-signature", "x-slack-request-timestamp"
	switch {
	case sig == "":
		return Result{}, fail(reasonMissing, sigName)
	case ts == "":
		return Result{}, fail(reasonMissing, tsName)
	}
	sec, ok := parseUnix(ts)
	if !ok {
		return Result{}, fail(reasonMalformed, tsName)
	}
	var want [sha256.Size]byte
	if hexSig, ok := strings.CutPrefix(sig, "v0="); !ok || !decodeHex(&want, hexSig) {
		return Result{}, fail(reasonMalformed, sigName)
	}
	if !v.fresh(sec, now) {
		return Result{}, fail(reasonTimestamp, tsName)
	}
	if !v.secrets.matchSum(&want, body, "v0:", ts, ":") {
		return Result{}, fail(reasonSignature, sigName)
	}
	return Result{Timestamp: time.Unix(sec, 0)}, nil
}

// parseUnix parses unix seconds written as plain decimal digits, the form every provider sends;
// signs, spaces and anything long enough to overflow are refused.
func parseUnix(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// fresh reports whether unix second sec is within the tolerance of now, either way.
func (v *Verifier) fresh(sec int64, now time.Time) bool {
	d := now.Sub(time.Unix(sec, 0))
	return -v.tolerance <= d && d <= v.tolerance
}
