package e2e_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/store"
)

// Abuse has a price ceiling (issue 11, class 5, and the inbound rate of class 3). Each stack here
// has small limits of its own, so that no other test meets them.

var widgetLimited, budget lazyStack

// widgetLimitedStack allows three widget messages a minute per session.
func widgetLimitedStack(t *testing.T) *env {
	t.Helper()
	return widgetLimited.get(t, "abusew", 0, map[string]string{
		"WidgetSigningKey": widgetKey, "WidgetSessionMessagesPerMinute": "3",
	})
}

// budgetStack allows two runs a day per workspace, and ten inbound messages at once (one a minute
// after that).
func budgetStack(t *testing.T) *env {
	t.Helper()
	return budget.get(t, "abuseb", 0, map[string]string{
		"DailyRunBudget": "2", "InboundMessagesPerMinute": "1", "InboundBurst": "10",
	})
}

// retryAfter is the response's Retry-After in seconds, or 0.
func (r reply) retryAfter() int {
	n, _ := strconv.Atoi(r.header.Get("Retry-After"))
	return n
}

func (r reply) message() string {
	e, _ := r.body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// widgetToken signs a session token as the widget does ("hgw1." + base64url(payload) + "." +
// hex HMAC-SHA256), with the test's own code.
func widgetToken(payload map[string]any) string {
	b, _ := json.Marshal(payload)
	signed := "hgw1." + base64.RawURLEncoding.EncodeToString(b)
	m := hmac.New(sha256.New, []byte(widgetKey))
	m.Write([]byte(signed))
	return signed + "." + hex.EncodeToString(m.Sum(nil))
}

// threadEvents counts the events of a thread by type.
func threadEvents(t *testing.T, e *env, thread string) map[string]int {
	t.Helper()
	evs, err := e.store.ListThreadEvents(context.Background(), "default", thread, 0, 500)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, ev := range evs {
		out[ev.Type]++
	}
	return out
}

// workspaceEvents counts the default workspace's events by type.
func workspaceEvents(t *testing.T, e *env) map[string]int {
	t.Helper()
	out := map[string]int{}
	var after int64
	for {
		page, err := e.store.ListEvents(context.Background(), "default", after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		for _, ev := range page {
			out[ev.Type]++
		}
		after = page[len(page)-1].Cursor
	}
}

// waitUntil polls cond until it holds (90 s at most).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Anyone can set Origin: a script that floods the widget gets 429 after the session's limit, and
// only that many runs exist.
func TestWidgetMessageFloodIsRateLimited(t *testing.T) {
	inLane(t, laneWidgetLimited)
	e := widgetLimitedStack(t)
	site := e.stack.URL
	r := do(t, http.MethodPost, site+"/v1/web/session", map[string]string{"Origin": site}, "{}")
	if r.status != 201 {
		t.Fatalf("open session: %d %s", r.status, r.raw)
	}
	token, thread := r.body["token"].(string), r.body["thread_id"].(string)
	var statuses []int
	for i := range 8 {
		r := do(t, http.MethodPost, site+"/v1/web/messages", map[string]string{"Origin": site, "Authorization": "Bearer " + token},
			fmt.Sprintf(`{"text":"flood %d","client_id":"f-%d"}`, i, i))
		statuses = append(statuses, r.status)
		if i >= 3 && (r.status != 429 || r.errorCode() != "rate_limited" || r.retryAfter() < 1 || r.header.Get("Access-Control-Allow-Origin") != site) {
			t.Fatalf("message %d over the limit: %d %v %s (statuses so far %v)", i+1, r.status, r.header, r.raw, statuses)
		}
	}
	if fmt.Sprint(statuses[:3]) != "[202 202 202]" {
		t.Fatalf("statuses %v", statuses)
	}
	waitUntil(t, "three completed runs", func() bool { return threadEvents(t, e, thread)["run.completed"] == 3 })
	inboundDrained(t, e)
	if got := threadEvents(t, e, thread); got["run.created"] != 3 || got["message.received"] != 3 {
		t.Fatalf("the flood made %v, want 3 runs", got)
	}
}

// A session's token is renewed only until its lifetime ends (24 h from when it was opened), even
// when the token being renewed is still valid.
func TestWidgetRenewalPastLifetimeRefused(t *testing.T) {
	inLane(t, laneWidgetLimited)
	e := widgetLimitedStack(t)
	site := e.stack.URL
	now := time.Now()
	renew := func(issued time.Time, id string) reply {
		tok := widgetToken(map[string]any{"w": "default", "s": id, "o": strings.ToLower(site), "e": now.Add(30 * time.Minute).Unix(), "i": issued.Unix()})
		return do(t, http.MethodPost, site+"/v1/web/session", map[string]string{"Origin": site, "Authorization": "Bearer " + tok}, "{}")
	}
	if r := renew(now.Add(-25*time.Hour), "wss_old"); r.status != 401 || r.errorCode() != "unauthorized" || r.body["token"] != nil {
		t.Fatalf("renewal of a session opened 25 h ago: %d %s", r.status, r.raw)
	}
	// Opened 23 h 50 min ago: renewed, but only until 24 h after it was opened, not for an hour.
	issued := now.Add(-(23*time.Hour + 50*time.Minute))
	r := renew(issued, "wss_late")
	if r.status != 200 {
		t.Fatalf("renewal before the cap: %d %s", r.status, r.raw)
	}
	exp, _ := time.Parse(time.RFC3339, r.body["expires_at"].(string))
	if exp.After(issued.Add(24*time.Hour)) || r.body["expires_in"].(float64) > 600 {
		t.Fatalf("renewed until %v (%v s), past the session's 24 h", exp, r.body["expires_in"])
	}
}

// A workspace whose daily run budget is spent gets 429 run_budget_exhausted, saying when it
// resets, on every door that starts runs, and no run is created.
func TestDailyRunBudgetRefusesNewRuns(t *testing.T) {
	inLane(t, laneBudget)
	e := budgetStack(t)
	generic := func(i int) reply {
		return do(t, http.MethodPost, e.stack.URL+"/v1/inbound/generic",
			map[string]string{"Content-Type": "application/json", "X-Hookgate-Inbound-Secret": inboundSecret},
			fmt.Sprintf(`{"channel":"budget","external_id":"u-%d","text":"run %d"}`, i, i))
	}
	var runs [][2]string
	for i := range 2 {
		r := generic(i)
		if r.status != 202 {
			t.Fatalf("run %d within the budget: %d %s", i+1, r.status, r.raw)
		}
		runs = append(runs, [2]string{r.body["thread_id"].(string), r.body["run_id"].(string)})
	}
	tomorrow := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	refused := func(door string, r reply) {
		t.Helper()
		if r.status != 429 || r.errorCode() != "run_budget_exhausted" || r.retryAfter() < 1 ||
			!strings.Contains(r.message(), "resets at "+tomorrow.Format(time.RFC3339)) || r.body["run_id"] != nil || r.body["runId"] != nil {
			t.Fatalf("%s over the budget: %d %v %s", door, r.status, r.header, r.raw)
		}
	}
	refused("generic door", generic(3))
	trigger := `{"channel":"zap","external_id":"z-1","text":"from a zap"}`
	refused("trigger door", do(t, http.MethodPost, e.stack.URL+"/v1/integrations/trigger",
		map[string]string{"Content-Type": "application/json", "X-Hookgate-Signature": "sha256=" + hmacHex(inboundSecret, trigger)}, trigger))
	refused("adapter", do(t, http.MethodPost, e.stack.URL+"/webhook/default",
		map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + adapterSecret}, `{"text":"over budget","eventId":"budget-1"}`))
	// The adapter stores a run (holding an in-flight slot) before it queues it: none was stored.
	if free, err := e.store.FreeSlots(context.Background(), store.SlotPool("default", "default"), 32); err != nil || len(free) != 32 {
		t.Fatalf("free slots %v, %v: the refused adapter request stored a run", free, err)
	}

	for _, r := range runs {
		waitRun(t, e, r[0], r[1])
	}
	inboundDrained(t, e)
	if got := workspaceEvents(t, e); got["run.created"] != 2 || got["message.received"] != 2 {
		t.Fatalf("events %v, want 2 runs", got)
	}
}

// A loop that slipped past the loop guards, or any flood, meets the workspace's inbound rate: the
// door answers 429 with Retry-After past the burst, and the log holds only what was accepted.
func TestInboundFloodIsBoundedByTheWorkspaceRate(t *testing.T) {
	inLane(t, laneBudget)
	e := budgetStack(t)
	const posts = 40
	accepted := 0
	var last reply
	for i := range posts {
		body := fmt.Sprintf(`{"channel":"loop","binding_id":"b-%d","status":"connected"}`, i)
		r := do(t, http.MethodPost, e.stack.URL+"/v1/inbound/binding/status",
			map[string]string{"Content-Type": "application/json", "X-Hookgate-Signature": "sha256=" + hmacHex(inboundSecret, body)}, body)
		switch r.status {
		case 202:
			accepted++
		case 429:
			last = r
		default:
			t.Fatalf("post %d: %d %s", i+1, r.status, r.raw)
		}
	}
	if accepted >= posts || last.errorCode() != "rate_limited" || last.retryAfter() < 1 {
		t.Fatalf("%d of %d accepted; last refusal %d %v %s", accepted, posts, last.status, last.header, last.raw)
	}
	waitUntil(t, "the accepted reports", func() bool { return workspaceEvents(t, e)["binding.status"] >= accepted })
	inboundDrained(t, e)
	if got := workspaceEvents(t, e)["binding.status"]; got != accepted {
		t.Fatalf("%d binding.status events for %d accepted reports", got, accepted)
	}
}
