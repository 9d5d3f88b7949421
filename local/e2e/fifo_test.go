package e2e_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// A FIFO subscription receives a thread's events one at a time, in the order of the log, and a
// delivery that fails holds back every later one until it succeeds; a parallel subscription of the
// same events gets them as they come. The messages all go to one thread, whose events the log holds
// in order.
func TestFIFOEndpointReceivesInLogOrder(t *testing.T) {
	t.Parallel() // doc.go says which tests may: a stack of its own
	// Queues with a visibility of 30 s, as on AWS a queue's outlasts its function's timeout: with
	// 1 s, under load a FIFO delivery slower than a second can be handed out again while it runs,
	// and the duplicate holds the group for the rest of the attempt's lease (the likely cause of a
	// timeout of this test seen once in a -race run).
	e, err := startStack(t, "fifo", 30*time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.stack.Close() })
	const messages = 8
	types := `["message.received","run.completed"]`

	var (
		mu        sync.Mutex
		order     []string // event ids, in the order the FIFO receiver took them
		open      int      // requests in progress at the FIFO receiver
		peak      int
		failing   string // the event whose first attempts fail
		fails     int
		heldBack  []string // events that arrived between the failing event's first failure and its success
		attempted = map[string]int{}
	)
	fifo := newReceiver(t, func(string, int) int { return http.StatusOK })
	inner := fifo.srv.Config.Handler
	fifo.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id := req.Header.Get("webhook-id")
		mu.Lock()
		open++
		peak = max(peak, open)
		attempted[id]++
		if failing == "" && len(order) == 3 {
			failing = id // the fourth event fails twice
		}
		if failing != "" && fails > 0 && fails < 3 && id != failing {
			heldBack = append(heldBack, id)
		}
		mu.Unlock()
		time.Sleep(50 * time.Millisecond) // a slow receiver: overlapping requests would show
		inner.ServeHTTP(w, req)
		mu.Lock()
		open--
		mu.Unlock()
	})
	fifo.respond = func(id string, _ int) int {
		// Called under the receiver's lock, inside inner.ServeHTTP.
		mu.Lock()
		defer mu.Unlock()
		if id == failing && fails < 2 {
			fails++
			return http.StatusInternalServerError
		}
		if id == failing {
			fails = 3
		}
		order = append(order, id)
		return http.StatusOK
	}
	resp := subscribeWith(t, e, adminHeaders(), fifo, types, `,"fifo":true`)
	if resp.status != 201 || resp.body["fifo"] != true {
		t.Fatalf("create the FIFO subscription: %d %s", resp.status, resp.raw)
	}
	fifoSub := resp.body["id"].(string)
	parallel := newReceiver(t, func(string, int) int { return http.StatusOK })
	parSub := subscribe(t, e, parallel, types)

	thread := fmt.Sprintf("fifo-%d", time.Now().UnixNano())
	for i := range messages {
		if r := postInbound(t, e, nil, fmt.Sprintf(`{"channel":"out","external_id":%q,"text":"m%d"}`, thread, i)); r.status != 202 {
			t.Fatalf("post %d: %d %s", i, r.status, r.raw)
		}
	}
	waitFor(t, "every event at both receivers", 3*time.Minute, func() bool {
		mu.Lock()
		n := len(order)
		mu.Unlock()
		parallel.mu.Lock()
		defer parallel.mu.Unlock()
		return n >= 2*messages && len(parallel.byID) >= 2*messages
	})

	// The log's order of the thread's events of those types.
	var want []string
	for _, ev := range logOf(t, e, "default") {
		if ev.Type == "message.received" || ev.Type == "run.completed" {
			want = append(want, ev.ID)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(order, want) {
		t.Fatalf("the FIFO receiver took\n%v\nthe log holds\n%v", order, want)
	}
	if peak != 1 {
		t.Fatalf("%d requests were open at once at the FIFO receiver, want 1", peak)
	}
	if fails != 3 || attempted[failing] != 3 || len(heldBack) != 0 {
		t.Fatalf("the failing event %s: %d attempts; events sent while it was failing: %v", failing, attempted[failing], heldBack)
	}
	for id, n := range attempted {
		if id != failing && n != 1 {
			t.Errorf("event %s was sent %d times", id, n)
		}
	}
	for _, sub := range []string{fifoSub, parSub} {
		ds := deliveries(t, e, sub, "succeeded")
		if len(ds) != 2*messages {
			t.Fatalf("subscription %s: %d succeeded deliveries, want %d", sub, len(ds), 2*messages)
		}
		one := do(t, http.MethodGet, e.stack.URL+"/v1/deliveries/"+ds[0]["id"].(string), adminHeaders(), "")
		if one.status != 200 || (one.body["fifo"] == true) != (sub == fifoSub) {
			t.Fatalf("delivery of %s: %d %s", sub, one.status, one.raw)
		}
	}
}
