package widget

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/limit"
	"github.com/hookgate/hookgate/shared/verify"
)

// limitedHandler is the widget's handler with its buckets in a fresh table of DynamoDB Local.
func limitedHandler(t *testing.T, q *fakeQueue, now func() time.Time, l Limits, gate limit.GateConfig) func(r string, headers map[string]string, body string) reply {
	t.Helper()
	db, table := emulatortest.Table(t, "widget")
	lim := limit.New(db, table, now)
	h := New(testCfg(), q, slog.New(slog.NewJSONHandler(io.Discard, nil)), now).WithLimits(l, lim, limit.NewGate(lim, gate, now))
	fn := lambda.NewHandler(h.Handle).Invoke
	return func(route string, headers map[string]string, body string) reply {
		return invoke(t, fn, route, headers, nil, body)
	}
}

func TestSessionLifetimeIsCapped(t *testing.T) {
	t.Parallel()
	clock := t0
	call := limitedHandler(t, &fakeQueue{}, func() time.Time { return clock }, Limits{MaxLifetime: 3 * time.Hour}, limit.GateConfig{})
	keys := verify.NewSecrets(signKey)
	r := call("POST /v1/web/session", map[string]string{"origin": site}, "")
	tok := r.body["token"].(string)
	// Renewed at half-life, as the widget does: each renewal holds an hour, the last one only
	// until three hours after the session was opened.
	for clock.Before(t0.Add(3 * time.Hour)) {
		clock = clock.Add(30 * time.Minute)
		r = call("POST /v1/web/session", map[string]string{"origin": site, "authorization": "Bearer " + tok}, "")
		if clock.Equal(t0.Add(3 * time.Hour)) {
			break
		}
		if r.status != 200 {
			t.Fatalf("renewal at %s: %d %v", clock.Sub(t0), r.status, r.body)
		}
		tok = r.body["token"].(string)
		s, _ := Verify(keys, tok, clock)
		want := min(clock.Add(time.Hour).Sub(t0), 3*time.Hour)
		if s.Expires.Sub(t0) != want || !s.Issued.Equal(t0) || r.body["expires_in"] != float64(s.Expires.Sub(clock)/time.Second) {
			t.Fatalf("renewal at %s: expires %s after opening, issued %v, %v; want %s", clock.Sub(t0), s.Expires.Sub(t0), s.Issued, r.body["expires_in"], want)
		}
	}
	if r.status != 401 {
		t.Fatalf("the session outlived its lifetime: %d %v", r.status, r.body)
	}
	// A token that is still valid but whose session is older than the cap is not renewed.
	old := Sign(keys, Session{Workspace: "default", ID: "wss_old", Origin: site, Issued: clock.Add(-3 * time.Hour), Expires: clock.Add(10 * time.Minute)})
	r = call("POST /v1/web/session", map[string]string{"origin": site, "authorization": "Bearer " + old}, "")
	if r.status != 401 || !strings.Contains(r.body["error"].(map[string]any)["message"].(string), "lifetime") {
		t.Fatalf("renewal past the lifetime: %d %v", r.status, r.body)
	}
	// A token signed before tokens carried their first issue counts from its own issue.
	legacy := Sign(keys, Session{Workspace: "default", ID: "wss_legacy", Origin: site, Expires: clock.Add(30 * time.Minute)})
	r = call("POST /v1/web/session", map[string]string{"origin": site, "authorization": "Bearer " + legacy}, "")
	if s, err := Verify(keys, r.body["token"].(string), clock); r.status != 200 || err != nil || !s.Issued.Equal(clock.Add(-30*time.Minute)) {
		t.Fatalf("legacy renewal: %d %v %+v", r.status, r.body, s)
	}
}

func TestWidgetFloodIsRateLimited(t *testing.T) {
	t.Parallel()
	clock := t0
	q := &fakeQueue{}
	call := limitedHandler(t, q, func() time.Time { return clock },
		Limits{Sessions: limit.PerMinute(2), Messages: limit.PerMinute(5), SessionMessages: limit.PerMinute(3)}, limit.GateConfig{})
	open := func() (int, string) {
		r := call("POST /v1/web/session", map[string]string{"origin": site}, "")
		tok, _ := r.body["token"].(string)
		return r.status, tok
	}
	send := func(tok string) reply {
		return call("POST /v1/web/messages", map[string]string{"origin": site, "authorization": "Bearer " + tok}, `{"text":"hi"}`)
	}
	_, a := open()
	_, b := open()
	if st, _ := open(); st != 429 {
		t.Fatalf("a third session in a minute: %d", st)
	}
	if r := call("POST /v1/web/session", map[string]string{"origin": site, "authorization": "Bearer " + a}, ""); r.status != 200 {
		t.Fatalf("a renewal is not a new session: %d %v", r.status, r.body)
	}
	for i := range 3 {
		if r := send(a); r.status != 202 {
			t.Fatalf("message %d: %d %v", i+1, r.status, r.body)
		}
	}
	r := send(a)
	if r.status != 429 || r.code() != "rate_limited" || r.headers["retry-after"] != "20" || r.headers["access-control-allow-origin"] != site {
		t.Fatalf("a fourth message in a minute: %d %v %v", r.status, r.headers, r.body)
	}
	// Another session has its own bucket, but the workspace's holds five in all.
	for i := range 2 {
		if r := send(b); r.status != 202 {
			t.Fatalf("session b, message %d: %d %v", i+1, r.status, r.body)
		}
	}
	if r := send(b); r.status != 429 || r.code() != "rate_limited" {
		t.Fatalf("the workspace's sixth message in a minute: %d %v", r.status, r.body)
	}
	if len(q.msgs) != 5 {
		t.Fatalf("%d messages queued, want 5", len(q.msgs))
	}
	clock = clock.Add(20 * time.Second)
	if r := send(a); r.status != 202 {
		t.Fatalf("after the refill: %d %v", r.status, r.body)
	}
}

func TestWidgetSpendsTheRunBudget(t *testing.T) {
	t.Parallel()
	clock := t0
	q := &fakeQueue{}
	call := limitedHandler(t, q, func() time.Time { return clock }, Limits{}, limit.GateConfig{DailyRuns: 1})
	tok := call("POST /v1/web/session", map[string]string{"origin": site}, "").body["token"].(string)
	send := func() reply {
		return call("POST /v1/web/messages", map[string]string{"origin": site, "authorization": "Bearer " + tok}, `{"text":"hi"}`)
	}
	// A message the queue refuses gives its unit back.
	q.err = io.ErrUnexpectedEOF
	if r := send(); r.status != 503 {
		t.Fatalf("queue down: %d %v", r.status, r.body)
	}
	q.err = nil
	if r := send(); r.status != 202 {
		t.Fatalf("first run of the day: %d %v", r.status, r.body)
	}
	r := send()
	if r.status != 429 || r.code() != "run_budget_exhausted" || r.headers["retry-after"] != "54000" ||
		!strings.Contains(r.body["error"].(map[string]any)["message"].(string), "resets at 2026-11-26T00:00:00Z") {
		t.Fatalf("over the budget: %d %v %v", r.status, r.headers, r.body)
	}
	if len(q.msgs) != 1 {
		t.Fatalf("%d messages queued, want 1", len(q.msgs))
	}
}
