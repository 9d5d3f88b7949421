// Package fields holds the rules every door, the adapter and the widget apply to the strings a
// sender sends, so one input is taken or refused the same way on every route.
//
// The byte rule: a body must be valid UTF-8, and a string the gateway decodes must not hold an
// unpaired UTF-16 surrogate escape (\ud800–\udfff), which no Go string can keep; either is a 400
// naming the field (CheckJSON). Every other character, SQS-forbidden ones included (U+FFFE,
// U+FFFF, C0 controls sent as JSON escapes), is taken and kept as sent: shared/queue escapes what
// SQS refuses in the message body.
package fields

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hookgate/hookgate/shared/apierr"
)

// Printable reports whether s is valid UTF-8 with only printable characters (no controls).
func Printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}

// Problem names a string of a JSON text that cannot be kept as sent.
type Problem struct {
	Field     string // the field's path: text, data.note, message.text, items[2]; body at the top
	Surrogate bool   // an unpaired surrogate escape; else invalid UTF-8
}

func (p *Problem) Error() string {
	if p.Surrogate {
		return p.Field + " holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff)"
	}
	return p.Field + " is not valid UTF-8"
}

// Refusal is the 400 a sender gets for p, naming the field.
func (p *Problem) Refusal() error { return apierr.New(apierr.Invalid, "%s", p.Error()) }

// CheckJSON applies the byte rule to a JSON body the gateway decodes: invalid UTF-8 anywhere or
// an unpaired surrogate escape in any string is a 400 naming the first such field.
func CheckJSON(body []byte) error {
	if p := Scan(body, true); p != nil {
		return p.Refusal()
	}
	return nil
}

// CheckRaw applies the byte rule to a JSON body that is kept byte for byte rather than decoded
// (a SaaS webhook's payload): only invalid UTF-8 is refused; a surrogate escape is plain ASCII
// there and is stored as sent.
func CheckRaw(body []byte) error {
	if p := Scan(body, false); p != nil {
		return p.Refusal()
	}
	return nil
}

// maxPath bounds the field path a Problem reports.
const maxPath = 120

// Scan returns the first string of the JSON text b that is not valid UTF-8 or, when surrogates
// is set, holds an unpaired surrogate escape; nil when there is none. b should be valid JSON
// (the callers decoded it first); anything else is scanned as far as it goes, and invalid UTF-8
// outside a string is reported as body.
func Scan(b []byte, surrogates bool) *Problem {
	type frame struct {
		object  bool
		wantKey bool
		key     string
		index   int
	}
	var stack []frame
	path := func() string {
		var sb strings.Builder
		for _, f := range stack {
			if f.object && f.wantKey {
				break // a key of this object is being read: the path stops at the object
			}
			if f.object {
				if sb.Len() > 0 {
					sb.WriteByte('.')
				}
				sb.WriteString(f.key)
			} else {
				sb.WriteString("[" + strconv.Itoa(f.index) + "]")
			}
		}
		s := sb.String()
		if s == "" || s[0] == '[' {
			s = "body" + s
		}
		if len(s) > maxPath {
			s = strings.ToValidUTF8(s[:maxPath], "") + "…"
		}
		return s
	}
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '{':
			stack = append(stack, frame{object: true, wantKey: true})
		case '[':
			stack = append(stack, frame{})
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case ',':
			if n := len(stack); n > 0 {
				if stack[n-1].object {
					stack[n-1].wantKey = true
				} else {
					stack[n-1].index++
				}
			}
		case ':':
			if n := len(stack); n > 0 {
				stack[n-1].wantKey = false
			}
		case '"':
			end, bad, lone := scanString(b, i+1)
			isKey := len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].wantKey
			if bad || (surrogates && lone) {
				return &Problem{Field: path(), Surrogate: !bad}
			}
			if isKey {
				var k string
				if json.Unmarshal(b[i:end], &k) != nil {
					k = "?"
				}
				stack[len(stack)-1].key = k
			}
			i = end - 1
		default:
			if c >= utf8.RuneSelf {
				r, n := utf8.DecodeRune(b[i:])
				if r == utf8.RuneError && n <= 1 {
					return &Problem{Field: "body"}
				}
				i += n - 1
			}
		}
	}
	return nil
}

// scanString reads the JSON string whose content starts at b[start] and returns the index just
// past its closing quote (len(b) if it has none), whether its raw bytes are invalid UTF-8, and
// whether it holds an unpaired surrogate escape.
func scanString(b []byte, start int) (end int, badUTF8, lone bool) {
	pendingHigh := false // the previous escape was a high surrogate waiting for its low half
	i := start
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			if pendingHigh {
				lone = true
			}
			return i + 1, badUTF8, lone
		case c == '\\' && i+1 < len(b):
			if b[i+1] == 'u' && i+6 <= len(b) {
				v, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
				if err == nil {
					r := rune(v)
					switch {
					case r >= 0xD800 && r < 0xDC00:
						if pendingHigh {
							lone = true
						}
						pendingHigh = true
					case r >= 0xDC00 && r < 0xE000:
						if !pendingHigh {
							lone = true
						}
						pendingHigh = false
					default:
						if pendingHigh {
							lone = true
						}
						pendingHigh = false
					}
				}
				i += 6
				continue
			}
			if pendingHigh {
				lone = true
			}
			pendingHigh = false
			i += 2
		case c < utf8.RuneSelf:
			if pendingHigh {
				lone = true
			}
			pendingHigh = false
			i++
		default:
			if pendingHigh {
				lone = true
			}
			pendingHigh = false
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				badUTF8 = true
			}
			i += n
		}
	}
	return len(b), badUTF8, lone || pendingHigh
}
