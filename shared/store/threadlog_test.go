package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestThreadOf(t *testing.T) {
	cases := []struct {
		typ, data, want string
	}{
		{"message.received", `{"thread_id":"thr_a","text":"hi"}`, "thr_a"},
		{"message.sent", `{"text":"x","thread_id":"thr_b"}`, "thr_b"},
		{"run.completed", `{"run_id":"r","thread_id":"thr_c","status":"completed"}`, "thr_c"},
		{"webhook.stripe.charge_succeeded", `{"thread_id":"thr_a"}`, ""}, // a SaaS payload cannot reach a thread
		{"telegram.edited_message", `{"thread_id":"thr_a"}`, ""},
		{"binding.status", `{"thread_id":"thr_a"}`, ""},
		{"run.created", `{"thread_id":42}`, ""},
		{"run.created", `{"thread_id":""}`, ""},
		{"run.created", `{"nested":{"thread_id":"thr_a"}}`, ""},
		{"run.created", `not json`, ""},
		{"message.received", `{"thread_id":"thr_\u00e9"}`, "thr_é"},
	}
	for _, c := range cases {
		if got := ThreadOf(Event{Type: c.typ, Data: json.RawMessage(c.data)}); got != c.want {
			t.Errorf("ThreadOf(%s %s) = %q, want %q", c.typ, c.data, got, c.want)
		}
	}
}

// Conversation events are indexed under their thread with the log's cursor and content; other
// events are not, and the thread's messages are unaffected by the index.
func TestThreadEventsFollowTheirThread(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	th := Thread{ID: "thr_a", WorkspaceID: "ws", Channel: "web", ExternalID: "s1"}
	if _, _, err := st.CreateRunWith(ctx, NewRun{Thread: th, Message: Message{ID: "msg_1", Direction: "in", Source: "web", Text: "hi", CreatedAt: time.Now()}, Run: Run{ID: "run_1"}}); err != nil {
		t.Fatal(err)
	}
	ev := func(id, typ, data string) Event {
		return Event{ID: id, Type: typ, WorkspaceID: "ws", Data: json.RawMessage(data)}
	}
	if _, err := st.AppendEvents(ctx, []Event{
		ev("e1", "message.received", `{"thread_id":"thr_a","message_id":"msg_1","text":"hi"}`),
		ev("e2", "run.created", `{"thread_id":"thr_a","run_id":"run_1","status":"queued"}`),
		ev("e3", "webhook.github.push", `{"thread_id":"thr_a"}`),
		ev("e4", "run.created", `{"thread_id":"thr_b","run_id":"run_2","status":"queued"}`),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendEvent(ctx, ev("e5", "message.sent", `{"thread_id":"thr_a","message_id":"msg_2","text":"hello"}`)); err != nil {
		t.Fatal(err)
	}
	log, err := st.ListEvents(ctx, "ws", 0, 10)
	if err != nil || len(log) != 5 {
		t.Fatalf("log = %d events, %v", len(log), err)
	}
	got, err := st.ListThreadEvents(ctx, "ws", "thr_a", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []Event{log[0], log[1], log[4]}
	if len(got) != len(want) {
		t.Fatalf("thread a has %d events, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Type != w.Type || g.Cursor != w.Cursor || string(g.Data) != string(w.Data) || !g.CreatedAt.Equal(w.CreatedAt) || g.WorkspaceID != "ws" {
			t.Errorf("thread event %d = %+v, log has %+v", i, g, w)
		}
	}
	after, err := st.ListThreadEvents(ctx, "ws", "thr_a", log[1].Cursor, 10)
	if err != nil || len(after) != 1 || after[0].ID != "e5" {
		t.Fatalf("after cursor %d: %+v, %v", log[1].Cursor, after, err)
	}
	if limited, _ := st.ListThreadEvents(ctx, "ws", "thr_a", 0, 2); len(limited) != 2 || limited[1].ID != "e2" {
		t.Fatalf("limit 2: %+v", limited)
	}
	if b, _ := st.ListThreadEvents(ctx, "ws", "thr_b", 0, 10); len(b) != 1 || b[0].ID != "e4" {
		t.Fatalf("thread b: %+v", b)
	}
	if other, _ := st.ListThreadEvents(ctx, "other", "thr_a", 0, 10); len(other) != 0 {
		t.Fatalf("another workspace sees thread a: %+v", other)
	}
	msgs, err := st.ListMessages(ctx, "ws", "thr_a", 10)
	if err != nil || len(msgs) != 1 || msgs[0].ID != "msg_1" {
		t.Fatalf("messages of thread a = %+v, %v", msgs, err)
	}
	if head, err := st.LogHead(ctx, "ws"); err != nil || len(head) != 1 || head[0] != 5 {
		t.Fatalf("LogHead = %v, %v", head, err)
	}
	if head, err := st.LogHead(ctx, "empty"); err != nil || len(head) != 1 || head[0] != 0 {
		t.Fatalf("LogHead of an empty log = %v, %v", head, err)
	}
}

// A full group of conversation events (three items each) fits one transaction, and a retried
// append of it indexes nothing twice.
func TestThreadIndexFullGroup(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	var evs []Event
	for i := range maxGroupEvents {
		evs = append(evs, Event{ID: fmt.Sprintf("e%d", i), Type: "message.sent", WorkspaceID: "ws",
			Data: json.RawMessage(fmt.Sprintf(`{"thread_id":"thr_%d","text":"t"}`, i%3))})
	}
	first, err := st.AppendEvents(ctx, slices.Clone(evs))
	if err != nil {
		t.Fatalf("append %d conversation events: %v", len(evs), err)
	}
	if _, err := st.AppendEvents(ctx, slices.Clone(evs)); err != nil {
		t.Fatal(err)
	}
	total := 0
	for th := range 3 {
		got, err := st.ListThreadEvents(ctx, "ws", fmt.Sprintf("thr_%d", th), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range got {
			if i > 0 && e.Cursor <= got[i-1].Cursor {
				t.Fatalf("thread %d out of order: %+v", th, got)
			}
			if e.Cursor != first[e.Cursor-1].Cursor || e.ID != first[e.Cursor-1].ID {
				t.Fatalf("thread %d: %+v does not match the log", th, e)
			}
		}
		total += len(got)
	}
	if total != maxGroupEvents {
		t.Fatalf("threads hold %d events, want %d", total, maxGroupEvents)
	}
}
