// Package trace carries a W3C Trace Context traceparent through one webhook's path: the inbound
// request, the queues, the agent call and every outbound delivery, and puts its trace id in logs.
package trace

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
)

// Header is the HTTP header (and SQS message attribute) that carries a Parent.
const Header = "traceparent"

// Parent is a traceparent of version 00: a trace id, the caller's span id and the sampled flag.
type Parent struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
}

// Valid reports a usable Parent: neither id is all zeros.
func (p Parent) Valid() bool { return p.TraceID != [16]byte{} && p.SpanID != [8]byte{} }

// String is the traceparent header value: 00-<32 hex>-<16 hex>-<2 hex>.
func (p Parent) String() string {
	var b [55]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], p.TraceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], p.SpanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{p.Flags})
	return string(b[:])
}

// TraceIDString is the trace id as 32 lowercase hex digits ("" for the zero Parent).
func (p Parent) TraceIDString() string {
	if !p.Valid() {
		return ""
	}
	return hex.EncodeToString(p.TraceID[:])
}

// Parse reads a traceparent strictly, as attacker input: exactly version 00 and 55 characters,
// lowercase hex only, ids not all zeros, flags with only the sampled bit possibly set. Anything
// else is refused (ok false), never repaired.
func Parse(s string) (Parent, bool) {
	if len(s) != 55 || s[0] != '0' || s[1] != '0' || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return Parent{}, false
	}
	var p Parent
	var flags [1]byte
	if !lowerHex(s[3:35], p.TraceID[:]) || !lowerHex(s[36:52], p.SpanID[:]) || !lowerHex(s[53:55], flags[:]) {
		return Parent{}, false
	}
	p.Flags = flags[0]
	if !p.Valid() || p.Flags&^0x01 != 0 {
		return Parent{}, false
	}
	return p, true
}

// lowerHex decodes s into dst, refusing uppercase and anything not hex.
func lowerHex(s string, dst []byte) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}

// New starts a trace: random ids, sampled.
func New() Parent {
	var p Parent
	for !p.Valid() {
		_, _ = rand.Read(p.TraceID[:])
		_, _ = rand.Read(p.SpanID[:])
	}
	p.Flags = 0x01
	return p
}

// Child is p with a new span id: what a hop sends on, in the same trace.
func (p Parent) Child() Parent {
	c := p
	c.SpanID = [8]byte{}
	for c.SpanID == [8]byte{} {
		_, _ = rand.Read(c.SpanID[:])
	}
	return c
}

// From returns the Parent in s if it is valid, else a new trace: a sender's valid traceparent is
// continued, anything else is replaced, never propagated.
func From(s string) Parent {
	if p, ok := Parse(s); ok {
		return p.Child()
	}
	return New()
}

type ctxKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Parent) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the Parent ctx carries (the zero Parent, not Valid, when none).
func FromContext(ctx context.Context) Parent {
	p, _ := ctx.Value(ctxKey{}).(Parent)
	return p
}

// Outgoing is the traceparent to send on from ctx: a child span of its trace, or "" when ctx
// carries none.
func Outgoing(ctx context.Context) string {
	if p := FromContext(ctx); p.Valid() {
		return p.Child().String()
	}
	return ""
}

// LogHandler wraps h so that every record logged with a context carrying a trace gets its
// trace_id attribute.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (l logHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := FromContext(ctx).TraceIDString(); id != "" {
		r.AddAttrs(slog.String("trace_id", id))
	}
	return l.Handler.Handle(ctx, r)
}

func (l logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{l.Handler.WithAttrs(as)}
}
func (l logHandler) WithGroup(name string) slog.Handler { return logHandler{l.Handler.WithGroup(name)} }
