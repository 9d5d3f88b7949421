package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
)

// Attacks on the order of a group's events (3291f93 made the worker's opening and closing events
// one group: message.received, run.created, message.sent, run.completed).

// putHookDB runs put before each PutItem; an error it returns is the call's (nothing is written).
type putHookDB struct {
	DB
	put func(in *dynamodb.PutItemInput) error
}

func (h *putHookDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if h.put != nil {
		if err := h.put(in); err != nil {
			return nil, err
		}
	}
	return h.DB.PutItem(ctx, in, opts...)
}

func sOf(item map[string]types.AttributeValue, k string) string {
	if v, ok := item[k].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// inOrder fails the test unless the ids are in the log once each, in this order.
func inOrder(t *testing.T, st *Store, ids ...string) {
	t.Helper()
	at := logOnce(t, st, "ws")
	for i, id := range ids {
		if _, ok := at[id]; !ok {
			t.Fatalf("%s is not in the log: %v", id, at)
		}
		if i > 0 && at[ids[i-1]] > at[id] {
			t.Fatalf("log %v: %s after %s", at, ids[i-1], id)
		}
	}
}

// The appender of a group dies while its writes are in flight: the later events land, the first
// does not. The retry comes after the reservation went stale (a redelivery after the queue's
// visibility timeout) and moves the first event to a new cursor: after the group's last.
func TestAttack14GroupWhoseFirstWriteDiedStaysInOrder(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	var dead atomic.Bool
	dead.Store(true)
	hdb := &putHookDB{DB: db, put: func(in *dynamodb.PutItemInput) error {
		if dead.Load() && sOf(in.Item, "kind") == KindEvent && sOf(in.Item, "event_id") == "evt_a" {
			return errors.New("the appender died before this write landed")
		}
		return nil
	}}
	var skew atomic.Int64
	st := New(hdb, table, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	group := []Event{gev("evt_a"), gev("evt_b"), gev("evt_c"), gev("evt_d")}
	if _, err := st.AppendEvents(context.Background(), group); err == nil {
		t.Fatal("the append whose first write died succeeded")
	}
	dead.Store(false)
	skew.Store(int64(staleAfter + time.Minute))
	if _, err := st.AppendEvents(context.Background(), []Event{gev("evt_a"), gev("evt_b"), gev("evt_c"), gev("evt_d")}); err != nil {
		t.Fatal(err)
	}
	inOrder(t, st, "evt_a", "evt_b", "evt_c", "evt_d")
}

// Two appenders of a group's events at once: A appends the whole group, B only its first events
// (a delivery that held no events of the run's turn). A reserves its cursors, then B reserves
// later ones and claims the group's marker first. A's claim finds B's marker: the first events
// are where B put them, and A claims the rest at the cursors it reserved before B's.
func TestAttack14LostClaimKeepsTheGroupInOrder(t *testing.T) {
	t.Parallel()
	db, table := emulatortest.Table(t, "store")
	var once sync.Once
	hdb := &putHookDB{DB: db}
	st := New(hdb, table, time.Now)
	hdb.put = func(in *dynamodb.PutItemInput) error {
		l, _ := in.Item["ids"].(*types.AttributeValueMemberL)
		if sOf(in.Item, "pk") == "WS#ws#EVID#evt_a" && l != nil && len(l.Value) == 4 {
			once.Do(func() {
				if _, err := st.AppendEvents(context.Background(), []Event{gev("evt_a"), gev("evt_b")}); err != nil {
					t.Error(err)
				}
			})
		}
		return nil
	}
	if _, err := st.AppendEvents(context.Background(), []Event{gev("evt_a"), gev("evt_b"), gev("evt_c"), gev("evt_d")}); err != nil {
		t.Fatal(err)
	}
	inOrder(t, st, "evt_a", "evt_b", "evt_c", "evt_d")
	// And the rest again after its lead, and the whole group again: where they are.
	if _, err := st.AppendEventsAfter(context.Background(), "evt_a", []Event{gev("evt_c"), gev("evt_d")}); err != nil {
		t.Fatal(err)
	}
	inOrder(t, st, "evt_a", "evt_b", "evt_c", "evt_d")
}
