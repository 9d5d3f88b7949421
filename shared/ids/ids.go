// Package ids makes Hookgate's identifiers: prefixed, URL-safe, either random and time-ordered
// (like ULIDs) or derived from a key, so that a retried request maps to the same ids.
package ids

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"time"
)

// Crockford's base32: no I, L, O, U; sorts like the bytes it encodes.
const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// New returns prefix_<26 chars>: 48 bits of milliseconds then 80 random bits, so ids made later
// sort later.
func New(prefix string, now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	_, _ = rand.Read(b[6:]) // never returns an error (crypto/rand docs)
	return encode(prefix, b)
}

// Derive returns prefix_<26 chars> from the SHA-256 of the parts, so the same parts always give
// the same id. Parts are length-prefixed: ("ab","c") and ("a","bc") differ. Anyone who knows the
// parts can compute it: use it only for ids derived from ids that are themselves unguessable (a
// run's events, a delivery); ids derived from what a sender or a provider chose (an event id, a
// chat id, an update id) come from a Keyed.
func Derive(prefix string, parts ...string) string { return derive(sha256.New(), prefix, parts) }

func derive(h hash.Hash, prefix string, parts []string) string {
	var n [4]byte
	for _, p := range parts {
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	var sum [32]byte
	var b [16]byte
	copy(b[:], h.Sum(sum[:0]))
	return encode(prefix, b)
}

// MinKeyLen is the shortest key NewKeyed accepts.
const MinKeyLen = 16

// Keyed derives ids with HMAC-SHA256 under the stack's id key (IdDerivationKey), so that nobody
// without the key can compute the id of a thread, run or message from the event id, chat id or
// update id it was derived from. Build it once in a function's main and pass it down.
type Keyed struct{ key []byte }

// NewKeyed returns a Keyed for key (at least MinKeyLen bytes; envcfg.Secret checks that).
func NewKeyed(key string) Keyed { return Keyed{key: []byte(key)} }

// Derive is like the package's Derive, keyed: the same parts under the same key give the same id.
func (k Keyed) Derive(prefix string, parts ...string) string {
	return derive(hmac.New(sha256.New, k.key), prefix, parts)
}

// Thread is the id of the thread for (workspace, channel, external id): derived, so a door can
// return it before the worker has stored the thread.
func (k Keyed) Thread(workspace, channel, externalID string) string {
	return k.Derive("thr", workspace, channel, externalID)
}

func encode(prefix string, b [16]byte) string {
	out := make([]byte, 0, len(prefix)+1+26)
	out = append(out, prefix...)
	out = append(out, '_')
	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	// 128 bits as 26 five-bit groups (the first group holds the top 3 bits).
	for i := 25; i >= 0; i-- {
		shift := uint(i * 5)
		var v uint64
		switch {
		case shift >= 64:
			v = hi >> (shift - 64)
		case shift > 59:
			v = lo>>shift | hi<<(64-shift)
		default:
			v = lo >> shift
		}
		out = append(out, alphabet[v&31])
	}
	return string(out)
}

// Valid reports whether s looks like an id with the given prefix.
func Valid(prefix, s string) bool {
	if len(s) != len(prefix)+27 || s[:len(prefix)] != prefix || s[len(prefix)] != '_' {
		return false
	}
	for _, c := range []byte(s[len(prefix)+1:]) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' && c != 'i' && c != 'l' && c != 'o' && c != 'u') {
			return false
		}
	}
	return true
}
