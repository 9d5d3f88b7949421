package e2e_test

import (
	"net/http"
	"testing"
)

// The FanoutDLQ replay runs the fan-out's handler in the management function: the events it
// brings back owe deliveries to FIFO subscriptions too, which go to DeliveryFifoQueue. A replay
// whose fan-out cannot reach that queue fails every batch holding such an event, and FanoutDLQ
// never empties. Here the FIFO subscription is created after the outage's events, so only the
// replay can give it their deliveries: every one must arrive, once.
func TestFIFOFanoutDLQReplayReachesTheFIFOQueue(t *testing.T) {
	t.Parallel() // doc.go says which tests may: a stack of its own
	e := fanoutDLQStack(t)
	r, sub, evs, _, fix := fanoutOutage(t, e)

	fifo := newReceiver(t, func(string, int) int { return http.StatusNoContent })
	resp := subscribeWith(t, e, adminHeaders(), fifo, `["*"]`, `,"fifo":true`)
	if resp.status != 201 || resp.body["fifo"] != true {
		t.Fatalf("create the FIFO subscription: %d %s", resp.status, resp.raw)
	}
	fifoSub := resp.body["id"].(string)

	fix()
	replayAll(t, e, `{"max_messages":5}`)
	deliveredOnce(t, e, r, sub, evs)
	deliveredOnce(t, e, fifo, fifoSub, evs)
}
