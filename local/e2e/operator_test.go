package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/local/stack"
	"github.com/hookgate/hookgate/shared/trace"
)

// traceAgent is a webhook agent that remembers the traceparent of each run's user_speak call.
type traceAgent struct {
	srv   *httptest.Server
	mu    sync.Mutex
	byRun map[string]string // run id → traceparent header
}

func newTraceAgent(t *testing.T) *traceAgent {
	a := &traceAgent{byRun: map[string]string{}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Type  string `json:"type"`
			RunID string `json:"run_id"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &req)
		if req.Type != "user_speak" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		a.mu.Lock()
		a.byRun[req.RunID] = r.Header.Get("traceparent")
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"type":"speak","text":"traced"}`)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *traceAgent) trace(run string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.byRun[run]
}

// One webhook followed end to end by its trace id: the sender's traceparent reaches the agent and
// the subscriber's delivery of run.completed; an invalid one is replaced by a new trace, never
// passed on. The local metrics page counts the accepted messages and the deliveries.
func TestOneWebhookIsTracedEndToEndAndCounted(t *testing.T) {
	t.Parallel() // its own stack (doc.go)
	agent := newTraceAgent(t)
	e, err := startStack(t, "ops", time.Second, map[string]string{
		"Agents": fmt.Sprintf(`{"traced":{"type":"webhook","url":%q,"secret":%q,"timeoutSeconds":10}}`, agent.srv.URL+"/agent", agentSecret),
		"Agent":  "traced",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.stack.Close() })

	// The subscriber: a receiver (both signatures checked) that also keeps each delivery's traceparent.
	var mu sync.Mutex
	delivered := map[string]string{} // run id → traceparent of its run.completed delivery
	r := &receiver{t: t, byID: map[string]int{}, types: map[string]string{}, respond: func(string, int) int { return http.StatusOK }, received: make(chan string, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var env struct {
			Data struct {
				RunID string `json:"run_id"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &env)
		mu.Lock()
		delivered[env.Data.RunID] = req.Header.Get("traceparent")
		mu.Unlock()
		req.Body = io.NopCloser(strings.NewReader(string(body)))
		r.serve(w, req)
	}))
	t.Cleanup(r.srv.Close)
	subscribe(t, e, r, `["run.completed"]`)

	const sent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	const invalid = "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01" // uppercase: not W3C
	runs := map[string]string{}
	for name, tp := range map[string]string{"valid": sent, "invalid": invalid} {
		resp := postInbound(t, e, map[string]string{"traceparent": tp}, fmt.Sprintf(`{"channel":"ops","external_id":%q,"text":"hello"}`, name))
		if resp.status != 202 {
			t.Fatalf("post: %d %s", resp.status, resp.raw)
		}
		if run := waitRun(t, e, resp.body["thread_id"].(string), resp.body["run_id"].(string)); run["status"] != "completed" {
			t.Fatalf("run %v", run)
		}
		runs[name] = resp.body["run_id"].(string)
	}
	waitFor(t, "both run.completed deliveries", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return r.badSig == 0 && delivered[runs["valid"]] != "" && delivered[runs["invalid"]] != ""
	})
	mu.Lock()
	defer mu.Unlock()
	traceOf := func(what, tp string) string {
		p, ok := trace.Parse(tp)
		if !ok {
			t.Fatalf("%s: traceparent %q is not valid", what, tp)
		}
		return p.TraceIDString()
	}
	if got := traceOf("agent call", agent.trace(runs["valid"])); got != "0af7651916cd43dd8448eb211c80319c" {
		t.Fatalf("the agent saw trace %s, the sender sent 0af7651916cd43dd8448eb211c80319c", got)
	}
	if got := traceOf("delivery", delivered[runs["valid"]]); got != "0af7651916cd43dd8448eb211c80319c" {
		t.Fatalf("the delivery carried trace %s", got)
	}
	replaced := traceOf("agent call of the invalid", agent.trace(runs["invalid"]))
	if strings.EqualFold(replaced, "0af7651916cd43dd8448eb211c80319c") || strings.Contains(agent.trace(runs["invalid"]), "AF") {
		t.Fatalf("the invalid traceparent was propagated: %q", agent.trace(runs["invalid"]))
	}
	if got := traceOf("delivery of the invalid", delivered[runs["invalid"]]); got != replaced {
		t.Fatalf("the replacement trace %s did not reach the delivery (%s)", replaced, got)
	}

	// The metrics page sums the functions' EMF lines.
	var page stack.MetricsPage
	sum := func(name string, dims map[string]string) float64 {
		total := 0.0
	next:
		for _, s := range page.Metrics {
			if s.Name != name {
				continue
			}
			for k, v := range dims {
				if s.Dimensions[k] != v {
					continue next
				}
			}
			total += s.Sum
		}
		return total
	}
	waitFor(t, "the metrics of both messages and deliveries", 30*time.Second, func() bool {
		resp := do(t, http.MethodGet, e.stack.URL+stack.MetricsPath, nil, "")
		if resp.status != 200 {
			t.Fatalf("metrics page: %d %s", resp.status, resp.raw)
		}
		page = stack.MetricsPage{}
		if err := json.Unmarshal([]byte(resp.raw), &page); err != nil {
			t.Fatal(err)
		}
		return sum("InboundAccepted", map[string]string{"Door": "generic"}) >= 2 &&
			sum("Deliveries", map[string]string{"Target": "webhook", "Outcome": "delivered"}) >= 2 &&
			sum("Runs", map[string]string{"Outcome": "completed"}) >= 2
	})
	if page.InvalidLines != 0 {
		t.Fatalf("%d EMF lines CloudWatch would reject", page.InvalidLines)
	}
	for _, name := range []string{"AgentLatency", "AttemptLatency", "FanoutLag"} {
		if sum(name, nil) == 0 && !hasMetric(page, name) {
			t.Fatalf("no %s on the metrics page: %+v", name, page.Metrics)
		}
	}
}

func hasMetric(p stack.MetricsPage, name string) bool {
	for _, s := range p.Metrics {
		if s.Name == name && s.Count > 0 {
			return true
		}
	}
	return false
}
