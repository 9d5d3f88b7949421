package store

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/hookgate/hookgate/shared/apierr"
)

func newRun(ws, thread, run string, at time.Time) NewRun {
	return NewRun{
		Thread:  Thread{ID: thread, WorkspaceID: ws, Channel: "webhook.a", ExternalID: thread},
		Message: Message{ID: "msg_" + run, Direction: "in", Source: "adapter", Text: "hi " + run, CreatedAt: at},
		Run:     Run{ID: run, Adapter: "a", User: "alice", ReplyURL: "https://example.com/cb"},
	}
}

func TestCreateRunWithFollowUpNeedsTheThread(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	nr := newRun("ws", "thr_1", "run_1", time.Now())
	nr.FollowUp = true
	if _, _, err := st.CreateRunWith(ctx, nr); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("follow-up on a missing thread: %v, want NotFound", err)
	}
	if _, err := st.GetRun(ctx, "ws", "run_1"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("the refused follow-up stored its run: %v", err)
	}
	nr.FollowUp = false
	r, created, err := st.CreateRunWith(ctx, nr)
	if err != nil || !created || r.Adapter != "a" || r.User != "alice" || r.ReplyURL != "https://example.com/cb" || r.Status != RunQueued {
		t.Fatalf("new thread: %+v %v %v", r, created, err)
	}
	// A follow-up on the thread works; one claiming another channel does not.
	f := newRun("ws", "thr_1", "run_2", time.Now())
	f.FollowUp = true
	if _, created, err := st.CreateRunWith(ctx, f); err != nil || !created {
		t.Fatalf("follow-up: %v %v", created, err)
	}
	other := newRun("ws", "thr_1", "run_3", time.Now())
	other.FollowUp, other.Thread.Channel = true, "webhook.b"
	if _, _, err := st.CreateRunWith(ctx, other); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("follow-up from another adapter's channel: %v, want NotFound", err)
	}
	msgs, err := st.ListMessages(ctx, "ws", "thr_1", 10)
	if err != nil || len(msgs) != 2 || msgs[0].ID != "msg_run_1" || msgs[1].ID != "msg_run_2" {
		t.Fatalf("messages = %+v, %v", msgs, err)
	}
	// Repeating a run returns the stored one and writes nothing.
	again, created, err := st.CreateRunWith(ctx, nr)
	if err != nil || created || again.ID != "run_1" {
		t.Fatalf("repeat: %+v %v %v", again, created, err)
	}
	if msgs, _ := st.ListMessages(ctx, "ws", "thr_1", 10); len(msgs) != 2 {
		t.Fatalf("repeat added a message: %d", len(msgs))
	}
}

func TestSlotsBoundInFlightRunsAndExpire(t *testing.T) {
	t.Parallel()
	now := time.Now()
	clock := func() time.Time { return now }
	db := newStore(t)
	st := New(db.db, db.table, func() time.Time { return clock() })
	ctx := context.Background()
	pool := SlotPool("ws", "a")
	take := func(run string, i int) (Run, error) {
		nr := newRun("ws", "thr_"+run, run, now)
		nr.Slot = &Slot{Pool: pool, Index: i, Lease: time.Minute}
		r, _, err := st.CreateRunWith(ctx, nr)
		return r, err
	}
	r1, err := take("r1", 0)
	if err != nil || r1.Slot.IsZero() {
		t.Fatalf("take slot 0: %+v %v", r1, err)
	}
	if _, err := take("r2", 0); !errors.Is(err, ErrSlotTaken) {
		t.Fatalf("second run on slot 0: %v, want ErrSlotTaken", err)
	}
	if _, err := st.GetRun(ctx, "ws", "r2"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatal("a run that lost its slot was stored")
	}
	free, err := st.FreeSlots(ctx, pool, 3)
	if err != nil || !slices.Equal(free, []int{1, 2}) {
		t.Fatalf("free = %v, %v", free, err)
	}
	// Released: free again. Releasing twice, or a run without a slot, is harmless.
	if err := st.ReleaseSlot(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if err := st.ReleaseSlot(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if free, _ := st.FreeSlots(ctx, pool, 3); len(free) != 3 {
		t.Fatalf("after release free = %v", free)
	}
	// A lease that runs out frees the slot by itself (a dead process), unless renewed.
	r3, err := take("r3", 1)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(50 * time.Second)
	if err := st.RenewSlot(ctx, r3, time.Minute); err != nil {
		t.Fatal(err)
	}
	now = now.Add(50 * time.Second) // past the first lease, inside the renewed one
	if free, _ := st.FreeSlots(ctx, pool, 3); slices.Contains(free, 1) {
		t.Fatalf("a renewed slot is free: %v", free)
	}
	now = now.Add(time.Minute)
	if free, _ := st.FreeSlots(ctx, pool, 3); !slices.Contains(free, 1) {
		t.Fatalf("an expired slot is not free: %v", free)
	}
	r4, err := take("r4", 1)
	if err != nil {
		t.Fatalf("taking an expired slot: %v", err)
	}
	// The first holder's late release does not free the new holder's slot.
	if err := st.ReleaseSlot(ctx, r3); err != nil {
		t.Fatal(err)
	}
	if free, _ := st.FreeSlots(ctx, pool, 3); slices.Contains(free, 1) {
		t.Fatalf("a stale release freed %s's slot: %v", r4.ID, free)
	}
}

// Many runs race for few slots: exactly as many win as there are slots.
func TestSlotsUnderConcurrency(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	pool := SlotPool("ws", "race")
	const size, runs = 5, 12
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for try := 0; try < 50; try++ {
				free, err := st.FreeSlots(ctx, pool, size)
				if err != nil {
					t.Error(err)
					return
				}
				if len(free) == 0 {
					return
				}
				nr := newRun("ws", "thr", "run_"+string(rune('a'+i)), time.Now())
				nr.Slot = &Slot{Pool: pool, Index: free[(i+try)%len(free)], Lease: time.Minute}
				_, created, err := st.CreateRunWith(ctx, nr)
				switch {
				case err == nil && created:
					won.Add(1)
					return
				case errors.Is(err, ErrSlotTaken), errors.Is(err, ErrContended):
					time.Sleep(time.Duration(try) * time.Millisecond)
				default:
					t.Errorf("run %d: %v %v", i, created, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if won.Load() != size {
		t.Fatalf("%d runs took a slot, want %d", won.Load(), size)
	}
}

func TestApprovalAndCancelTransitions(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	at := time.Now()
	for _, id := range []string{"ra", "rd", "rc"} {
		if _, _, err := st.CreateRunWith(ctx, newRun("ws", "thr", id, at.Add(time.Duration(len(id))*time.Microsecond))); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.StartRun(ctx, "ws", id); err != nil {
			t.Fatal(err)
		}
	}
	reply := &Message{ID: "out_ra", Direction: "out", Source: "agent", Text: "May I refund?", RunID: "ra", CreatedAt: at.Add(time.Second)}
	w, err := st.FinishRunWith(ctx, "ws", "ra", Finish{
		Status: RunWaitingApproval, Result: &Result{Text: "May I refund?"}, ThreadID: "thr",
		Approval: &Approval{ID: "apr_1", Prompt: "Refund 20 EUR?", Options: []string{"yes", "no"}, Approvers: []string{"boss"}, ExpiresAt: at.Add(time.Hour)}, Reply: reply,
	})
	if err != nil || w.Status != RunWaitingApproval || w.Approval == nil || w.Approval.Prompt != "Refund 20 EUR?" ||
		!slices.Equal(w.Approval.Options, []string{"yes", "no"}) || w.Result == nil || w.Result.Text != "May I refund?" ||
		w.Approval.ID != "apr_1" || !slices.Equal(w.Approval.Approvers, []string{"boss"}) || !w.Approval.ExpiresAt.Equal(at.Add(time.Hour)) {
		t.Fatalf("waiting = %+v %v", w, err)
	}
	// The same turn again (a redelivery) neither finishes it again nor stores the reply twice.
	if _, err := st.FinishRunWith(ctx, "ws", "ra", Finish{Status: RunCompleted, Reply: reply, ThreadID: "thr"}); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("finishing a waiting run: %v, want Conflict", err)
	}
	msgs, _ := st.ListMessages(ctx, "ws", "thr", 10)
	if n := len(msgs); n != 4 || msgs[3].ID != "out_ra" || msgs[3].Direction != "out" || msgs[3].RunID != "ra" {
		t.Fatalf("messages = %+v", msgs)
	}
	if _, err := st.DecideRun(ctx, "ws", "ra", Decision{RequestID: "apr_0", Approved: true, By: "boss"}); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("deciding another request: %v, want Conflict", err)
	}
	a, err := st.DecideRun(ctx, "ws", "ra", Decision{RequestID: "apr_1", Approved: true, By: "boss", Option: "yes", Comment: "ok"})
	if err != nil || a.Status != RunQueued || a.Approval.Decision != DecisionApproved || a.Approval.DecidedBy != "boss" || a.Approval.DecidedAt == nil {
		t.Fatalf("approved = %+v %v", a, err)
	}
	if _, err := st.DecideRun(ctx, "ws", "ra", Decision{RequestID: "apr_1", Approved: false, By: "boss"}); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("deciding twice: %v, want Conflict", err)
	}
	if _, _, err := st.StartRun(ctx, "ws", "ra"); err != nil {
		t.Fatal(err)
	}
	// The agent asks again: a late decision for the first request cannot answer the second.
	if _, err := st.FinishRunWith(ctx, "ws", "ra", Finish{Status: RunWaitingApproval, Approval: &Approval{ID: "apr_2", Prompt: "And 5 EUR more?"}}); err != nil {
		t.Fatal(err)
	}
	late, err := st.DecideRun(ctx, "ws", "ra", Decision{RequestID: "apr_1", Approved: true, By: "boss"})
	if apierr.CodeOf(err) != apierr.Conflict || late.Status != RunWaitingApproval || late.Approval.ID != "apr_2" || late.Approval.Decision != "" {
		t.Fatalf("a late decision for the first request: %+v %v, want Conflict and the second still waiting", late, err)
	}
	if _, err := st.DecideRun(ctx, "ws", "ra", Decision{RequestID: "apr_2", Approved: true, By: "boss"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.StartRun(ctx, "ws", "ra"); err != nil {
		t.Fatal(err)
	}
	done, err := st.FinishRun(ctx, "ws", "ra", RunCompleted, &Result{Text: "refunded"}, "")
	if err != nil || done.Status != RunCompleted || done.Result.Text != "refunded" || done.Approval.Decision != DecisionApproved {
		t.Fatalf("completed = %+v %v", done, err)
	}

	if _, err := st.FinishRunWith(ctx, "ws", "rd", Finish{Status: RunWaitingApproval, Approval: &Approval{ID: "apr_d", Prompt: "Delete?"}}); err != nil {
		t.Fatal(err)
	}
	d, err := st.DecideRun(ctx, "ws", "rd", Decision{RequestID: "apr_d", Approved: false, By: "alice"})
	if err != nil || d.Status != RunDenied || !d.Terminal() || d.CompletedAt == nil || d.Approval.Decision != DecisionDenied {
		t.Fatalf("denied = %+v %v", d, err)
	}

	c, err := st.CancelRun(ctx, "ws", "rc", "alice")
	if err != nil || c.Status != RunCancelled || c.CancelledBy != "alice" || !c.Terminal() {
		t.Fatalf("cancelled = %+v %v", c, err)
	}
	// The worker's late finish of a cancelled run is refused and leaves it cancelled.
	if _, err := st.FinishRun(ctx, "ws", "rc", RunCompleted, &Result{Text: "late"}, ""); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("finishing a cancelled run: %v, want Conflict", err)
	}
	if _, err := st.CancelRun(ctx, "ws", "rc", "alice"); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("cancelling twice: %v, want Conflict", err)
	}
	if _, err := st.CancelRun(ctx, "ws", "nope", "alice"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("cancelling a missing run: %v, want NotFound", err)
	}
	if r, started, err := st.StartRun(ctx, "ws", "rc"); err != nil || started || r.Status != RunCancelled {
		t.Fatalf("starting a cancelled run: %+v %v %v", r, started, err)
	}
}

func TestThreadSessionAndMessages(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	if _, err := st.GetThread(ctx, "ws", "thr"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("missing thread: %v", err)
	}
	at := time.Now()
	if _, _, err := st.CreateRunWith(ctx, newRun("ws", "thr", "r1", at)); err != nil {
		t.Fatal(err)
	}
	th, err := st.GetThread(ctx, "ws", "thr")
	if err != nil || th.SessionStarted || th.Channel != "webhook.a" {
		t.Fatalf("thread = %+v %v", th, err)
	}
	if err := st.MarkSessionStarted(ctx, "ws", "thr"); err != nil {
		t.Fatal(err)
	}
	if th, _ := st.GetThread(ctx, "ws", "thr"); !th.SessionStarted {
		t.Fatal("session not marked started")
	}
	out := Message{ID: "out", Direction: "out", Text: "denied, noted", CreatedAt: at.Add(time.Second)}
	if added, err := st.AddMessage(ctx, "ws", "thr", out); err != nil || !added {
		t.Fatal(added, err)
	}
	if added, err := st.AddMessage(ctx, "ws", "thr", out); err != nil || added {
		t.Fatalf("adding the same message twice: %v %v", added, err)
	}
	last, err := st.ListMessages(ctx, "ws", "thr", 1)
	if err != nil || len(last) != 1 || last[0].ID != "out" {
		t.Fatalf("latest message = %+v %v", last, err)
	}
}

// A run is created with plain writes: the thread, the run, its message. A try that died before
// the message leaves a run without it; the retry (created false: the run exists) writes the
// message at the time the run recorded, and a repost of the same run received at another time adds
// no second message.
func TestCreateRunAfterATryDiedBeforeItsMessage(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	at := time.Now().UTC()
	nr := newRun("ws", "thr_1", "run_1", at)
	if _, _, err := st.CreateRunWith(ctx, nr); err != nil {
		t.Fatal(err)
	}
	// The first try died before its third write: take the message away.
	if _, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &st.table, Key: key(threadPK("ws", "thr_1"), messageSK(nr.Message))}); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := st.ListMessages(ctx, "ws", "thr_1", 10); len(msgs) != 0 {
		t.Fatalf("%d messages after the crash", len(msgs))
	}
	repost := nr
	repost.Message.CreatedAt = at.Add(7 * time.Minute) // received again, later
	for _, try := range []NewRun{repost, nr, repost} {
		r, created, err := st.CreateRunWith(ctx, try)
		if err != nil || created || r.ID != "run_1" || r.Status != RunQueued {
			t.Fatalf("retry: %+v %v %v", r, created, err)
		}
	}
	msgs, err := st.ListMessages(ctx, "ws", "thr_1", 10)
	if err != nil || len(msgs) != 1 || msgs[0].ID != nr.Message.ID || !msgs[0].CreatedAt.Equal(at) || msgs[0].Text != nr.Message.Text {
		t.Fatalf("messages after the retries: %+v %v", msgs, err)
	}
}

// A turn is finished with two plain writes, the run's change first: a turn that died before its
// reply message leaves a run that names the reply, and EnsureReply stores it, once.
func TestEnsureReplyStoresAReplyATurnDiedBefore(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	nr := newRun("ws", "thr_1", "run_1", time.Now())
	if _, _, err := st.CreateRunWith(ctx, nr); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.StartRun(ctx, "ws", "run_1"); err != nil {
		t.Fatal(err)
	}
	reply := Message{ID: "msg_reply", Direction: "out", Source: "agent", Text: "pong", RunID: "run_1", CreatedAt: time.Now().UTC()}
	done, err := st.FinishRunWith(ctx, "ws", "run_1", Finish{Status: RunCompleted, Result: &Result{Text: "pong"}, Reply: &reply, ThreadID: "thr_1"})
	if err != nil || done.ReplyID != "msg_reply" || !done.ReplyAt.Equal(reply.CreatedAt) {
		t.Fatalf("finish: %+v %v", done, err)
	}
	// The turn died before its second write: take the message away, as if never written.
	sk := messageSK(reply)
	if _, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &st.table, Key: key(threadPK("ws", "thr_1"), sk)}); err != nil {
		t.Fatal(err)
	}
	run, err := st.GetRun(ctx, "ws", "run_1")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := st.EnsureReply(ctx, run); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := st.ListMessages(ctx, "ws", "thr_1", 10)
	if err != nil || len(msgs) != 2 || msgs[1].ID != "msg_reply" || msgs[1].Text != "pong" || msgs[1].Direction != "out" || !msgs[1].CreatedAt.Equal(reply.CreatedAt) {
		t.Fatalf("messages: %+v %v", msgs, err)
	}
	// The finished run cannot be finished again: the reply is not written twice either.
	if _, err := st.FinishRunWith(ctx, "ws", "run_1", Finish{Status: RunCompleted, Result: &Result{Text: "pong"}, Reply: &reply, ThreadID: "thr_1"}); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("second finish: %v", err)
	}
}

// A repost of a run that names another thread (the same idempotency key with another channel or
// external id) finds the run existing and writes no message into that other thread.
func TestCreateRunRepostOnAnotherThreadWritesNoMessageThere(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	nr := newRun("ws", "thr_1", "run_1", time.Now().UTC())
	if _, _, err := st.CreateRunWith(ctx, nr); err != nil {
		t.Fatal(err)
	}
	repost := newRun("ws", "thr_2", "run_1", time.Now().UTC().Add(10*time.Minute))
	if r, created, err := st.CreateRunWith(ctx, repost); err != nil || created || r.ThreadID != "thr_1" {
		t.Fatalf("repost: %+v %v %v", r, created, err)
	}
	if msgs, err := st.ListMessages(ctx, "ws", "thr_2", 10); err != nil || len(msgs) != 0 {
		t.Fatalf("the other thread got %+v %v", msgs, err)
	}
	if msgs, err := st.ListMessages(ctx, "ws", "thr_1", 10); err != nil || len(msgs) != 1 {
		t.Fatalf("the run's thread has %+v %v", msgs, err)
	}
}

// A run created started is stored running with its first attempt counted, in the one write that
// creates it; created again it is returned as stored, and StartRun counts the next attempt.
func TestCreateRunStarted(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	nr := newRun("ws", "thr_1", "run_1", time.Now())
	nr.Start = true
	run, created, err := st.CreateRunWith(ctx, nr)
	if err != nil || !created || run.Status != RunRunning || run.Attempts != 1 || run.StartedAt == nil {
		t.Fatalf("created %+v, %v, %v; want running at attempt 1 with its start time", run, created, err)
	}
	stored, err := st.GetRun(ctx, "ws", "run_1")
	if err != nil || stored.Status != RunRunning || stored.Attempts != 1 {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	again, created, err := st.CreateRunWith(ctx, nr)
	if err != nil || created || again.Attempts != 1 {
		t.Fatalf("created again: %+v, %v, %v; want the stored run, not created", again, created, err)
	}
	next, started, err := st.StartRun(ctx, "ws", "run_1")
	if err != nil || !started || next.Attempts != 2 || !next.StartedAt.Equal(*run.StartedAt) {
		t.Fatalf("StartRun after: %+v, %v, %v; want attempt 2, first start time kept", next, started, err)
	}
}
