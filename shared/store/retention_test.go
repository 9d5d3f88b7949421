package store

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
)

// With a retention, every event (and its thread-index copy), run, message and thread written
// carries the TTL attribute the table's TimeToLiveSpecification names, the retention after it
// was written (a thread: after its latest message); the event counter does not. Without one,
// none does.
func TestRetentionWritesTheTTLAttribute(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	const retention = 90 * 24 * time.Hour
	for _, tc := range []struct {
		name      string
		retention time.Duration
		want      string // the ttl attribute's value; "" none
	}{
		{"90 days", retention, strconv.FormatInt(at.Add(retention).Unix(), 10)},
		{"kept forever", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, table := emulatortest.Table(t, "store")
			st := New(db, table, func() time.Time { return at }).WithRetention(tc.retention)
			ctx := context.Background()
			th := Thread{ID: "thr_1", WorkspaceID: "ws", Channel: "email", ExternalID: "a@b"}
			in := Message{ID: "msg_1", Direction: "in", Source: "generic", Text: "hi", CreatedAt: at}
			if _, _, err := st.CreateRunWith(ctx, NewRun{Thread: th, Message: in, Run: Run{ID: "run_1"}}); err != nil {
				t.Fatal(err)
			}
			out := Message{ID: "msg_2", Direction: "out", Source: "agent", Text: "hello", RunID: "run_1", CreatedAt: at}
			if _, err := st.AddMessage(ctx, "ws", "thr_1", out); err != nil {
				t.Fatal(err)
			}
			evs, err := st.AppendEvents(ctx, []Event{{ID: "evt_1", Type: "message.received", WorkspaceID: "ws", Data: json.RawMessage(`{"thread_id":"thr_1"}`)}})
			if err != nil {
				t.Fatal(err)
			}
			items := map[string]map[string]types.AttributeValue{
				"event":        key(EventPK("ws", 0), eventSK(evs[0].Cursor)),
				"thread event": key(threadPK("ws", "thr_1"), threadEventSK(evs[0].Cursor)),
				"run":          key(runPK("ws", "run_1"), "RUN"),
				"in message":   key(threadPK("ws", "thr_1"), messageSK(in)),
				"out message":  key(threadPK("ws", "thr_1"), messageSK(out)),
				"thread":       key(threadPK("ws", "thr_1"), "META"),
			}
			for name, k := range items {
				got, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: k, ConsistentRead: ptr(true)})
				if err != nil || len(got.Item) == 0 {
					t.Fatalf("%s: item %v not found (%v)", name, k, err)
				}
				ttl := ""
				if v, ok := got.Item["ttl"].(*types.AttributeValueMemberN); ok {
					ttl = v.Value
				}
				if ttl != tc.want {
					t.Errorf("%s: ttl %q, want %q", name, ttl, tc.want)
				}
			}
			seq, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: seqKey("ws", 0), ConsistentRead: ptr(true)})
			if err != nil || len(seq.Item) == 0 {
				t.Fatalf("event counter not found (%v)", err)
			}
			if _, ok := seq.Item["ttl"]; ok {
				t.Errorf("the event counter expires: %v", seq.Item["ttl"])
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
