package telegram

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Split cuts text into parts of at most limit UTF-16 code units each, in order, on rune
// boundaries. It cuts at the last line break that keeps a part at least half full, else at such a
// space, else at any earlier line break or space, else between runes; the break it cuts at is
// dropped, as are line breaks starting the next part and parts that are only white space (which
// Telegram refuses), so nothing but white space is lost. A limit below 2 is taken as 2 (a rune can take two units).
func Split(text string, limit int) []string {
	limit = max(limit, 2)
	var parts []string
	for text != "" {
		end, fits := prefix(text, limit)
		cut, next := end, end
		if !fits {
			cut, next = breakAt(text[:end], limit)
		}
		if p := text[:cut]; strings.TrimSpace(p) != "" {
			parts = append(parts, p)
		}
		text = text[next:]
		if !fits {
			text = strings.TrimLeft(text, "\r\n") // a part does not start with a blank line
		}
	}
	return parts
}

// prefix returns the length in bytes of the longest prefix of s within limit units, and whether
// that is all of s.
func prefix(s string, limit int) (int, bool) {
	units := 0
	for i, r := range s {
		n := utf16.RuneLen(r)
		if n < 0 {
			n = 1 // invalid UTF-8 is sent as U+FFFD
		}
		if units+n > limit {
			return i, false
		}
		units += n
	}
	return len(s), true
}

// breakAt chooses where to cut window, the longest prefix that fits: the part ends at cut and the
// rest starts at next (past the dropped break).
func breakAt(window string, limit int) (cut, next int) {
	half := func(i int) bool { return units(window[:i]) >= limit/2 }
	nl, sp := strings.LastIndexByte(window, '\n'), strings.LastIndexByte(window, ' ')
	switch {
	case nl > 0 && half(nl):
		return nl, nl + 1
	case sp > 0 && half(sp):
		return sp, sp + 1
	case nl > 0:
		return nl, nl + 1
	case sp > 0:
		return sp, sp + 1
	}
	return len(window), len(window)
}

func units(s string) int {
	n := 0
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		if k := utf16.RuneLen(r); k > 0 {
			n += k
		} else {
			n++
		}
		s = s[size:]
	}
	return n
}
