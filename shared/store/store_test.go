package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/apierr"
)

func TestMain(m *testing.M) {
	if os.Getenv(appenderEnv) != "" { // a process of BenchmarkAppendContention
		os.Exit(runAppender())
	}
	os.Exit(emulatortest.Run(m))
}

// newStore creates a fresh table shaped exactly as template.yaml declares it, on DynamoDB Local.
func newStore(t *testing.T) *Store {
	t.Helper()
	db, table := emulatortest.Table(t, "store")
	return New(db, table, time.Now)
}

func TestCreateRunIsIdempotent(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	th := Thread{ID: "thr_1", WorkspaceID: "ws", Channel: "email", ExternalID: "a@b"}
	m := Message{ID: "msg_1", Direction: "in", Source: "generic", Text: "hi", Data: json.RawMessage(`{"k":1}`), CreatedAt: time.Now()}
	_, created, err := st.CreateRunWith(ctx, NewRun{Thread: th, Message: m, Run: Run{ID: "run_1"}})
	if err != nil || !created {
		t.Fatalf("first CreateRun = %v, %v", created, err)
	}
	_, created, err = st.CreateRunWith(ctx, NewRun{Thread: th, Message: m, Run: Run{ID: "run_1"}})
	if err != nil || created {
		t.Fatalf("second CreateRun = %v, %v; want false, nil", created, err)
	}
	r, err := st.GetRun(ctx, "ws", "run_1")
	if err != nil || r.Status != RunQueued || r.ThreadID != "thr_1" || r.MessageID != "msg_1" {
		t.Fatalf("GetRun = %+v, %v", r, err)
	}
	if _, err := st.GetRun(ctx, "other-ws", "run_1"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("another workspace sees the run: %v", err)
	}
}

func TestRunLifecycle(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	if _, _, err := st.CreateRunWith(ctx, NewRun{Thread: Thread{ID: "thr", WorkspaceID: "ws"}, Message: Message{ID: "m", CreatedAt: time.Now()}, Run: Run{ID: "r"}}); err != nil {
		t.Fatal(err)
	}
	r, started, err := st.StartRun(ctx, "ws", "r")
	if err != nil || !started || r.Status != RunRunning || r.Attempts != 1 || r.StartedAt == nil {
		t.Fatalf("StartRun = %+v %v %v", r, started, err)
	}
	// A crash and redelivery starts it again, counting the attempt.
	if r, started, err = st.StartRun(ctx, "ws", "r"); err != nil || !started || r.Attempts != 2 {
		t.Fatalf("restart = %+v %v %v", r, started, err)
	}
	done, err := st.FinishRun(ctx, "ws", "r", RunCompleted, &Result{Text: "pong"}, "")
	if err != nil || done.Status != RunCompleted || done.Result == nil || done.Result.Text != "pong" || done.CompletedAt == nil {
		t.Fatalf("FinishRun = %+v, %v", done, err)
	}
	// A finished run is not started again and cannot be finished twice.
	if r, started, err = st.StartRun(ctx, "ws", "r"); err != nil || started || r.Status != RunCompleted {
		t.Fatalf("StartRun after finish = %+v %v %v", r, started, err)
	}
	if _, err := st.FinishRun(ctx, "ws", "r", RunFailed, nil, "late"); err == nil {
		t.Fatal("a finished run was finished again")
	}
}

// Three writers append concurrently; the log ends dense (1..N), each event once, in commit order.
func TestAppendEventConcurrentWritersDenseAndOnce(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	const writers, each = 3, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("evt_%d_%d", w, i)
				e, err := st.AppendEvent(ctx, Event{ID: id, Type: "test.event", WorkspaceID: "ws", Data: json.RawMessage(`{"i":1}`)})
				if err != nil {
					errs <- err
					return
				}
				// Appending the same id again returns the stored event, not a new one.
				again, err := st.AppendEvent(ctx, Event{ID: id, Type: "test.event", WorkspaceID: "ws"})
				if err != nil || again.Cursor != e.Cursor {
					errs <- fmt.Errorf("re-append of %s: cursor %d vs %d, %v", id, again.Cursor, e.Cursor, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var all []Event
	var after int64
	for {
		page, err := st.ListEvents(ctx, "ws", after, 25)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].Cursor
	}
	if len(all) != writers*each {
		t.Fatalf("log has %d events, want %d", len(all), writers*each)
	}
	seen := map[string]bool{}
	for i, e := range all {
		if e.Cursor != int64(i+1) {
			t.Fatalf("event %d has cursor %d: the log is not dense", i, e.Cursor)
		}
		if seen[e.ID] {
			t.Fatalf("event %s appears twice", e.ID)
		}
		seen[e.ID] = true
	}
	if other, _ := st.ListEvents(ctx, "other", 0, 10); len(other) != 0 {
		t.Fatalf("another workspace's log has %d events", len(other))
	}
}

func TestAppendEventsIsOneRunAndIdempotentPerGroup(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	ev := func(id string) Event { return Event{ID: id, Type: "t", WorkspaceID: "ws"} }
	first, err := st.AppendEvents(ctx, []Event{ev("a"), ev("b")})
	if err != nil || first[0].Cursor != 1 || first[1].Cursor != 2 {
		t.Fatalf("first = %+v, %v", first, err)
	}
	// A retry of the group, or of its first event alone, finds the cursors its marker holds.
	again, err := st.AppendEvents(ctx, []Event{ev("a")})
	if err != nil || again[0].Cursor != 1 {
		t.Fatalf("a alone again = %+v, %v", again, err)
	}
	again, err = st.AppendEvents(ctx, []Event{ev("a"), ev("b")})
	if err != nil || again[0].Cursor != 1 || again[1].Cursor != 2 {
		t.Fatalf("the group again = %+v, %v", again, err)
	}
	// A group led by a with an event its marker does not hold (a run's reply event, then a later
	// state's event): a keeps its cursor, c is appended after, as a group of its own.
	with, err := st.AppendEvents(ctx, []Event{ev("a"), ev("c")})
	if err != nil || with[0].Cursor != 1 || with[1].Cursor != 3 {
		t.Fatalf("a with c = %+v, %v", with, err)
	}
	again, err = st.AppendEvents(ctx, []Event{ev("a"), ev("c")})
	if err != nil || again[0].Cursor != 1 || again[1].Cursor != 3 {
		t.Fatalf("a with c again = %+v, %v", again, err)
	}
	// A new group follows; c, first of its own group now, is found.
	second, err := st.AppendEvents(ctx, []Event{ev("c"), ev("d")})
	if err != nil || second[0].Cursor != 3 || second[1].Cursor != 4 {
		t.Fatalf("second = %+v, %v", second, err)
	}
	all, _ := st.ListEvents(ctx, "ws", 0, 10)
	if len(all) != 4 || all[2].ID != "c" || all[3].ID != "d" {
		t.Fatalf("log = %+v", all)
	}
	if _, err := st.AppendEvents(ctx, []Event{ev("x"), {ID: "y", Type: "t", WorkspaceID: "other"}}); err == nil {
		t.Fatal("events of two workspaces appended together")
	}
}
