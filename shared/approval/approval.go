// Package approval signs and checks the decision tokens that let an approver answer a run's
// request for approval, and derives the secrets webhook adapter callbacks are signed with.
package approval

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Decisions a token may carry.
const (
	Approve = "approve"
	Deny    = "deny"
)

// Any is the approver of a request that names none: whoever holds the token.
const Any = "any"

// Limits.
const (
	MinKeyLen    = 16   // of a stack signing key
	MaxApprovers = 10   // of one request
	MaxTokenLen  = 2048 // of a presented token, before any decoding
	version      = "v1"
)

// Errors of Verify. A caller answers both with 403; neither says more than the reason.
var (
	ErrInvalid = errors.New("decision token is invalid")
	ErrExpired = errors.New("decision token has expired")
)

// Token is what a decision token grants: one approver's one decision (with one option, for an
// approval) on one approval request of one run, until Expires.
type Token struct {
	Workspace string
	RunID     string
	RequestID string
	Approver  string
	Decision  string // Approve or Deny
	Option    string // the option approved; empty for a denial and a request without options
	Expires   time.Time
}

// Keys signs tokens with the first key and accepts tokens of every key (a rotation).
type Keys struct {
	keys [][]byte
	now  func() time.Time
}

// NewKeys returns Keys over the stack's signing keys, newest first; now is the clock that
// decides expiry.
func NewKeys(now func() time.Time, keys ...string) (*Keys, error) {
	if len(keys) == 0 {
		return nil, errors.New("no approval signing key")
	}
	k := &Keys{now: now}
	for i, s := range keys {
		if len(s) < MinKeyLen {
			return nil, fmt.Errorf("approval signing key %d is shorter than %d characters", i+1, MinKeyLen)
		}
		k.keys = append(k.keys, []byte(s))
	}
	return k, nil
}

// String never shows the keys.
func (k *Keys) String() string { return fmt.Sprintf("approval.Keys(%d)", len(k.keys)) }

// payload is the signed part of a token: a JSON array, so no field can run into the next.
func payload(t Token) []byte {
	b, _ := json.Marshal([]any{version, t.Workspace, t.RunID, t.RequestID, t.Approver, t.Decision, t.Option, t.Expires.Unix()})
	return b
}

func mac(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

var b64 = base64.RawURLEncoding

// Sign returns the token: base64url(payload) "." base64url(HMAC-SHA256(key, payload)), where
// payload is the JSON array ["v1", workspace, run id, request id, approver, decision, option,
// expiry in unix seconds]. It is URL-safe.
func (k *Keys) Sign(t Token) string {
	p := payload(t)
	return b64.EncodeToString(p) + "." + b64.EncodeToString(mac(k.keys[0], p))
}

// Verify checks the token's signature (in constant time, against every key) and expiry, and
// returns what it grants. The caller still checks that it is for the run, request, decision and
// option at hand.
func (k *Keys) Verify(tok string) (Token, error) {
	if len(tok) > MaxTokenLen {
		return Token{}, ErrInvalid
	}
	p64, s64, ok := strings.Cut(tok, ".")
	if !ok {
		return Token{}, ErrInvalid
	}
	p, err1 := b64.DecodeString(p64)
	sig, err2 := b64.DecodeString(s64)
	if err1 != nil || err2 != nil {
		return Token{}, ErrInvalid
	}
	good := false
	for _, key := range k.keys {
		good = hmac.Equal(sig, mac(key, p)) || good
	}
	if !good {
		return Token{}, ErrInvalid
	}
	var f []json.RawMessage
	if json.Unmarshal(p, &f) != nil || len(f) != 8 {
		return Token{}, ErrInvalid
	}
	var t Token
	var v string
	var exp int64
	for i, dst := range []any{&v, &t.Workspace, &t.RunID, &t.RequestID, &t.Approver, &t.Decision, &t.Option, &exp} {
		if json.Unmarshal(f[i], dst) != nil {
			return Token{}, ErrInvalid
		}
	}
	if v != version || !bytes.Equal(p, payload(Token{t.Workspace, t.RunID, t.RequestID, t.Approver, t.Decision, t.Option, time.Unix(exp, 0)})) {
		return Token{}, ErrInvalid
	}
	t.Expires = time.Unix(exp, 0).UTC()
	if !k.now().Before(t.Expires) {
		return t, ErrExpired
	}
	return t, nil
}

// Link is one decision an approver can make, with its token.
type Link struct {
	Approver string `json:"approver"`
	Decision string `json:"decision"`
	Option   string `json:"option,omitempty"`
	Token    string `json:"token"`
	Path     string `json:"path,omitempty"` // the route to POST it to, relative to the API's URL
}

// Request is one request for approval, as the tokens need it.
type Request struct {
	Workspace, RunID, RequestID string
	Approvers, Options          []string
	Expires                     time.Time
	Base                        string // the run's adapter route (/webhook/{name}/threads/{t}/runs/{r}); "" for none
}

// Links returns, per approver, one approve link per option (one without option when there are
// none) and one deny link.
func (k *Keys) Links(r Request) []Link {
	opts := r.Options
	if len(opts) == 0 {
		opts = []string{""}
	}
	out := make([]Link, 0, len(r.Approvers)*(len(opts)+1))
	add := func(approver, decision, option string) {
		tok := k.Sign(Token{Workspace: r.Workspace, RunID: r.RunID, RequestID: r.RequestID, Approver: approver, Decision: decision, Option: option, Expires: r.Expires})
		l := Link{Approver: approver, Decision: decision, Option: option, Token: tok}
		if r.Base != "" {
			l.Path = r.Base + "/" + decision + "?token=" + tok
		}
		out = append(out, l)
	}
	for _, a := range r.Approvers {
		for _, o := range opts {
			add(a, Approve, o)
		}
		add(a, Deny, "")
	}
	return out
}

// CallbackSecret derives the secret a webhook adapter's callbacks are signed with when the
// adapter sets none: "whsec_" + base64(HMAC-SHA256(key, "hookgate-callback-v1\x00" + workspace +
// "\x00" + adapter)). It is never an adapter's Bearer secret, and the receiver can compute it.
func CallbackSecret(key, workspace, adapter string) string {
	return "whsec_" + base64.StdEncoding.EncodeToString(mac([]byte(key), []byte("hookgate-callback-v1\x00"+workspace+"\x00"+adapter)))
}
