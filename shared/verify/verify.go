// Package verify checks who sent an inbound request over the raw body, in constant time: shared secrets,
// bearer and secret tokens, and the HMAC schemes of Standard Webhooks, Stripe, GitHub and Slack.
package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"strings"
	"sync"
)

// Secrets are the accepted secrets of one source: normally one, two during a rotation.
type Secrets struct {
	keys []*key
}

type key struct {
	raw    []byte
	digest [sha256.Size]byte // sha256(raw), so comparing a presented secret leaks neither content nor length
	pool   sync.Pool         // of *mac keyed with raw
}

func newKey(raw []byte) *key {
	k := &key{raw: raw, digest: sha256.Sum256(raw)}
	k.pool.New = func() any { return &mac{h: hmac.New(sha256.New, k.raw)} }
	return k
}

// NewSecrets returns the accepted secrets; empty strings are ignored.
func NewSecrets(secrets ...string) *Secrets {
	s := &Secrets{}
	for _, sec := range secrets {
		if sec != "" {
			s.keys = append(s.keys, newKey([]byte(sec)))
		}
	}
	return s
}

// Empty reports whether no secret is configured.
func (s *Secrets) Empty() bool { return len(s.keys) == 0 }

// Equal reports whether presented equals one of the secrets, in constant time.
func (s *Secrets) Equal(presented string) bool {
	if presented == "" {
		return false
	}
	d := digestOf(presented)
	ok := 0
	for _, k := range s.keys {
		ok |= subtle.ConstantTimeCompare(d[:], k.digest[:])
	}
	return ok == 1
}

// digestOf is sha256(s) without allocating for any s up to maxStackToken bytes ([]byte(s) allocates
// from 33 bytes on, and generated secrets are 64).
func digestOf(s string) [sha256.Size]byte {
	if len(s) > maxStackToken {
		return sha256.Sum256([]byte(s))
	}
	var buf [maxStackToken]byte
	return sha256.Sum256(buf[:copy(buf[:], s)])
}

// maxStackToken is the longest presented token hashed from a stack buffer: a source's secret has at
// most 256 characters; a longer stack secret still verifies, with one allocation.
const maxStackToken = 512

// VerifyHMAC reports whether header is "sha256=<hex of HMAC-SHA256(secret, body)>" for one of
// the secrets. It allocates nothing.
func (s *Secrets) VerifyHMAC(body []byte, header string) bool {
	var want [sha256.Size]byte
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	return ok && decodeHex(&want, hexSig) && s.matchSum(&want, body)
}

// SignHMAC returns "sha256=<hex>" of body under the first secret.
func (s *Secrets) SignHMAC(body []byte) string {
	if len(s.keys) == 0 {
		return ""
	}
	m := s.keys[0].sum(body)
	defer s.keys[0].pool.Put(m)
	return "sha256=" + hex.EncodeToString(m.sum[:])
}

// matchSum reports whether want is the HMAC of prefix then body under one of the secrets. Every
// secret is tried, so the time taken does not say which one matched.
func (s *Secrets) matchSum(want *[sha256.Size]byte, body []byte, prefix ...string) bool {
	match := false
	for _, k := range s.keys {
		m := k.sum(body, prefix...)
		if hmac.Equal(m.sum[:], want[:]) {
			match = true
		}
		k.pool.Put(m)
	}
	return match
}

// mac is a reusable HMAC state with room for its sum and for the signed prefix, so verifying
// allocates nothing.
type mac struct {
	h       hash.Hash
	sum     [sha256.Size]byte
	scratch [64]byte // the prefix strings go through here: []byte(s) into an interface would allocate
}

// sum computes the HMAC of the prefix strings then body into a pooled mac; the caller puts it back.
func (k *key) sum(body []byte, prefix ...string) *mac {
	m := k.pool.Get().(*mac)
	m.h.Reset()
	n := 0
	for _, p := range prefix {
		for p != "" {
			if n == len(m.scratch) {
				m.h.Write(m.scratch[:n])
				n = 0
			}
			c := copy(m.scratch[n:], p)
			n += c
			p = p[c:]
		}
	}
	if n > 0 {
		m.h.Write(m.scratch[:n])
	}
	m.h.Write(body)
	m.h.Sum(m.sum[:0])
	return m
}

// decodeHex decodes a SHA-256 sized hex string, either case, into dst.
func decodeHex(dst *[sha256.Size]byte, s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	var src [2 * sha256.Size]byte
	copy(src[:], s)
	_, err := hex.Decode(dst[:], src[:])
	return err == nil
}
