// Package widget serves the embeddable web chat: signed short-lived session tokens, messages queued like
// inbound ones, the session's thread as SSE, and CORS for the workspace's allowed origins only.
package widget

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/verify"
)

// Channel is the channel of widget threads; their external id is the session id.
const Channel = "web"

// Session is what a token carries: whose session it is and until when it holds.
type Session struct {
	Workspace string
	ID        string // wss_…, random: a session's thread cannot be guessed
	Origin    string // the site that opened it; requests from another origin are refused
	Expires   time.Time
	// Issued is when the session was opened, kept through renewals: no renewal extends a session
	// past Issued + Config.MaxLifetime. Zero in tokens signed before it was carried.
	Issued time.Time
}

// ThreadID is the session's thread, derived from (workspace, "web", session id). It needs no key:
// the session id is random, so nobody without the session's token can compute it.
func (s Session) ThreadID() string { return ids.Derive("thr", s.Workspace, Channel, s.ID) }

// A token is "hgw1." + base64url(JSON payload) + "." + hex(HMAC-SHA256(key, "hgw1." + payload)).
// The payload is {"w": workspace, "s": session id, "o": origin, "e": expiry in Unix seconds,
// "i": when the session was first issued, in Unix seconds}.
// Tokens are stateless: nothing is stored per session, and they cannot be revoked before they
// expire, so they are kept short-lived (SessionTTL) and renewed while valid.
const (
	tokenPrefix   = "hgw1."
	maxTokenBytes = 1024
)

type payload struct {
	W string `json:"w"`
	S string `json:"s"`
	O string `json:"o"`
	E int64  `json:"e"`
	I int64  `json:"i,omitempty"`
}

// Sign returns the token of s under the first of keys.
func Sign(keys *verify.Secrets, s Session) string {
	p := payload{W: s.Workspace, S: s.ID, O: s.Origin, E: s.Expires.Unix()}
	if !s.Issued.IsZero() {
		p.I = s.Issued.Unix()
	}
	b, _ := json.Marshal(p) // strings and numbers: cannot fail
	signed := tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	sig := strings.TrimPrefix(keys.SignHMAC([]byte(signed)), "sha256=")
	return signed + "." + sig
}

// Verify checks a token's signature against every key (constant time; old keys verify during a
// rotation) and its expiry. A malformed, forged or expired token is Unauthorized; the message says
// which of expired or invalid, nothing more.
func Verify(keys *verify.Secrets, token string, now time.Time) (Session, error) {
	invalid := apierr.New(apierr.Unauthorized, "invalid session token")
	if len(token) > maxTokenBytes || !strings.HasPrefix(token, tokenPrefix) {
		return Session{}, invalid
	}
	dot := strings.LastIndexByte(token, '.')
	if dot <= len(tokenPrefix) {
		return Session{}, invalid
	}
	signed, sig := token[:dot], token[dot+1:]
	if !keys.VerifyHMAC([]byte(signed), "sha256="+sig) {
		return Session{}, invalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(signed[len(tokenPrefix):])
	if err != nil {
		return Session{}, invalid
	}
	var p payload
	if err := json.Unmarshal(raw, &p); err != nil || p.W == "" || p.S == "" || p.O == "" || p.E == 0 {
		return Session{}, invalid
	}
	s := Session{Workspace: p.W, ID: p.S, Origin: p.O, Expires: time.Unix(p.E, 0).UTC()}
	if p.I != 0 {
		s.Issued = time.Unix(p.I, 0).UTC()
	}
	if !now.Before(s.Expires) {
		return Session{}, apierr.New(apierr.Unauthorized, "session token expired: open a new session")
	}
	return s, nil
}
