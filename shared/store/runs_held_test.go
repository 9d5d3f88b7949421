package store

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/shared/apierr"
)

// heldRun is a new run as the worker creates one: started at once, without a slot.
func heldRun(ws, thread, run string, at time.Time) NewRun {
	nr := newRun(ws, thread, run, at)
	nr.Run.Adapter, nr.Run.ReplyURL, nr.Run.Agent = "", "", "support"
	nr.Start = true
	return nr
}

// rawRun returns the run's item as it is in the table (nil: none).
func rawRun(t *testing.T, st *Store, ws, id string) map[string]types.AttributeValue {
	t.Helper()
	out, err := st.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &st.table, Key: key(runPK(ws, id), "RUN"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// stamps are the attributes that hold the time of a write: they differ between two stores' runs.
var stamps = []string{"created_at", "updated_at", "started_at", "completed_at", "approval_at", "ttl"}

// sameItem fails the test unless the items hold the same attributes with the same values, times of
// writing aside.
func sameItem(t *testing.T, what string, got, want map[string]types.AttributeValue) {
	t.Helper()
	g, w := maps.Clone(got), maps.Clone(want)
	for _, name := range stamps {
		if _, ok := w[name]; ok != (g[name] != nil) {
			t.Errorf("%s: attribute %s is there %v, want %v", what, name, !ok, ok)
		}
		delete(g, name)
		delete(w, name)
	}
	if names, wantNames := slices.Sorted(maps.Keys(g)), slices.Sorted(maps.Keys(w)); !slices.Equal(names, wantNames) {
		t.Fatalf("%s: attributes %v, want %v", what, names, wantNames)
	}
	for name, v := range w {
		if !attrEqual(g[name], v) {
			t.Errorf("%s: %s = %#v, want %#v", what, name, g[name], v)
		}
	}
}

func attrEqual(a, b types.AttributeValue) bool {
	switch av := a.(type) {
	case *types.AttributeValueMemberS:
		bv, ok := b.(*types.AttributeValueMemberS)
		return ok && av.Value == bv.Value
	case *types.AttributeValueMemberN:
		bv, ok := b.(*types.AttributeValueMemberN)
		return ok && av.Value == bv.Value
	case *types.AttributeValueMemberBOOL:
		bv, ok := b.(*types.AttributeValueMemberBOOL)
		return ok && av.Value == bv.Value
	case *types.AttributeValueMemberL:
		bv, ok := b.(*types.AttributeValueMemberL)
		if !ok || len(av.Value) != len(bv.Value) {
			return false
		}
		for i := range av.Value {
			if !attrEqual(av.Value[i], bv.Value[i]) {
				return false
			}
		}
		return true
	}
	return false
}

// A held run is written once, by FinishHeld, as CreateRunWith (started) and FinishRunWith would
// have left it, attribute for attribute; PutHeld writes it as CreateRunWith alone. Each writes the
// run's message after it, and FinishHeld the reply.
func TestHeldRunIsWrittenAsCreateAndFinishWould(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	at := time.Now().UTC()
	reply := &Message{ID: "msg_reply", Direction: "out", Source: "agent", Text: "pong", RunID: "run_1", CreatedAt: at.Add(time.Second)}
	finishes := map[string]*Finish{
		"started": nil,
		"completed": {Status: RunCompleted, Result: &Result{Text: "pong"}, Reply: reply, ThreadID: "thr_1",
			SessionStarted: true, EventsLead: "evt_lead"},
		"failed": {Status: RunFailed, Error: "agent failed: agent answered 400", EventsLead: "evt_lead"},
		"waiting": {Status: RunWaitingApproval, Result: &Result{Text: "pong"}, Reply: reply, ThreadID: "thr_1",
			Approval: &Approval{ID: "apr_1", Prompt: "Refund?", Options: []string{"yes", "no"}, Approvers: []string{"boss"}, ExpiresAt: at.Add(time.Hour)}},
	}
	for name, f := range finishes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			before, held := newStore(t), newStore(t)
			nr := heldRun("ws", "thr_1", "run_1", at)
			if _, created, err := before.CreateRunWith(ctx, nr); err != nil || !created {
				t.Fatalf("create: %v %v", created, err)
			}
			h, created, err := held.HoldRun(ctx, nr)
			if err != nil || !created || h.Run.Status != RunRunning || h.Run.Attempts != 1 || h.Run.StartedAt == nil {
				t.Fatalf("hold: %+v %v %v; want the run running at attempt 1, not written", h.Run, created, err)
			}
			if item := rawRun(t, held, "ws", "run_1"); item != nil {
				t.Fatalf("HoldRun wrote the run: %v", item)
			}
			if msgs, err := held.ListMessages(ctx, "ws", "thr_1", 10); err != nil || len(msgs) != 0 {
				t.Fatalf("HoldRun wrote messages %+v, %v", msgs, err)
			}
			if th, err := held.GetThread(ctx, "ws", "thr_1"); err != nil || th.SessionRun != "run_1" || th.Channel != nr.Thread.Channel {
				t.Fatalf("thread %+v, %v; want it written, owed its session start by run_1", th, err)
			}
			var got Run
			if f == nil {
				got, created, err = held.PutHeld(ctx, h)
				if err != nil || !created {
					t.Fatalf("put: %v %v", created, err)
				}
			} else {
				want, err := before.FinishRunWith(ctx, "ws", "run_1", *f)
				if err != nil {
					t.Fatal(err)
				}
				if got, err = held.FinishHeld(ctx, h, *f); err != nil {
					t.Fatal(err)
				}
				if got.Status != want.Status || got.ReplyID != want.ReplyID || got.EventsLead != want.EventsLead || got.SessionStarted != want.SessionStarted {
					t.Fatalf("finished %+v, want %+v", got, want)
				}
			}
			sameItem(t, "run", rawRun(t, held, "ws", "run_1"), rawRun(t, before, "ws", "run_1"))
			wantMsgs, _ := before.ListMessages(ctx, "ws", "thr_1", 10)
			msgs, err := held.ListMessages(ctx, "ws", "thr_1", 10)
			if err != nil || len(msgs) != len(wantMsgs) {
				t.Fatalf("messages %+v, %v; want %+v", msgs, err, wantMsgs)
			}
			for i := range msgs {
				if m, w := msgs[i], wantMsgs[i]; m.ID != w.ID || !m.CreatedAt.Equal(w.CreatedAt) || m.Text != w.Text || m.Direction != w.Direction {
					t.Fatalf("message %d %+v, want %+v", i, m, w)
				}
			}
		})
	}
}

// A run that exists is not held: HoldRun returns it as CreateRunWith does (its message written
// again at the time the run recorded, none for a repost received later or naming another thread).
func TestHoldRunOfARunThatExists(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	at := time.Now().UTC()
	nr := heldRun("ws", "thr_1", "run_1", at)
	h, _, err := st.HoldRun(ctx, nr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.FinishHeld(ctx, h, Finish{Status: RunCompleted, Result: &Result{Text: "done"}}); err != nil {
		t.Fatal(err)
	}
	// The finishing try died before the message: take it away.
	if _, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &st.table, Key: key(threadPK("ws", "thr_1"), messageSK(nr.Message))}); err != nil {
		t.Fatal(err)
	}
	repost := nr
	repost.Message.CreatedAt = at.Add(7 * time.Minute)
	other := heldRun("ws", "thr_2", "run_1", at.Add(8*time.Minute))
	for _, try := range []NewRun{repost, nr, other} {
		h, held, err := st.HoldRun(ctx, try)
		if err != nil || held || h.Run.Status != RunCompleted || h.Run.ThreadID != "thr_1" {
			t.Fatalf("hold again: %+v %v %v; want the completed run, not held", h.Run, held, err)
		}
		if _, _, err := st.PutHeld(ctx, h); err == nil {
			t.Fatal("PutHeld wrote a run HoldRun found")
		}
	}
	msgs, err := st.ListMessages(ctx, "ws", "thr_1", 10)
	if err != nil || len(msgs) != 1 || msgs[0].ID != nr.Message.ID || !msgs[0].CreatedAt.Equal(at) {
		t.Fatalf("messages %+v, %v; want the run's one, at its time", msgs, err)
	}
	if msgs, err := st.ListMessages(ctx, "ws", "thr_2", 10); err != nil || len(msgs) != 0 {
		t.Fatalf("the other thread got %+v, %v", msgs, err)
	}
	if _, _, err := st.HoldRun(ctx, newRun("ws", "thr_3", "run_3", at)); err == nil {
		t.Fatal("HoldRun held a run that is not started at once")
	}
}

// Two deliveries held the same new run: the one that writes it second finds it. PutHeld returns it
// as it is; FinishHeld finishes it if it is running (as FinishRunWith would), and is a Conflict with
// the run otherwise; neither writes a second message.
func TestHeldRunWrittenMeanwhile(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	at := time.Now().UTC()
	nr := heldRun("ws", "thr_1", "run_1", at)
	a, _, err := st.HoldRun(ctx, nr)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := st.HoldRun(ctx, nr)
	if err != nil {
		t.Fatal(err)
	}
	if _, created, err := st.PutHeld(ctx, a); err != nil || !created {
		t.Fatalf("a's put: %v %v", created, err)
	}
	if r, created, err := st.PutHeld(ctx, b); err != nil || created || r.Status != RunRunning {
		t.Fatalf("b's put: %+v %v %v; want the run a wrote", r, created, err)
	}
	reply := Message{ID: "msg_b", Direction: "out", Source: "agent", Text: "b", RunID: "run_1", CreatedAt: at.Add(time.Second)}
	done, err := st.FinishHeld(ctx, b, Finish{Status: RunCompleted, Result: &Result{Text: "b"}, Reply: &reply, ThreadID: "thr_1"})
	if err != nil || done.Status != RunCompleted || done.Attempts != 1 || done.ReplyID != "msg_b" {
		t.Fatalf("b's finish of the running run: %+v %v", done, err)
	}
	late, err := st.FinishHeld(ctx, a, Finish{Status: RunFailed, Error: "late"})
	if apierr.CodeOf(err) != apierr.Conflict || late.Status != RunCompleted {
		t.Fatalf("a's finish of the completed run: %+v %v; want Conflict with the run", late, err)
	}
	msgs, err := st.ListMessages(ctx, "ws", "thr_1", 10)
	if err != nil || len(msgs) != 2 || msgs[0].ID != nr.Message.ID || msgs[1].ID != "msg_b" {
		t.Fatalf("messages %+v, %v; want the run's and b's reply", msgs, err)
	}
}
