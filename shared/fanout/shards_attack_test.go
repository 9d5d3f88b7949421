package fanout

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/manage"
	"github.com/hookgate/hookgate/shared/store"
)

// Attacks on the fan-out's reading of log shards' partition keys.

// A stream record whose item's partition key is not a log shard's as the store writes them (a
// shard past the last, a leading zero, shard 0 spelled out, a sign, another item's key) is never
// delivered, and does not hold up the lanes of the well-keyed records beside it: those are
// delivered once each, and the batch reports no failure (a retry could not change the key).
func TestAttackForgedShardKeysAreNotDelivered(t *testing.T) {
	st := newLaneStore(store.Subscription{ID: "sub_fifo", Events: []string{"*"}, FIFO: true}, store.Subscription{ID: "sub_par", Events: []string{"*"}})
	q := &fakeQueue{}
	h := New(st, q, manage.MatchEvent, slog.New(slog.DiscardHandler))
	forged := []string{
		"WS#ws#EV#99", "WS#ws#EV#01", "WS#ws#EV#00", "WS#ws#EV#0", "WS#ws#EV#16", "WS#ws#EV#-1", "WS#ws#EV#+1",
		"WS#ws#EV# 1", "WS#ws#EV#1 ", "WS#ws#EV#1\x00", "WS#ws#EV#١", "WS#ws#EV#", "WS#ws#EVSEQ", "WS#ws#EVSEQ#1",
		"WS#ws#EVID#evt_x", "WS#ws#EV#1#EV", "WS#w#s#EV", "WS##EV", "ws#EV", "WS#ws#THR#t", "WS#ws#EV#4294967297",
	}
	var recs []events.DynamoDBEventRecord
	var good []string
	for i, pk := range forged {
		// A well-keyed record of shard 1 before each forged one, and of shard 0 after it.
		g1 := "evt_good1_" + string(rune('a'+i))
		recs = append(recs, shardRecord(10*i, "ws", 1, g1, "run.created", "{}"))
		bad := shardRecord(10*i+1, "ws", 0, "evt_forged_"+string(rune('a'+i)), "run.created", "{}")
		bad.Change.NewImage["pk"], bad.Change.Keys["pk"] = str(pk), str(pk)
		recs = append(recs, bad)
		g0 := "evt_good0_" + string(rune('a'+i))
		recs = append(recs, shardRecord(10*i+2, "ws", 0, g0, "run.created", "{}"))
		good = append(good, g1, g0)
	}
	// The key in Keys may be well formed while the image's is not: the image is what is read.
	bad := shardRecord(900, "ws", 2, "evt_forged_image", "run.created", "{}")
	bad.Change.NewImage["pk"] = str("WS#ws#EV#99")
	recs = append(recs, bad)
	resp, err := h.Handle(context.Background(), events.DynamoDBEvent{Records: recs})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v, %v; want none", resp.BatchItemFailures, err)
	}
	for _, d := range st.created {
		if strings.HasPrefix(d.EventID, "evt_forged") {
			t.Errorf("a forged record's delivery was created: %+v", d)
		}
	}
	for _, sub := range []string{"sub_fifo", "sub_par"} {
		sent := sentOf(q, "ws", sub, good)
		seen := map[string]int{}
		for _, e := range sent {
			seen[e]++
		}
		for _, e := range good {
			if seen[e] != 1 {
				t.Errorf("%s: %s queued %d times; want once", sub, e, seen[e])
			}
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.sent {
		if m.DeliveryID == ids.Derive("dlv", "ws", "evt_forged_image", "sub_par") {
			t.Errorf("the record whose image's key is forged was queued")
		}
	}
}
