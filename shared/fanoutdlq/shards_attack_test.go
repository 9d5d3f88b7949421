package fanoutdlq

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/fanout"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

func TestMain(m *testing.M) { os.Exit(emulatortest.Run(m)) }

// subsOnce is the fan-out's store: one subscription to every event, deliveries kept by id.
type subsOnce struct {
	mu      sync.Mutex
	created map[string]store.Delivery
}

func (s *subsOnce) ListActiveSubscriptions(context.Context, string) ([]store.Subscription, error) {
	return []store.Subscription{{ID: "sub_all", Events: []string{"*"}}}, nil
}

func (s *subsOnce) CreateDelivery(_ context.Context, d store.Delivery) (store.Delivery, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.created[d.ID]; ok {
		return old, false, nil
	}
	d.Status = store.DeliveryPending
	s.created[d.ID] = d
	return d, true, nil
}

func (s *subsOnce) GetRun(context.Context, string, string) (store.Run, error) {
	return store.Run{}, fmt.Errorf("no runs here")
}

type sendsOnce struct {
	mu   sync.Mutex
	sent map[string]int // delivery id → sends
}

func (q *sendsOnce) SendDeliveries(_ context.Context, ms []queue.Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range ms {
		q.sent[m.DeliveryID]++
	}
	return nil
}

func (q *sendsOnce) SendOrdered(ctx context.Context, m queue.Delivery, _ string) error {
	return q.SendDeliveries(ctx, []queue.Delivery{m})
}

// A batch the stream no longer holds, of a workspace whose log has four shards, is rebuilt from
// every shard and fanned out by the real fan-out: each event of the window is delivered once, none
// refused for its shard's key; a second replay of the same batch creates no delivery again (the
// attempt's claim, not the fan-out, stops a second send of a pending one).
func TestAttackReplayRebuildsEveryShard(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "dlqattack")
	ctx := context.Background()
	st := store.New(db, table, time.Now).WithShards(4)
	first := time.Now().UTC().Truncate(time.Second)
	want := map[string]bool{}
	shards := map[int]bool{}
	for i := 0; len(shards) < 4 || i < 40; i++ {
		if i == 400 {
			t.Fatalf("400 spread events did not reach four shards: %v", shards)
		}
		e := store.Event{ID: fmt.Sprintf("evt_%03d", i), Type: "webhook.test", WorkspaceID: "ws", Data: json.RawMessage(`{"i":1}`), Spread: i%5 != 0}
		got, err := st.AppendEvent(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		shards[got.Shard], want[got.ID] = true, true
	}
	last := time.Now().UTC().Truncate(time.Second)
	subs, sends := &subsOnce{created: map[string]store.Delivery{}}, &sendsOnce{sent: map[string]int{}}
	fan := fanout.New(subs, sends, func([]string, string) bool { return true }, slog.New(slog.DiscardHandler))
	for round := range 2 {
		q := &fakeQueue{msgs: []string{arrivalPointer(t, first.Format(time.RFC3339), last.Format(time.RFC3339), len(want))}}
		r := New(q, "dlq", fakeStream{}, testARN, fan, slog.New(slog.DiscardHandler)).WithEventLog(st)
		res, err := r.Replay(ctx, Options{Workspaces: []string{"ws"}})
		if err != nil || res.Rebuilt != 1 || res.Replayed != 1 || len(q.deleted) != 1 {
			t.Fatalf("round %d: %+v, %v, deleted %v", round, res, err, q.deleted)
		}
	}
	got := map[string]int{}
	for _, d := range subs.created {
		got[d.EventID]++
	}
	for id := range want {
		if got[id] != 1 {
			t.Errorf("%s: %d deliveries; want 1", id, got[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d events delivered; want %d", len(got), len(want))
	}
	if len(sends.sent) != len(want) {
		t.Errorf("%d deliveries queued; want %d", len(sends.sent), len(want))
	}
}
