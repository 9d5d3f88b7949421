package outbound

import (
	"fmt"
	"maps"
	"net/textproto"
	"slices"
	"strings"
	"unicode/utf8"
)

// Bounds of a subscription's custom headers: how many, and the bytes of a name, of a value and of
// all names and values together.
const (
	MaxCustomHeaders     = 20
	MaxHeaderNameBytes   = 128
	MaxHeaderValueBytes  = 2048
	MaxCustomHeaderBytes = 8 << 10
)

// reservedHeaders are the headers a custom header may not set: hop-by-hop headers (RFC 9110
// 7.6.1, and Proxy-Connection, Keep-Alive), those HTTP itself or Go's transport writes (Host,
// Content-Length, Transfer-Encoding, Accept-Encoding, Expect), and every header Post sets:
// Content-Type, User-Agent, traceparent, the hop marker and the signatures.
var reservedHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "Te",
	"Trailer", "Transfer-Encoding", "Upgrade",
	"Host", "Content-Length", "Accept-Encoding", "Expect",
	"Content-Type", "User-Agent", "Traceparent", "Tracestate",
	HeaderHMAC,
}

// reservedPrefixes are families of reserved headers: the body's representation (Content-*), the
// Standard Webhooks headers (Webhook-Id, -Timestamp, -Signature and any later one), and the
// gateway's own (Hookgate-Hop, X-Hookgate-*).
var reservedPrefixes = []string{"Content-", "Webhook-", "Hookgate-", "X-Hookgate-"}

// ReservedHeader reports whether a custom header may not have the name (any case).
func ReservedHeader(name string) bool {
	c := textproto.CanonicalMIMEHeaderKey(name)
	if slices.Contains(reservedHeaders, c) {
		return true
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(c, p) {
			return true
		}
	}
	return false
}

// CheckHeaders validates a subscription's custom headers and returns them under their canonical
// names (X-Api-Key for x-api-key). The error names the first header at fault and says why; it
// shows no value.
func CheckHeaders(h map[string]string) (map[string]string, error) {
	if len(h) > MaxCustomHeaders {
		return nil, fmt.Errorf("headers: at most %d", MaxCustomHeaders)
	}
	out := make(map[string]string, len(h))
	total := 0
	for _, name := range slices.Sorted(maps.Keys(h)) {
		value := h[name]
		shown := name
		if len(shown) > 80 || !utf8.ValidString(shown) {
			shown = strings.ToValidUTF8(shown[:min(len(shown), 80)], "") + "…"
		}
		switch {
		case name == "" || !token(name):
			return nil, fmt.Errorf("header %q: a name must be an HTTP token (letters, digits and !#$%%&'*+-.^_`|~)", shown)
		case len(name) > MaxHeaderNameBytes:
			return nil, fmt.Errorf("header %q: a name must be at most %d bytes", shown, MaxHeaderNameBytes)
		case ReservedHeader(name):
			return nil, fmt.Errorf("header %q is set by the delivery itself (hop-by-hop, Host, Content-*, User-Agent, traceparent, signatures and webhook-*, Hookgate-*): it cannot be set", shown)
		case len(value) > MaxHeaderValueBytes:
			return nil, fmt.Errorf("header %q: a value must be at most %d bytes", shown, MaxHeaderValueBytes)
		case !fieldValue(value):
			return nil, fmt.Errorf("header %q: a value must be UTF-8 text without control characters (no CR, LF or NUL)", shown)
		}
		c := textproto.CanonicalMIMEHeaderKey(name)
		if _, dup := out[c]; dup {
			return nil, fmt.Errorf("header %q is given twice (names are case-insensitive)", shown)
		}
		out[c] = value
		if total += len(c) + len(value); total > MaxCustomHeaderBytes {
			return nil, fmt.Errorf("headers: at most %d bytes of names and values together", MaxCustomHeaderBytes)
		}
	}
	return out, nil
}

// token reports whether s is an HTTP token (RFC 9110 5.6.2).
func token(s string) bool {
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// fieldValue reports whether s is a header value Hookgate sends: valid UTF-8, no control
// character but horizontal tab (so no CR, LF or NUL), no DEL.
func fieldValue(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range []byte(s) {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
