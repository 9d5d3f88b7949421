package e2e_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hookgate/hookgate/shared/store"
)

// streamPos reads an event stream id as the API documents it, independently of the server's
// code: the decimal cursor of a one-shard log, or "v1." and one decimal cursor per shard, in shard
// order. It is the last cursor read in each shard.
func streamPos(id string) ([]int64, error) {
	parts := []string{id}
	if rest, ok := strings.CutPrefix(id, "v1."); ok {
		parts = strings.Split(rest, ".")
	}
	if len(parts) > store.MaxShards {
		return nil, fmt.Errorf("id %q names %d shards", id, len(parts))
	}
	pos := make([]int64, len(parts))
	for i, p := range parts {
		c, err := strconv.ParseInt(p, 10, 64)
		if err != nil || c < 0 || strconv.FormatInt(c, 10) != p {
			return nil, fmt.Errorf("id %q: entry %q is not a cursor", id, p)
		}
		pos[i] = c
	}
	return pos, nil
}

// v1 spells a position as a v1 token, whatever its length.
func v1(pos ...int64) string {
	s := "v1"
	for _, c := range pos {
		s += "." + strconv.FormatInt(c, 10)
	}
	return s
}

// padded is pos with n entries at least (the shards it does not name are at 0).
func padded(pos []int64, n int) []int64 {
	if len(pos) >= n {
		return slices.Clone(pos)
	}
	return append(slices.Clone(pos), make([]int64, n-len(pos))...)
}

// step is the event between positions prev and next: the one shard whose cursor moved, by exactly
// one (each shard's events come consecutively, none lost, none repeated).
func step(prev, next []int64) (shard int, cursor int64, err error) {
	n := max(len(prev), len(next))
	p, q := padded(prev, n), padded(next, n)
	shard = -1
	for s := range n {
		switch {
		case q[s] == p[s]:
		case q[s] == p[s]+1 && shard < 0:
			shard = s
		default:
			return 0, 0, fmt.Errorf("position %v follows %v: not one shard's next cursor", next, prev)
		}
	}
	if shard < 0 {
		return 0, 0, fmt.Errorf("position %v repeats %v", next, prev)
	}
	return shard, q[shard], nil
}

// total is how many events a position has passed (each shard's cursors are dense).
func total(pos []int64) int64 {
	var n int64
	for _, c := range pos {
		n += c
	}
	return n
}
