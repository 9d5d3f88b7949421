// Package outbound is the library behind every request Hookgate sends out: signatures (both schemes),
// the retry schedule, the HTTP client that refuses private destinations, and the attempt primitive.
package outbound

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Header names, in canonical form so they can be assigned to an http.Header directly.
const (
	HeaderID        = "Webhook-Id"
	HeaderTimestamp = "Webhook-Timestamp"
	HeaderSignature = "Webhook-Signature"
	HeaderHMAC      = "X-Webhook-Signature"
)

const (
	secretPrefix   = "whsec_"
	minSecretBytes = 24 // Standard Webhooks: at least 192 bits,
	maxSecretBytes = 64 // at most 512.
)

// Errors of NewSigner. They never contain the secret.
var (
	ErrNoSecret      = errors.New("delivery: no signing secret")
	ErrInvalidSecret = errors.New("delivery: signing secret is not whsec_ + base64 of 24 to 64 bytes")
)

// NewSecret returns a fresh Standard Webhooks secret: "whsec_" + base64 of 32 random bytes.
func NewSecret() string {
	var b [32]byte
	rand.Read(b[:]) // never fails: crypto/rand aborts the program if the OS cannot supply randomness
	return secretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// ValidSecret reports whether s is "whsec_" + standard base64 of 24 to 64 bytes.
func ValidSecret(s string) bool {
	_, ok := decodeSecret(s)
	return ok
}

func decodeSecret(s string) ([]byte, bool) {
	enc, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return nil, false
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, false
	}
	return key, true
}

// Signer signs outbound deliveries with one secret, or several (newest first) during a rotation.
// It is safe for concurrent use; its HMAC states are pooled, so signing allocates two small objects.
type Signer struct {
	secrets []string // "whsec_…", the keys of X-Webhook-Signature
	keys    [][]byte // their decoded bytes, the keys of Webhook-Signature
	pool    sync.Pool
}

// macs is the pooled signing state of one Signer: two HMAC states per secret and scratch space.
type macs struct {
	std, hex []hash.Hash // Standard Webhooks and X-Webhook-Signature, one per secret
	pre      []byte      // "{id}.{ts}."
	out      []byte      // the header text
	sum      [sha256.Size]byte
}

// NewSigner returns a Signer for secrets, newest first. Each must satisfy ValidSecret.
func NewSigner(secrets ...string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, ErrNoSecret
	}
	keys := make([][]byte, len(secrets))
	for i, sec := range secrets {
		key, ok := decodeSecret(sec)
		if !ok {
			return nil, fmt.Errorf("secret %d of %d: %w", i+1, len(secrets), ErrInvalidSecret)
		}
		keys[i] = key
	}
	return newSigner(secrets, keys), nil
}

// NewSharedSigner returns a Signer for shared secrets of any form, newest first: a whsec_ secret
// keys Webhook-Signature as Standard Webhooks defines, any other secret with its own bytes. Both
// ends already hold the secret (a webhook adapter's callbacks are signed with the adapter's).
func NewSharedSigner(secrets ...string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, ErrNoSecret
	}
	keys := make([][]byte, len(secrets))
	for i, sec := range secrets {
		if sec == "" {
			return nil, ErrNoSecret
		}
		key, ok := decodeSecret(sec)
		if !ok {
			key = []byte(sec)
		}
		keys[i] = key
	}
	return newSigner(secrets, keys), nil
}

func newSigner(secrets []string, keys [][]byte) *Signer {
	s := &Signer{secrets: append([]string(nil), secrets...), keys: keys}
	s.pool.New = func() any {
		m := &macs{std: make([]hash.Hash, len(s.keys)), hex: make([]hash.Hash, len(s.keys))}
		for i := range s.keys {
			m.std[i] = hmac.New(sha256.New, s.keys[i])
			m.hex[i] = hmac.New(sha256.New, []byte(s.secrets[i]))
		}
		return m
	}
	return s
}

// String describes the Signer without its secrets, so printing or logging one leaks nothing.
func (s *Signer) String() string { return fmt.Sprintf("delivery.Signer(%d secrets)", len(s.keys)) }

// GoString is String, for %#v.
func (s *Signer) GoString() string { return s.String() }

// Headers sets the signature headers of one attempt on h:
//
//	Webhook-Id:          msgID
//	Webhook-Timestamp:   ts in unix seconds
//	Webhook-Signature:   v1,<base64 HMAC-SHA256(decoded secret, "{msgID}.{ts}.{body}")>, one per
//	                     secret, space-separated (Standard Webhooks)
//	X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret, body)>, one per secret, comma-separated
//	                     without spaces, newest first
//
// The key of X-Webhook-Signature is the whole secret string as shown to the user, "whsec_"
// included, so a receiver can paste it into any HMAC helper. With one secret (no rotation under
// way) the header is exactly "sha256=<hex>"; during a rotation a receiver splits it on commas.
// msgID must not contain '.' (Standard Webhooks); Post checks that.
func (s *Signer) Headers(msgID string, ts time.Time, body []byte, h http.Header) {
	m := s.pool.Get().(*macs)
	defer s.pool.Put(m)

	m.pre = append(append(m.pre[:0], msgID...), '.')
	m.pre = strconv.AppendInt(m.pre, ts.Unix(), 10)
	tsEnd := len(m.pre)
	m.pre = append(m.pre, '.')

	out := append(m.out[:0], m.pre[len(msgID)+1:tsEnd]...)
	sigStart := len(out)
	for i, mac := range m.std {
		if i > 0 {
			out = append(out, ' ')
		}
		mac.Reset()
		mac.Write(m.pre)
		mac.Write(body)
		out = base64.StdEncoding.AppendEncode(append(out, "v1,"...), mac.Sum(m.sum[:0]))
	}
	hexStart := len(out)
	for i, mac := range m.hex {
		if i > 0 {
			out = append(out, ',')
		}
		mac.Reset()
		mac.Write(body)
		out = hex.AppendEncode(append(out, "sha256="...), mac.Sum(m.sum[:0]))
	}
	m.out = out

	text := string(out) // one allocation for every header value
	v := make([]string, 4)
	v[0], v[1], v[2], v[3] = msgID, text[:sigStart], text[sigStart:hexStart], text[hexStart:]
	h[HeaderID], h[HeaderTimestamp], h[HeaderSignature], h[HeaderHMAC] = v[0:1:1], v[1:2:2], v[2:3:3], v[3:4:4]
}
