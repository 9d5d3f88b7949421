package worker

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// Attacks on the worker's appends to a log of several shards.

// threadIn4 returns a thread id that four shards deal to shard.
func threadIn4(t *testing.T, prefix string, shard int) string {
	t.Helper()
	for i := range 1000 {
		if id := fmt.Sprintf("%s%d", prefix, i); store.HashShard(id, 4) == shard {
			return id
		}
	}
	t.Fatalf("no thread id for shard %d", shard)
	return ""
}

// A widget thread's reader follows the thread's index (after the last cursor it read) and resumes
// against its thread's shard (ThreadHead). A repost under the same idempotency key naming another
// widget thread (the same message and run ids, another external id) must leave the other thread's
// index within that thread's shard: a copy of the first post's events at cursors of the first
// thread's shard makes the second thread's reader pass its own later events, and its
// Last-Event-ID be refused as past the end.
func TestAttackRepostOnAnotherWidgetThreadWithFourShards(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, echoing)
	r.st.WithShards(4) // the handler's store
	ctx := context.Background()
	a, b := threadIn4(t, "thr_a", 1), threadIn4(t, "thr_b", 2)
	web := func(thread, run string) queue.Inbound {
		m := message(thread, run, "hello "+run)
		m.Channel = "web"
		return m
	}
	for i := range 3 { // thread a's shard runs ahead of b's
		r.handleAll(t, record(fmt.Sprintf("a%d", i), web(a, fmt.Sprintf("ka%d", i))))
	}
	r.handleAll(t, record("k1", web(a, "k1")))
	r.handleAll(t, record("b0", web(b, "kb0")))
	// b's widget reads what b has so far.
	var seen []string
	var after int64
	read := func() {
		for {
			evs, err := r.st.ListThreadEvents(ctx, "ws", b, after, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) == 0 {
				return
			}
			for _, e := range evs {
				seen, after = append(seen, e.ID), e.Cursor
			}
		}
	}
	read()
	r.handleAll(t, record("k1-again", web(b, "k1"))) // the repost, on thread b
	read()
	before, err := r.st.ListThreadEvents(ctx, "ws", b, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	r.handleAll(t, record("b1", web(b, "kb1")))
	read()
	head, err := r.st.ThreadHead(ctx, "ws", b)
	if err != nil {
		t.Fatal(err)
	}
	if after > head {
		t.Errorf("b's reader holds cursor %d, past its thread's head %d: its reconnect is refused", after, head)
	}
	idx, err := r.st.ListThreadEvents(ctx, "ws", b, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	// b's next message's events (those its index gained with it) reach b's reader.
	for _, e := range idx {
		if !slices.ContainsFunc(before, func(o store.Event) bool { return o.ID == e.ID }) && !slices.Contains(seen, e.ID) {
			t.Errorf("b's reader never saw %s %s (cursor %d): it read up to cursor %d", e.Type, e.ID, e.Cursor, after)
		}
	}
	// Every event b's index holds is in b's shard at that cursor.
	evs, _, err := r.st.ListShard(ctx, "ws", 2, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	inShard := map[int64]string{}
	for _, e := range evs {
		inShard[e.Cursor] = e.ID
	}
	for _, e := range idx {
		if inShard[e.Cursor] != e.ID {
			t.Errorf("b's index holds %s at cursor %d; b's shard holds %q there", e.ID, e.Cursor, inShard[e.Cursor])
		}
	}
}
