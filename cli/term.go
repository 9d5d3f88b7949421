package cli

import (
	"fmt"
	"io"
	"unicode"
	"unicode/utf8"
)

// printable writes to a terminal what the command line prints, with every control character
// but newline and tab shown escaped (\x1b, \u009b): events, API errors and receivers' answers hold
// text that senders, agents and receivers chose, and a terminal obeys the escapes in it (clear
// the screen, rewrite a line, set the title). Bidi overrides are escaped too. Valid JSON output
// holds no raw control character, so --json is unchanged.
type printable struct{ w io.Writer }

func (p printable) Write(b []byte) (int, error) {
	clean := true
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if unsafeRune(r, size) {
			clean = false
			break
		}
		i += size
	}
	if clean {
		return p.w.Write(b)
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case !unsafeRune(r, size):
			out = append(out, b[i:i+size]...)
		case r < 0x80:
			out = fmt.Appendf(out, `\x%02x`, r)
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += size
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// unsafeRune reports a rune a terminal may act on rather than show (an invalid byte is written as is).
func unsafeRune(r rune, size int) bool {
	if r == utf8.RuneError && size == 1 {
		return false
	}
	return r != '\n' && r != '\t' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r))
}
