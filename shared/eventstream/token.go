package eventstream

import (
	"strconv"
	"strings"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/store"
)

// A reader's position names the last cursor it read in every shard of the log (store's shards).
// The stream's id for it, the token, is opaque to clients:
//
//	one shard (the mark is 1):  the cursor in decimal, "42" (what the id was before shards)
//	M > 1 shards:               "v1." and the M cursors joined by ".", in shard order: "v1.42.7.0.19"
//
// A decimal id read against M > 1 shards is [c, 0, …, 0]: a client holds one only if its last
// window was served while the log had one shard, so it has seen nothing of the others yet.

// tokenPrefix starts a token of more than one shard.
const tokenPrefix = "v1."

// maxTokenLen bounds what ParseToken looks at: MaxShards cursors of at most 19 digits, their dots.
const maxTokenLen = len(tokenPrefix) + store.MaxShards*(maxCursorDigits+1)

// Token is the stream's id for a position: the decimal cursor of a one-shard log, else v1.
func Token(pos []int64) string {
	if len(pos) == 1 {
		return strconv.FormatInt(pos[0], 10)
	}
	b := make([]byte, 0, len(tokenPrefix)+len(pos)*8)
	b = append(b, tokenPrefix...)
	for i, c := range pos {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendInt(b, c, 10)
	}
	return string(b)
}

// ParseToken reads an id as the stream sends it: a decimal cursor (one entry) or a v1 token (1 to
// MaxShards entries, each a cursor by ParseCursor's rules). Anything else is Invalid.
func ParseToken(s string) ([]int64, error) {
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		c, err := ParseCursor(s)
		if err != nil {
			return nil, err
		}
		return []int64{c}, nil
	}
	if len(s) > maxTokenLen || strings.Count(rest, ".") >= store.MaxShards {
		return nil, malformed()
	}
	parts := strings.Split(rest, ".")
	pos := make([]int64, len(parts))
	for i, p := range parts {
		c, err := ParseCursor(p)
		if err != nil {
			return nil, err
		}
		pos[i] = c
	}
	return pos, nil
}

func malformed() error {
	return apierr.New(apierr.Invalid, "malformed cursor: want an id the stream sent (or \"now\")")
}

// maxCursorDigits is the longest cursor: 19 digits hold every int64.
const maxCursorDigits = 19

// ParseCursor reads one cursor: a decimal number, 0 for before the first event. Anything else
// (signs, spaces, leading zeros, more than 19 digits) is Invalid.
func ParseCursor(s string) (int64, error) {
	if s == "" || len(s) > maxCursorDigits || (len(s) > 1 && s[0] == '0') {
		return 0, malformed()
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, malformed()
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, malformed()
	}
	return n, nil
}

// Start is where a reader asks to start.
type Start struct {
	Pos []int64 // a token's cursors (nil: the beginning)
	Now bool    // start after the log's current end
}

// StartOf reads the reader's cursor: the Last-Event-ID header (a reconnecting EventSource sends it,
// and it wins over the URL, which still holds the first connection's since=), else since=: a
// token, or "now"; neither means the beginning.
func StartOf(lastEventID, since string) (Start, error) {
	v := strings.TrimSpace(lastEventID)
	if v == "" {
		v = strings.TrimSpace(since)
	}
	switch v {
	case "":
		return Start{}, nil
	case "now":
		return Start{Now: true}, nil
	}
	pos, err := ParseToken(v)
	if err != nil {
		return Start{}, err
	}
	return Start{Pos: pos}, nil
}

// Resolve turns a Start into a position against the log's head (store's LogHead: the last cursor
// of each shard): "now" is the head; a shorter token is padded with 0; an entry for a shard the
// log does not have must be 0, and one past its shard's end (a cursor of another log, or made up)
// is Invalid.
func (s Start) Resolve(head []int64) ([]int64, error) {
	pos := make([]int64, len(head))
	if s.Now {
		copy(pos, head)
		return pos, nil
	}
	for i, c := range s.Pos {
		switch {
		case i >= len(head) && c != 0:
			return nil, apierr.New(apierr.Invalid, "unknown cursor %s: the log has no shard %d", Token(s.Pos), i)
		case i >= len(head):
		case c > head[i] && len(head) == 1:
			return nil, apierr.New(apierr.Invalid, "unknown cursor %d: the log ends at %d", c, head[i])
		case c > head[i]:
			return nil, apierr.New(apierr.Invalid, "unknown cursor %s: shard %d ends at %d", Token(s.Pos), i, head[i])
		default:
			pos[i] = c
		}
	}
	return pos, nil
}
