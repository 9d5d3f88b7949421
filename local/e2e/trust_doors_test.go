package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/store"
)

// Attacks on the inbound doors' trust boundaries (issue 11, classes 1, 2 and 7): each test sends
// what an attacker would, through the local HTTP API, and checks that it is refused and that
// nothing of it was stored, queued or sent.

func telegramUpdate(updateID, chat int64, text string) string {
	return fmt.Sprintf(`{"update_id":%d,"message":{"message_id":1,"date":1700000000,"chat":{"id":%d,"type":"private"},"text":%q}}`, updateID, chat, text)
}

// settled posts a legitimate event to ws through its none source and waits until the worker has
// recorded it: a barrier after which anything an earlier request had queued would have been
// recorded too (the worker is quick), without waiting a fixed time.
func settled(t *testing.T, e *env, ws, source string) {
	t.Helper()
	body := fmt.Sprintf(`{"type":"barrier","id":"barrier-%d"}`, time.Now().UnixNano())
	if r := postWebhook(t, e, ws, "source="+source, nil, body); r.status != 202 {
		t.Fatalf("barrier: %d %s", r.status, r.raw)
	}
	typ := "webhook." + source + ".barrier"
	waitFor(t, "the barrier event", 20*time.Second, func() bool { return countType(logOf(t, e, ws), typ) > 0 })
}

// A workspace's none source (for a SaaS that cannot sign) opens the SaaS door only: named on the
// Telegram, trigger or binding door it is refused like a bad signature, and nothing is recorded.
func TestTelegramDoorRefusesNoneSource(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	n := time.Now().UnixNano()
	ws := fmt.Sprintf("trust-none-%d", n%1e9)
	createNoneSource(t, e, ws, "saas")
	chat := n % 1e9
	forged := map[string]struct{ path, body string }{
		"telegram": {"/v1/inbound/telegram", telegramUpdate(chat, chat, "forged through a none source")},
		"trigger":  {"/v1/integrations/trigger", fmt.Sprintf(`{"channel":"zapier","external_id":"x-%d","text":"forged"}`, n)},
		"binding":  {"/v1/inbound/binding/status", fmt.Sprintf(`{"channel":"slack","binding_id":"b-%d","status":"hijacked"}`, n)},
	}
	for door, f := range forged {
		r := do(t, http.MethodPost, e.stack.URL+f.path+"?workspace_id="+ws+"&source=saas", map[string]string{"content-type": "application/json"}, f.body)
		if r.status != 401 || r.errorCode() != "unauthorized" {
			t.Errorf("%s door with a none source: %d %s, want 401", door, r.status, r.raw)
		}
	}
	settled(t, e, ws, "saas") // the none source still opens the SaaS door
	if evs := logOf(t, e, ws); len(evs) != 1 {
		t.Fatalf("the workspace's log holds %d events, want only the barrier: %+v", len(evs), evs)
	}
	thread := keyedIDs(e).Thread(ws, "telegram", strconv.FormatInt(chat, 10))
	if _, err := e.store.GetThread(context.Background(), ws, thread); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("the forged update stored thread %s: %v", thread, err)
	}
	if bs, err := e.store.ListBindings(context.Background(), ws); err != nil || len(bs) != 0 {
		t.Fatalf("the forged report stored %v (%v)", bs, err)
	}
}

// The stack's trigger secret, a Bearer token for the Zapier/Make door, does not pass the Telegram
// door even when that door is told to check the trigger source.
func TestTelegramDoorRefusesTheTriggerSecret(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	chat := time.Now().UnixNano() % 1e9
	for _, headers := range []map[string]string{
		{"authorization": "Bearer " + inboundSecret},
		{"x-telegram-bot-api-secret-token": inboundSecret},
	} {
		headers["content-type"] = "application/json"
		r := do(t, http.MethodPost, e.stack.URL+"/v1/inbound/telegram?source=trigger", headers, telegramUpdate(chat, chat, "forged with the trigger secret"))
		if r.status != 401 || r.errorCode() != "unauthorized" {
			t.Fatalf("trigger secret %v on the Telegram door: %d %s, want 401", headers, r.status, r.raw)
		}
	}
	// A real update after it goes through (the barrier), and the forged one left nothing.
	real := chat + 1
	r := postTelegram(t, e, telegramToken, telegramUpdate(real, real, "a real update"))
	if r.status != 202 {
		t.Fatalf("real update: %d %s", r.status, r.raw)
	}
	waitRun(t, e, r.body["thread_id"].(string), r.body["run_id"].(string))
	thread := keyedIDs(e).Thread("default", "telegram", strconv.FormatInt(chat, 10))
	if _, err := e.store.GetThread(context.Background(), "default", thread); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("the forged update stored thread %s: %v", thread, err)
	}
	if evs := eventsAbout(t, e, strconv.FormatInt(chat, 10)); len(evs) != 0 {
		t.Fatalf("the forged update recorded %v", evs)
	}
}

// A caller cannot tell an unknown workspace or source from a wrong signature: same status, same body.
func TestUnknownWorkspaceLooksLikeABadSignature(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	n := time.Now().UnixNano() % 1e9
	ws := fmt.Sprintf("trust-known-%d", n)
	createSource(t, e, ws, "hm", "hmac_sha256", secretFor("hmac_sha256"))
	body := `{"type":"invoice.paid","id":"evt_probe"}`
	bad := signers["hmac_sha256"]("wrong-secret-0123456789", "", time.Now(), body)
	probes := map[string]reply{
		"bad signature":     postWebhook(t, e, ws, "source=hm", bad, body),
		"unknown source":    postWebhook(t, e, ws, "source=nosuch", bad, body),
		"unknown workspace": postWebhook(t, e, fmt.Sprintf("trust-nobody-%d", n), "source=hm", bad, body),
		"malformed source":  postWebhook(t, e, ws, "source=no%20such", bad, body),
		"telegram, unknown workspace": do(t, http.MethodPost, e.stack.URL+"/v1/inbound/telegram?workspace_id=trust-nobody", map[string]string{
			"content-type": "application/json", "x-telegram-bot-api-secret-token": telegramToken}, telegramUpdate(n, n, "probe")),
		"telegram, bad token": postTelegram(t, e, "wrong-token-0123456789", telegramUpdate(n, n, "probe")),
		"trigger, unknown workspace": do(t, http.MethodPost, e.stack.URL+"/v1/integrations/trigger?workspace_id=trust-nobody", map[string]string{
			"content-type": "application/json", "authorization": "Bearer " + inboundSecret}, `{"channel":"zapier","external_id":"x","text":"probe"}`),
	}
	want := probes["bad signature"]
	if want.status != 401 {
		t.Fatalf("bad signature: %d %s", want.status, want.raw)
	}
	for name, r := range probes {
		if r.status != want.status || r.raw != want.raw {
			t.Errorf("%s: %d %s; a bad signature gets %d %s", name, r.status, r.raw, want.status, want.raw)
		}
	}
}

// The trigger and generic doors refuse the channels of other doors, so an attacker cannot make
// the stack's bot write to a chat of their choosing (echoing their text) or join a Telegram, web
// or adapter thread: 400 naming the field, no run, nothing at the Bot API.
func TestTriggerRefusesReservedChannels(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	n := time.Now().UnixNano() % 1e9
	for i, channel := range []string{"telegram", "Telegram", "web", "adapter.default", "webhook.stripe"} {
		chat := strconv.FormatInt(n+int64(i), 10)
		eventID := fmt.Sprintf("reserved-%d-%d", n, i)
		body := fmt.Sprintf(`{"channel":%q,"external_id":%q,"text":"spam from the stack's bot","event_id":%q}`, channel, chat, eventID)
		for door, r := range map[string]reply{
			"trigger": do(t, http.MethodPost, a.stack.URL+"/v1/integrations/trigger", map[string]string{
				"content-type": "application/json", "authorization": "Bearer " + inboundSecret}, body),
			"generic": postInbound(t, a.env, nil, body),
		} {
			if r.status != 400 || r.errorCode() != "invalid_request" || !strings.Contains(r.raw, "channel") {
				t.Errorf("%s door, channel %s: %d %s, want 400 naming the channel", door, channel, r.status, r.raw)
			}
		}
		for _, run := range []string{
			keyedIDs(a.env).Derive("run", "default", "trigger", "trigger", eventID),
			keyedIDs(a.env).Derive("run", "default", "generic", "", eventID),
		} {
			if _, err := a.store.GetRun(context.Background(), "default", run); apierr.CodeOf(err) != apierr.NotFound {
				t.Errorf("channel %s: run %s exists (%v)", channel, run, err)
			}
		}
	}
	// A real Telegram update afterwards reaches the Bot API: the barrier for the check below.
	real := n + 100
	if r := postTelegram(t, a.env, telegramToken, telegramUpdate(real, real, "real")); r.status != 202 {
		t.Fatalf("real update: %d %s", r.status, r.raw)
	}
	waitFor(t, "the real reply at the Bot API", 30*time.Second, func() bool {
		a.bot.mu.Lock()
		defer a.bot.mu.Unlock()
		for _, m := range a.bot.sent {
			if m["chat_id"] == float64(real) {
				return true
			}
		}
		return false
	})
	a.bot.mu.Lock()
	defer a.bot.mu.Unlock()
	for _, m := range a.bot.sent {
		if m["text"] == "spam from the stack's bot" {
			t.Fatalf("the Bot API was asked to send %v", m)
		}
	}
}

// A run id computed the old way (unkeyed, from an event id the attacker knows or chose) names no
// run: the ids are keyed with the stack's IdDerivationKey.
func TestAdapterCannotReadAGuessedRunID(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	n := time.Now().UnixNano()
	eventID, ext := fmt.Sprintf("zap-guess-%d", n), fmt.Sprintf("lead-%d", n)
	body := fmt.Sprintf(`{"channel":"zapier","external_id":%q,"text":"private","event_id":%q}`, ext, eventID)
	r := postTrigger(t, e, body, body, nil)
	if r.status != 202 {
		t.Fatalf("trigger: %d %s", r.status, r.raw)
	}
	waitRun(t, e, r.body["thread_id"].(string), r.body["run_id"].(string)) // it exists
	guessedThread := ids.Derive("thr", "default", "zapier", ext)
	for _, guessed := range []string{ids.Derive("run", "default", "trigger", eventID), ids.Derive("run", "default", "trigger", "trigger", eventID)} {
		g := do(t, http.MethodGet, e.stack.URL+"/webhook/default/threads/"+guessedThread+"/runs/"+guessed,
			map[string]string{"authorization": "Bearer " + adapterSecret}, "")
		if g.status != 404 || r.body["run_id"] == guessed {
			t.Fatalf("guessed run %s: %d %s (the real run is %s)", guessed, g.status, g.raw, r.body["run_id"])
		}
	}
}

// An adapter reads the runs it started, not those of another door (unless configured with
// readAllRuns, as the tests' default adapter is).
func TestAdapterCannotReadAnotherDoorsRun(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	n := time.Now().UnixNano()
	r := postInbound(t, a.env, nil, fmt.Sprintf(`{"channel":"email","external_id":"someone-%d@example.com","text":"private mail"}`, n))
	if r.status != 202 {
		t.Fatalf("inbound: %d %s", r.status, r.raw)
	}
	thread, run := r.body["thread_id"].(string), r.body["run_id"].(string)
	waitRun(t, a.env, thread, run) // readable with readAllRuns
	g := do(t, http.MethodGet, a.stack.URL+"/webhook/ops/threads/"+thread+"/runs/"+run, map[string]string{"authorization": "Bearer " + adapterSecret}, "")
	if g.status != 404 || strings.Contains(g.raw, "private mail") {
		t.Fatalf("the ops adapter read another door's run: %d %s", g.status, g.raw)
	}
}

// A binding report replayed byte for byte is acknowledged as a duplicate and changes nothing; a
// report older than the stored one (by its reported_at) is recorded but does not overwrite it.
func TestReplayedBindingReportChangesNothing(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	binding := fmt.Sprintf("T-%d", time.Now().UnixNano())
	now := time.Now().UTC()
	report := func(status string, at time.Time, detail string) string {
		return fmt.Sprintf(`{"channel":"slack","binding_id":%q,"status":%q,"detail":%q,"reported_at":%q}`, binding, status, detail, at.Format(time.RFC3339Nano))
	}
	post := func(body string) reply {
		return do(t, http.MethodPost, e.stack.URL+"/v1/inbound/binding/status", map[string]string{
			"content-type": "application/json", "x-hookgate-signature": "sha256=" + hmacHex(inboundSecret, body)}, body)
	}
	status := func() string {
		bs, err := e.store.ListBindings(context.Background(), "default")
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			if b.BindingID == binding {
				return b.Status
			}
		}
		return ""
	}
	connected := report("connected", now.Add(-2*time.Minute), "")
	for _, body := range []string{connected, report("disconnected", now.Add(-time.Minute), "")} {
		if r := post(body); r.status != 202 {
			t.Fatalf("report: %d %s", r.status, r.raw)
		}
	}
	waitFor(t, "both reports", 60*time.Second, func() bool { return len(eventsAbout(t, e, binding)["binding.status"]) == 2 })
	if s := status(); s != "disconnected" {
		t.Fatalf("status %q, want disconnected", s)
	}
	if r := post(connected); r.status != 200 || r.body["accepted"] != false {
		t.Fatalf("replayed report: %d %s, want 200 {\"accepted\":false}", r.status, r.raw)
	}
	if r := post(report("connected", now.Add(-3*time.Minute), "late")); r.status != 202 {
		t.Fatalf("older report: %d %s", r.status, r.raw)
	}
	waitFor(t, "the older report", 60*time.Second, func() bool { return len(eventsAbout(t, e, binding)["binding.status"]) == 3 })
	if s := status(); s != "disconnected" {
		t.Fatalf("status %q after a replayed and an older report, want disconnected", s)
	}
	// A report from long ago (here so far back that its nanoseconds would wrap and order it after
	// every real one) is refused, and changes nothing.
	for _, at := range []time.Time{time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), now.Add(-100 * time.Hour)} {
		if r := post(report("connected", at, "ancient")); r.status != 400 || !strings.Contains(r.raw, "reported_at") {
			t.Fatalf("report of %s: %d %s, want 400 naming reported_at", at, r.status, r.raw)
		}
	}
	time.Sleep(2 * time.Second)
	if s, n := status(), len(eventsAbout(t, e, binding)["binding.status"]); s != "disconnected" || n != 3 {
		t.Fatalf("after the ancient reports: status %q, %d events", s, n)
	}
}

// A signed body delivered again with unsigned URL parameters changed (?event_type=,
// ?dedupe_key=, ?source_identifier=) is the same delivery: acknowledged, no second event.
func TestWebhookRelabelIsADuplicate(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	n := time.Now().UnixNano() % 1e9
	ws := fmt.Sprintf("trust-relabel-%d", n)
	createSource(t, e, ws, "hm", "hmac_sha256", secretFor("hmac_sha256"))
	createNoneSource(t, e, ws, "saas")
	body := fmt.Sprintf(`{"type":"invoice.paid","id":"evt_%d","amount":100}`, n)
	sig := signers["hmac_sha256"](secretFor("hmac_sha256"), "", time.Now(), body)
	if r := postWebhook(t, e, ws, "source=hm", withHeader(sig, "x-request-id", "req-1"), body); r.status != 202 || r.body["role"] != "webhook.hm.invoice_paid" {
		t.Fatalf("signed delivery: %d %s", r.status, r.raw)
	}
	waitFor(t, "the event", 20*time.Second, func() bool { return countType(logOf(t, e, ws), "webhook.hm.invoice_paid") == 1 })
	for _, query := range []string{
		"source=hm&event_type=refund.created",
		"source=hm&event_type=refund.created&dedupe_key=other-key",
		"source=hm&source_identifier=someone-else&dedupe_key=third-key",
	} {
		r := postWebhook(t, e, ws, query, withHeader(sig, "x-request-id", "req-2"), body)
		if r.status != 200 || r.body["accepted"] != false {
			t.Fatalf("relabelled copy %s: %d %s, want 200 {\"accepted\":false}", query, r.status, r.raw)
		}
	}
	settled(t, e, ws, "saas")
	evs := logOf(t, e, ws)
	if len(evs) != 2 || countType(evs, "webhook.hm.invoice_paid") != 1 || countType(evs, "webhook.saas.barrier") != 1 {
		t.Fatalf("log: %d events %+v, want the delivery once and the barrier", len(evs), evs)
	}
}

func withHeader(h map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for hk, hv := range h {
		out[hk] = hv
	}
	return out
}

// createNoneSource stores a source of the scheme none (no secret): what a SaaS that cannot sign uses.
func createNoneSource(t *testing.T, e *env, ws, name string) {
	t.Helper()
	if _, err := e.store.CreateSource(context.Background(), store.Source{WorkspaceID: ws, Name: name, Scheme: "none"}); err != nil {
		t.Fatal(err)
	}
}
