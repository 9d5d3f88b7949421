// Package fields holds the rules every door, the adapter and the widget apply to the strings a
// sender sends, so one input is taken or refused the same way on every route.
package fields

import (
	"unicode"
	"unicode/utf8"
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
