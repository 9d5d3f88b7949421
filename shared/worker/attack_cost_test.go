package worker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/agent"
	"github.com/hookgate/hookgate/shared/store"
)

// Outside attacks on the held run (a new run's item written once for a quick turn), on DynamoDB
// Local.

// An agent that answers after the hold passed and the run was cancelled meanwhile: the hold's
// timer wrote the run (so the cancel finds it), the answer is not stored, no message.sent nor
// run.completed is recorded, the run stays cancelled; the message delivered again calls no agent
// and records nothing more.
func TestAttackAgentAnswersAfterItsHeldRunWasCancelled(t *testing.T) {
	t.Parallel()
	var r *rig
	var cancelErr error
	r, _ = meteredRig(t, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Kind == agent.KindUserSpeak {
			r.whenRunExists(t, req.RunID) // the hold passed: its timer wrote the run
			_, cancelErr = r.st.CancelRun(context.Background(), "ws", req.RunID, "alice")
		}
		return echoing(req, n)
	})
	r.h.cfg.Hold = 20 * time.Millisecond
	m := message("thr_c", "c1", "hello")
	r.handleAll(t, record("1", m))
	if cancelErr != nil {
		t.Fatalf("cancel once the hold passed: %v", cancelErr)
	}
	check := func(when string) {
		t.Helper()
		if run := r.run(t, "c1"); run.Status != store.RunCancelled || run.ReplyID != "" || run.Attempts != 1 {
			t.Fatalf("%s: run %+v; want cancelled at attempt 1 with no reply", when, run)
		}
		msgs, err := r.st.ListMessages(context.Background(), "ws", "thr_c", 10)
		if err != nil || len(msgs) != 1 || msgs[0].Direction != "in" {
			t.Fatalf("%s: messages %+v %v; want only the inbound one", when, msgs, err)
		}
		if got := r.logByCursor(t); !slices.Equal(got, turnTypes[:2]) {
			t.Fatalf("%s: events %v, want %v", when, got, turnTypes[:2])
		}
		r.wantKinds(t, "thr_c", agent.KindSessionStart, agent.KindUserSpeak)
	}
	check("after the turn")
	r.handleAll(t, record("1", m))
	check("after the redelivery")
}

// The hold's timer racing the turn's end: holds from a microsecond to a few milliseconds, with
// quick turns, so that the timer's write of the run (running) and the turn's write of its final
// state (FinishHeld) or change (FinishRunWith) meet in every order. Every run ends completed at
// its first attempt with its session start recorded, its thread holds the message and one reply,
// the agent is called once per kind, and the run's four events are each in the log once, in order.
func TestAttackHoldTimerRacesTheTurnsEnd(t *testing.T) {
	t.Parallel()
	for _, hold := range []time.Duration{time.Microsecond, 300 * time.Microsecond, time.Millisecond, 3 * time.Millisecond, 10 * time.Millisecond} {
		t.Run(hold.String(), func(t *testing.T) {
			t.Parallel()
			r, _ := meteredRig(t, echoing)
			r.h.cfg.Hold = hold
			const runs = 8
			var wg sync.WaitGroup
			for i := range runs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					m := message(fmt.Sprintf("thr_h%d", i), fmt.Sprintf("h%d", i), "hello")
					if failed := r.handle(t, record(fmt.Sprint(i), m)); len(failed) != 0 {
						t.Errorf("run h%d: failed %v", i, failed)
					}
				}()
			}
			wg.Wait()
			byThread := r.threadsOnce(t, 1000)
			for i := range runs {
				th, id := fmt.Sprintf("thr_h%d", i), fmt.Sprintf("h%d", i)
				if got := byThread[th]; !slices.Equal(got, turnTypes) {
					t.Errorf("thread %s: events %v, want %v", th, got, turnTypes)
				}
				run, err := r.st.GetRun(context.Background(), "ws", id)
				if err != nil || run.Status != store.RunCompleted || run.Attempts != 1 || !run.SessionStarted || run.ReplyID == "" {
					t.Errorf("run %s: %+v %v; want completed at attempt 1, session started, with its reply", id, run, err)
				}
				msgs, err := r.st.ListMessages(context.Background(), "ws", th, 10)
				if err != nil || len(msgs) != 2 || msgs[0].Direction != "in" || msgs[1].Direction != "out" || msgs[1].ID != run.ReplyID {
					t.Errorf("thread %s: messages %+v %v; want the inbound one and its reply", th, msgs, err)
				}
				if got := r.agent.kinds(th); !slices.Equal(got, []string{agent.KindSessionStart, agent.KindUserSpeak}) {
					t.Errorf("thread %s: agent calls %v", th, got)
				}
			}
		})
	}
}

// Two messages of one thread, each a new run, the second delivered after the first's turn ended
// within the hold (the run and its messages written once, by FinishHeld): the second's agent gets the first's message and reply as its history (written
// by the first's FinishHeld), never its own message, and the thread's session is started once.
func TestAttackSecondMessageOfAThreadSeesTheHeldRunsTurn(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var histories [][]agent.Turn
	r, _ := meteredRig(t, func(req agent.Request, n int) (agent.Reply, error) {
		if req.Kind == agent.KindUserSpeak {
			mu.Lock()
			histories = append(histories, req.History)
			mu.Unlock()
		}
		return echoing(req, n)
	})
	r.h.agents = registry{r.agent, 5}
	r.handleAll(t, record("1", message("thr_two", "two1", "first")))
	r.handleAll(t, record("2", message("thr_two", "two2", "second")))
	r.wantKinds(t, "thr_two", agent.KindSessionStart, agent.KindUserSpeak, agent.KindUserSpeak)
	want := [][]agent.Turn{nil, {{Role: "user", Text: "first"}, {Role: "assistant", Text: "echo: first"}}}
	if len(histories) != 2 || len(histories[0]) != 0 || !slices.Equal(histories[1], want[1]) {
		t.Fatalf("histories %+v, want %+v", histories, want)
	}
	byThread := r.threadsOnce(t, 1000)
	if got := byThread["thr_two"]; !slices.Equal(got, append(slices.Clone(turnTypes), turnTypes...)) {
		t.Fatalf("events %v", got)
	}
}

// A repost under the same idempotency key naming another thread (another external id: the same
// run id, another FIFO group), delivered at the same time as the first post, both within the hold:
// each delivery holds the run; one writes it, on its own thread. The run exists once and ends
// completed at its first attempt; its thread holds its message and one reply; the other thread
// holds none of the run's messages; each event is in the log once.
func TestAttackRepostOnAnotherThreadWithinTheHold(t *testing.T) {
	t.Parallel()
	r, _ := meteredRig(t, echoing)
	const runs = 8
	var wg sync.WaitGroup
	for i := range runs {
		id := fmt.Sprintf("rp%d", i)
		a, b := message("thr_a"+id, id, "hello"), message("thr_b"+id, id, "hello")
		for _, sqsID := range []string{"a", "b"} {
			msg := a
			if sqsID == "b" {
				msg = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for try := 0; try < 10; try++ {
					if len(r.handle(t, record(sqsID+id, msg))) == 0 {
						return
					}
				}
				t.Errorf("run %s: delivery %s kept failing", id, sqsID)
			}()
		}
	}
	wg.Wait()
	if _, ok := r.logOnce(t, 1000); !ok {
		t.Fatal("an event is in the log twice")
	}
	for i := range runs {
		id := fmt.Sprintf("rp%d", i)
		run, err := r.st.GetRun(context.Background(), "ws", id)
		if err != nil || run.Status != store.RunCompleted || run.ReplyID == "" {
			t.Errorf("run %s: %+v %v; want completed with its reply", id, run, err)
			continue
		}
		own, other := run.ThreadID, "thr_a"+id
		if own == other {
			other = "thr_b" + id
		}
		msgs, err := r.st.ListMessages(context.Background(), "ws", own, 10)
		if err != nil || len(msgs) != 2 || msgs[0].Direction != "in" || msgs[1].ID != run.ReplyID {
			t.Errorf("run %s: its thread %s holds %+v %v; want its message and one reply", id, own, msgs, err)
		}
		if msgs, err := r.st.ListMessages(context.Background(), "ws", other, 10); err != nil || len(msgs) != 0 {
			t.Errorf("run %s: the other thread %s holds %+v %v; want none of the run's messages", id, other, msgs, err)
		}
	}
}
