package fields

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// Scan names the field of the first string that breaks the byte rule.
func TestScan(t *testing.T) {
	for _, c := range []struct {
		body       string
		surrogates bool
		want       string // "" for no problem; else Problem.Error()
	}{
		{`{"text":"hi","data":{"k":[1,"x"]}}`, true, ""},
		{`{"text":"\uffff \u0001 \ufffe ` + "\uffff" + `"}`, true, ""},
		{`{"text":"pair \ud83d\ude00 ok"}`, true, ""},
		{`{"text":"\ud800"}`, true, `text holds an unpaired UTF-16 surrogate escape (\ud800-\udfff)`},
		{`{"text":"\ud800"}`, false, ""},
		{`{"text":"\udc00x"}`, true, `text holds an unpaired UTF-16 surrogate escape (\ud800-\udfff)`},
		{`{"text":"\ud800\u0041"}`, true, `text holds an unpaired UTF-16 surrogate escape (\ud800-\udfff)`},
		{`{"text":"\ud800\ud800\udc00"}`, true, `text holds an unpaired UTF-16 surrogate escape (\ud800-\udfff)`},
		{`{"a":1,"data":{"note":"bad ` + "\xff" + `"}}`, false, "data.note is not valid UTF-8"},
		{`{"a":1,"data":{"list":["ok","x` + "\xc3" + `"]}}`, true, "data.list[1] is not valid UTF-8"},
		{`{"message":{"chat":{"id":1},"text":"\udfff"}}`, true, `message.text holds an unpaired UTF-16 surrogate escape (\ud800-\udfff)`},
		{`{"k` + "\xff" + `":1}`, true, "body is not valid UTF-8"},
		{`["` + "\xed\xa0\x80" + `"]`, true, "body[0] is not valid UTF-8"},
		{`"\ud800"`, true, `body holds an unpaired UTF-16 surrogate escape (\ud800-\udfff)`},
		{`{"esc":"\\ud800 is text"}`, true, ""},
	} {
		p := Scan([]byte(c.body), c.surrogates)
		got := ""
		if p != nil {
			got = p.Error()
		}
		if got != c.want {
			t.Errorf("Scan(%q, %v) = %q, want %q", c.body, c.surrogates, got, c.want)
		}
	}
}

// FuzzScan: on any input Scan never panics; on valid JSON it finds a problem exactly when the
// text is invalid UTF-8 or, decoded by encoding/json, differs from a faithful decode (an
// unpaired surrogate became U+FFFD).
func FuzzScan(f *testing.F) {
	for _, s := range []string{`{"text":"hi"}`, `{"text":"\ud800"}`, `{"a":["\ud83d\ude00",{"b":"\udc00"}]}`, "{\"t\":\"\xff\"}", `[]`, `"x"`, `{"a":"\\"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := Scan(b, true)
		if !json.Valid(b) {
			return
		}
		if !utf8.Valid(b) {
			if p == nil || p.Surrogate {
				t.Fatalf("invalid UTF-8 %q not reported: %v", b, p)
			}
			return
		}
		if r := Scan(b, false); r != nil {
			t.Fatalf("valid UTF-8 %q reported without surrogates: %v", b, r)
		}
		// Without a problem, every string decodes without U+FFFD that the text did not hold.
		if p == nil {
			var v any
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			if dec.Decode(&v) != nil {
				return
			}
			enc, _ := json.Marshal(v)
			if n, m := strings.Count(string(enc), "\ufffd"), strings.Count(string(b), "\ufffd")+strings.Count(strings.ToLower(string(b)), `\ufffd`); n > m {
				t.Fatalf("%q decodes with a replacement character but was not reported", b)
			}
		}
	})
}
