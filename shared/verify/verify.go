// Package verify proves who sent an inbound request: shared secrets and HMAC-SHA256 signatures,
// checked over the raw body bytes before any parsing, in constant time, with several secrets
// accepted at once during a rotation.
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
	digest [32]byte // sha256(raw), so comparing a presented secret leaks neither content nor length
	pool   sync.Pool
}

// NewSecrets returns the accepted secrets; empty strings are ignored.
func NewSecrets(secrets ...string) *Secrets {
	s := &Secrets{}
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		k := &key{raw: []byte(sec), digest: sha256.Sum256([]byte(sec))}
		k.pool.New = func() any { return &mac{h: hmac.New(sha256.New, k.raw)} }
		s.keys = append(s.keys, k)
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
	d := sha256.Sum256([]byte(presented))
	ok := 0
	for _, k := range s.keys {
		ok |= subtle.ConstantTimeCompare(d[:], k.digest[:])
	}
	return ok == 1
}

// VerifyHMAC reports whether header is "sha256=<hex of HMAC-SHA256(secret, body)>" for one of
// the secrets. It allocates nothing.
func (s *Secrets) VerifyHMAC(body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return false
	}
	var want [sha256.Size]byte
	if _, err := hex.Decode(want[:], []byte(hexSig)); err != nil {
		return false
	}
	match := false
	for _, k := range s.keys {
		m := k.sum(body)
		if hmac.Equal(m.sum, want[:]) {
			match = true
		}
		k.pool.Put(m)
	}
	return match
}

// SignHMAC returns "sha256=<hex>" of body under the first secret.
func (s *Secrets) SignHMAC(body []byte) string {
	if len(s.keys) == 0 {
		return ""
	}
	m := s.keys[0].sum(body)
	defer s.keys[0].pool.Put(m)
	return "sha256=" + hex.EncodeToString(m.sum)
}

// mac is a reusable HMAC state with room for its sum, so verifying allocates nothing.
type mac struct {
	h   hash.Hash
	buf [sha256.Size]byte
	sum []byte
}

// sum computes the HMAC of body into a pooled mac; the caller puts it back.
func (k *key) sum(body []byte) *mac {
	m := k.pool.Get().(*mac)
	m.h.Reset()
	m.h.Write(body)
	m.sum = m.h.Sum(m.buf[:0])
	return m
}
