package chaos

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/store"
)

// fakeLog is a workspace's log in shards, read as the store reads it: LogHead has an entry per
// shard, ListShard pages of at most limit events, more when a page is full (as DynamoDB's
// LastEvaluatedKey is).
type fakeLog struct{ shards [][]store.Event }

func (f *fakeLog) LogHead(context.Context, string) ([]int64, error) {
	head := make([]int64, len(f.shards))
	for sh, evs := range f.shards {
		for _, ev := range evs {
			head[sh] = max(head[sh], ev.Cursor)
		}
	}
	return head, nil
}

func (f *fakeLog) ListShard(_ context.Context, ws string, shard int, after int64, limit int) ([]store.Event, bool, error) {
	if ws != workspace {
		return nil, false, fmt.Errorf("workspace %q", ws)
	}
	var page []store.Event
	for _, ev := range f.shards[shard] {
		if ev.Cursor > after && len(page) < limit {
			page = append(page, ev)
		}
	}
	return page, len(page) == limit, nil
}

// events are events of shard sh at the cursors, ids "s<sh>c<cursor>", created now.
func events(sh int, cursors ...int64) []store.Event {
	var out []store.Event
	for _, c := range cursors {
		out = append(out, store.Event{ID: fmt.Sprintf("s%dc%d", sh, c), Cursor: c, Shard: sh, CreatedAt: time.Now()})
	}
	return out
}

// The checks read every shard of the log, each to its end (over more than one page), and each
// shard is dense, or has gaps, on its own; an event at two places is noted wherever they are.
func TestLogViewReadsEveryShardDenseOnItsOwn(t *testing.T) {
	long := make([]int64, 1500)
	for i := range long {
		long[i] = int64(i + 1)
	}
	dup := events(1, 2)[0]
	dup.ID = "s0c1" // shard 0's first event, again in shard 1
	f := &fakeLog{shards: [][]store.Event{
		events(0, 1, 2, 3),
		append(append(events(1, 1), dup), events(1, 4)...), // cursor 3 missing, not yet given up
		events(2, long...),
	}}
	l := newLogView(nil)
	if err := l.read(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if got := l.ends(); !slices.Equal(got, []int64{3, 4, 1500}) {
		t.Errorf("ends %v, want [3 4 1500]", got)
	}
	var dense []int64
	for _, sv := range l.shards {
		dense = append(dense, sv.dense)
	}
	if !slices.Equal(dense, []int64{3, 2, 1500}) {
		t.Errorf("dense prefixes %v, want [3 2 1500]", dense)
	}
	n, gaps, byShard, doubled := l.audit()
	if n != 1506 || gaps != 1 || !slices.Equal(byShard, []shardCount{{3, 0}, {3, 1}, {1500, 0}}) || len(doubled) != 1 {
		t.Errorf("audit: %d events %v, %d gaps, doubled %q; want 1506 [3/0 3/1 1500/0], 1 (shard 1's cursor 3), one", n, byShard, gaps, doubled)
	}

	// Owed: the events after each shard's start, every event of a shard not in start.
	owed := map[int][]int64{}
	l.owedEvents([]int64{2, 1}, func(sh int, c int64, _ store.Event) { owed[sh] = append(owed[sh], c) })
	if slices.Sort(owed[1]); len(owed[0]) != 1 || owed[0][0] != 3 || !slices.Equal(owed[1], []int64{2, 4}) || len(owed[2]) != 1500 {
		t.Errorf("owed %v (shard 2: %d)", map[int][]int64{0: owed[0], 1: owed[1]}, len(owed[2]))
	}

	// A view from the ends reads only what comes after them, and a shard that appears later
	// from its beginning.
	l = newLogView([]int64{3, 4})
	f.shards[0] = append(f.shards[0], events(0, 4)...)
	f.shards = append(f.shards, events(3, 1, 2))
	if err := l.read(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if n, gaps, _, _ := l.audit(); n != 1+1500+2 || gaps != 3 {
		t.Errorf("view from the ends: %d events, %d gaps; want shard 0's cursor 4, shard 2 and the new shard 3 whole (gaps: shard 0's cursors 1-3)", n, gaps)
	}
}
