package worker

import (
	"context"
	"testing"
)

// Only the widget's threads are read by thread (its stream): their events are indexed under the
// thread; other channels' events are in the workspace log only (a copy nobody reads is a write
// unit per event).
func TestOnlyWidgetThreadsAreIndexed(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0, echoing)
	demo, web := message("thr_demo", "run_demo", "hi"), message("thr_web", "run_web", "hi")
	web.Channel = widgetChannel
	if failed := r.handle(t, record("1", demo), record("2", web)); len(failed) != 0 {
		t.Fatalf("failed: %v", failed)
	}
	ctx := context.Background()
	if all, err := r.st.ListEvents(ctx, "ws", 0, 100); err != nil || len(all) != 8 {
		t.Fatalf("workspace log: %d events, %v (want 8)", len(all), err)
	}
	if evs, err := r.st.ListThreadEvents(ctx, "ws", "thr_web", 0, 100); err != nil || len(evs) != 4 {
		t.Fatalf("widget thread index: %d events, %v (want 4)", len(evs), err)
	}
	if evs, err := r.st.ListThreadEvents(ctx, "ws", "thr_demo", 0, 100); err != nil || len(evs) != 0 {
		t.Fatalf("demo thread index: %d events, %v (want none)", len(evs), err)
	}
}
