package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
)

// Review tests of the log's shards (branch sh-review): each names the finding it proves.

// The slot path (an adapter's run, one transaction) on a thread that records another shard than the
// one this process guesses: the transaction's refusal of the thread's update is a shard mismatch, so
// the run is created on the retry, never refused as "thread not found" (design §3: "reads the
// mismatch from CancellationReasons[2].Item"). Both ways: an old thread (shard 0) under 4 shards,
// and a thread of shard 3 under one shard.
func TestSlotRunOnAThreadOfAnotherShard(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	cases := []struct {
		name             string
		create, slotWith int
		want             int64
	}{
		{"old thread, 4 shards", 1, 4, 0},
		{"shard-3 thread, 1 shard", 4, 1, 3},
	}
	for i, c := range cases {
		thread := threadIn(t, "slot"+c.name[:3], 3, 4)
		if _, _, err := New(db, table, time.Now).WithShards(c.create).CreateRunWith(ctx, newRun("ws", thread, "run_a"+c.name[:3], time.Now())); err != nil {
			t.Fatal(err)
		}
		nr := newRun("ws", thread, "run_b"+c.name[:3], time.Now())
		nr.Slot = &Slot{Pool: "pool_review", Index: i, Lease: time.Minute}
		if _, created, err := New(db, table, time.Now).WithShards(c.slotWith).CreateRunWith(ctx, nr); err != nil || !created {
			t.Fatalf("%s: a slot run on the thread: created %v, %v; want created", c.name, created, err)
		}
		if got := getMeta(t, New(db, table, time.Now), "ws", thread)["log_shard#"]; got != c.want {
			t.Fatalf("%s: META log_shard = %v; want %d", c.name, got, c.want)
		}
	}
}

// EventsBetween (the FanoutDLQ replay's rebuild) returned a one-shard log in cursor order before
// shards; it now sorts every event by created_at, so two events of one thread whose created_at runs
// against their cursors (two appenders on hosts whose clocks differ by a second: the worker's reply,
// then the adapter's approval record) come back reversed, and the replay's FIFO deliveries of the
// thread with them. Each shard's events should stay in cursor order (merge the shards' heads, as
// eventstream.Serve does).
func TestEventsBetweenKeepsEachShardInCursorOrder(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ahead := New(db, table, func() time.Time { return t0.Add(2 * time.Second) })
	behind := New(db, table, func() time.Time { return t0.Add(time.Second) })
	if _, _, err := ahead.CreateRunWith(ctx, newRun("ws", "thr_skew", "run_skew", t0)); err != nil {
		t.Fatal(err)
	}
	first, err := ahead.AppendEvent(ctx, threadEvent("ws", "thr_skew", "evt_sent"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := behind.AppendEvent(ctx, Event{ID: "evt_approved", Type: "run.approved", WorkspaceID: "ws", Data: []byte(`{"thread_id":"thr_skew"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if first.Shard != second.Shard || first.Cursor >= second.Cursor {
		t.Fatalf("appended at %d/%d then %d/%d; want one shard, in that order", first.Shard, first.Cursor, second.Shard, second.Cursor)
	}
	evs, _, err := ahead.EventsBetween(ctx, "ws", t0, t0.Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	if len(ids) != 2 || ids[0] != "evt_sent" || ids[1] != "evt_approved" {
		t.Fatalf("EventsBetween = %v; want [evt_sent evt_approved], the shard's cursor order (the thread's order)", ids)
	}
}

// learnsMeanwhile is a DB under which, while a thread update of the store is refused, another
// request of the same process learns the thread's shard (it reads the thread's META, or its own
// update was refused first): the cache is filled between the refused update and shardMismatch.
type learnsMeanwhile struct {
	DB
	st *Store
}

func (d *learnsMeanwhile) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	out, err := d.DB.UpdateItem(ctx, in, opts...)
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) && str(in.Key, "sk") == "META" && len(cf.Item) > 0 {
		d.st.logs.threads.put(str(cf.Item, "workspace_id"), str(cf.Item, "thread_id"), int(num(cf.Item, "log_shard")))
	}
	return out, err
}

// shardMismatch compares the recorded shard with threadGuess, read again from the cache, instead
// of with the shard the refused update asked for (shardOf(update)). When another goroutine of the
// process learned the thread's shard in between, the two agree and a thread that exists on the same
// channel is refused as "thread not found".
func TestShardMismatchComparesWithTheRefusedGuess(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	ctx := context.Background()
	thread := threadIn(t, "learn", 3, 4)
	if _, _, err := New(db, table, time.Now).CreateRunWith(ctx, newRun("ws", thread, "run_old", time.Now())); err != nil {
		t.Fatal(err)
	}
	wrap := &learnsMeanwhile{DB: db}
	st := New(wrap, table, time.Now).WithShards(4)
	wrap.st = st
	if _, created, err := st.CreateRunWith(ctx, newRun("ws", thread, "run_new", time.Now())); err != nil || !created {
		t.Fatalf("a run on a thread of shard 0, its shard learned meanwhile: created %v, %v; want created", created, err)
	}
}
