package eventstream

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/shared/apierr"
)

func TestParseCursor(t *testing.T) {
	good := map[string]int64{"0": 0, "1": 1, "42": 42, "9223372036854775807": 1<<63 - 1}
	for s, want := range good {
		if got, err := ParseCursor(s); err != nil || got != want {
			t.Errorf("ParseCursor(%q) = %d, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "-1", "+1", " 1", "1 ", "01", "1.5", "1e3", "abc", "9223372036854775808", "12345678901234567890", "0x10", "１"} {
		if _, err := ParseCursor(s); apierr.CodeOf(err) != apierr.Invalid {
			t.Errorf("ParseCursor(%q): %v, want Invalid", s, err)
		}
	}
}

func TestToken(t *testing.T) {
	cases := []struct {
		pos  []int64
		want string
	}{
		{[]int64{0}, "0"},
		{[]int64{42}, "42"},
		{[]int64{42, 7, 0, 19}, "v1.42.7.0.19"},
		{[]int64{0, 0}, "v1.0.0"},
		{[]int64{1<<63 - 1, 1}, "v1.9223372036854775807.1"},
	}
	for _, c := range cases {
		if got := Token(c.pos); got != c.want {
			t.Errorf("Token(%v) = %q, want %q", c.pos, got, c.want)
		}
		if got, err := ParseToken(c.want); err != nil || !slices.Equal(got, c.pos) {
			t.Errorf("ParseToken(%q) = %v, %v", c.want, got, err)
		}
	}
}

func TestParseToken(t *testing.T) {
	sixteen := "v1" + strings.Repeat(".9223372036854775807", 16)
	good := map[string][]int64{
		"0":              {0},
		"17":             {17},
		"v1.5":           {5},
		"v1.0":           {0},
		"v1.42.7.0.19":   {42, 7, 0, 19},
		"v1.0.0.0.0.0.1": {0, 0, 0, 0, 0, 1},
		sixteen:          slices.Repeat([]int64{1<<63 - 1}, 16),
	}
	for s, want := range good {
		if got, err := ParseToken(s); err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseToken(%q) = %v, %v", s, got, err)
		}
	}
	bad := []string{
		"", "v1.", "v1", "v1..", "v1..1", "v1.1.", "v1.1..2", ".1", "1.2", "v2.1", "V1.1", "v0.1", "v1-1", "vv1.1",
		"v1.-1", "v1.+1", "v1.01", "v1.1.00", "v1.1e3", "v1.0x1", "v1.１", "v1. 1", "v1.1 ", " v1.1", "v1.1 .2", "v1.1\t.2", "v1.1\n",
		"v1.9223372036854775808", "v1.1.99999999999999999999", "v1." + strings.Repeat("9", 1000), strings.Repeat("9", 1000),
		sixteen + ".0", "v1" + strings.Repeat(".0", 17), "v1" + strings.Repeat(".1", 100000), "v1.1;2", "v1.1,2", "now.1", "-3",
	}
	for _, s := range bad {
		if got, err := ParseToken(s); apierr.CodeOf(err) != apierr.Invalid || got != nil {
			t.Errorf("ParseToken(%.40q) = %v, %v: want Invalid", s, got, err)
		}
	}
}

func TestStartOf(t *testing.T) {
	cases := []struct {
		lastID, since string
		want          Start
		bad           bool
	}{
		{"", "", Start{}, false},
		{"", "now", Start{Now: true}, false},
		{"", " now ", Start{Now: true}, false},
		{"", "17", Start{Pos: []int64{17}}, false},
		{"", " v1.3.4 ", Start{Pos: []int64{3, 4}}, false},
		{"20", "17", Start{Pos: []int64{20}}, false}, // a reconnect's Last-Event-ID wins over the first URL
		{"20", "now", Start{Pos: []int64{20}}, false},
		{"v1.2.0.5", "now", Start{Pos: []int64{2, 0, 5}}, false},
		{"x", "17", Start{}, true},
		{"", "yesterday", Start{}, true},
		{"v1.", "", Start{}, true},
		{"", "v2.1", Start{}, true},
	}
	for _, c := range cases {
		got, err := StartOf(c.lastID, c.since)
		if (err != nil) != c.bad || (!c.bad && (got.Now != c.want.Now || !slices.Equal(got.Pos, c.want.Pos))) {
			t.Errorf("StartOf(%q, %q) = %+v, %v", c.lastID, c.since, got, err)
		}
	}
}

func TestResolve(t *testing.T) {
	cases := []struct {
		start Start
		head  []int64
		want  []int64 // nil: Invalid
		msg   string
	}{
		{Start{Now: true}, []int64{30}, []int64{30}, ""},
		{Start{Pos: []int64{30}}, []int64{30}, []int64{30}, ""},
		{Start{}, []int64{30}, []int64{0}, ""},
		{Start{Pos: []int64{31}}, []int64{30}, nil, "unknown cursor 31: the log ends at 30"},
		{Start{Pos: []int64{3, 0}}, []int64{30}, []int64{3}, ""}, // an entry at the mark may be 0
		{Start{Pos: []int64{3, 1}}, []int64{30}, nil, "unknown cursor v1.3.1: the log has no shard 1"},
		{Start{Now: true}, []int64{5, 3, 0, 7}, []int64{5, 3, 0, 7}, ""},
		{Start{}, []int64{5, 3, 0, 7}, []int64{0, 0, 0, 0}, ""},
		{Start{Pos: []int64{4}}, []int64{5, 3, 0, 7}, []int64{4, 0, 0, 0}, ""}, // a decimal id of before the mark rose
		{Start{Pos: []int64{5, 3}}, []int64{5, 3, 0, 7}, []int64{5, 3, 0, 0}, ""},
		{Start{Pos: []int64{5, 3, 0, 7, 0, 0}}, []int64{5, 3, 0, 7}, []int64{5, 3, 0, 7}, ""},
		{Start{Pos: []int64{5, 3, 0, 7, 1}}, []int64{5, 3, 0, 7}, nil, "no shard 4"},
		{Start{Pos: []int64{6}}, []int64{5, 3, 0, 7}, nil, "unknown cursor 6: shard 0 ends at 5"},
		{Start{Pos: []int64{0, 0, 1}}, []int64{5, 3, 0, 7}, nil, "shard 2 ends at 0"},
		{Start{Pos: []int64{0, 0, 0, 1<<63 - 1}}, []int64{5, 3, 0, 7}, nil, "shard 3 ends at 7"},
	}
	for _, c := range cases {
		got, err := c.start.Resolve(c.head)
		if c.want == nil {
			if apierr.CodeOf(err) != apierr.Invalid || !strings.Contains(apierr.MessageOf(err), c.msg) || !strings.Contains(apierr.MessageOf(err), "unknown cursor") {
				t.Errorf("%+v against %v: %v, want Invalid %q", c.start, c.head, err, c.msg)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%+v against %v = %v, %v; want %v", c.start, c.head, got, err, c.want)
		}
	}
	head := []int64{5, 3}
	if got, _ := (Start{Now: true}).Resolve(head); &got[0] == &head[0] {
		t.Error("now resolves to the head itself, which the window then moves")
	}
}

// sincePattern is openapi.yaml's pattern for since= (and Last-Event-ID).
var sincePattern = regexp.MustCompile(`^\s*(0|[1-9][0-9]{0,18}|v1(\.(0|[1-9][0-9]{0,18})){1,16}|now)?\s*$`)

// ParseToken takes what the documented pattern allows (bar cursors past int64), and nothing else;
// a token it takes formats back to one that parses to the same position.
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{"0", "17", "v1.5", "v1.42.7.0.19", "v1.", "v2.1", "v1.01", "9223372036854775808", "v1" + strings.Repeat(".1", 17)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pos, err := ParseToken(s)
		if err != nil {
			if apierr.CodeOf(err) != apierr.Invalid {
				t.Fatalf("ParseToken(%q): %v", s, err)
			}
			if sincePattern.MatchString(s) && s != "" && s == strings.TrimSpace(s) && s != "now" && !overflows(s) {
				t.Fatalf("ParseToken(%q) refuses what the pattern allows: %v", s, err)
			}
			return
		}
		if !sincePattern.MatchString(s) || len(pos) == 0 || len(pos) > 16 {
			t.Fatalf("ParseToken(%q) = %v: the pattern refuses it", s, pos)
		}
		again, err := ParseToken(Token(pos))
		if err != nil || !slices.Equal(again, pos) {
			t.Fatalf("%q → %v → %q → %v, %v", s, pos, Token(pos), again, err)
		}
	})
}

// overflows says a token has a 19-digit entry past int64 (the pattern counts digits only).
func overflows(s string) bool {
	for _, p := range strings.Split(strings.TrimPrefix(s, "v1."), ".") {
		if len(p) == 19 && p > "9223372036854775807" {
			return true
		}
	}
	return false
}
