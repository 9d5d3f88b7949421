package e2e_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/store"
)

const telegramToken = "tg-secret-token_0123456789"

// The test's own signers, independent of shared/verify: each returns the headers a provider sends.
type signer func(secret, id string, ts time.Time, body string) map[string]string

func mac(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

var signers = map[string]signer{
	"stripe": func(secret, _ string, ts time.Time, body string) map[string]string {
		t := strconv.FormatInt(ts.Unix(), 10)
		return map[string]string{"stripe-signature": fmt.Sprintf("t=%s,v1=%x", t, mac([]byte(secret), t, ".", body))}
	},
	"github": func(secret, id string, _ time.Time, body string) map[string]string {
		return map[string]string{"x-hub-signature-256": fmt.Sprintf("sha256=%x", mac([]byte(secret), body)), "x-github-delivery": id, "x-github-event": "issues"}
	},
	"slack": func(secret, _ string, ts time.Time, body string) map[string]string {
		t := strconv.FormatInt(ts.Unix(), 10)
		return map[string]string{"x-slack-signature": fmt.Sprintf("v0=%x", mac([]byte(secret), "v0:", t, ":", body)), "x-slack-request-timestamp": t}
	},
	"standard_webhooks": func(secret, id string, ts time.Time, body string) map[string]string {
		key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		t := strconv.FormatInt(ts.Unix(), 10)
		return map[string]string{"webhook-id": id, "webhook-timestamp": t,
			"webhook-signature": "v1," + base64.StdEncoding.EncodeToString(mac(key, id, ".", t, ".", body))}
	},
	"hmac_sha256": func(secret, _ string, _ time.Time, body string) map[string]string {
		return map[string]string{"x-hookgate-signature": fmt.Sprintf("sha256=%x", mac([]byte(secret), body))}
	},
	"shared_secret": func(secret, _ string, _ time.Time, _ string) map[string]string {
		return map[string]string{"x-hookgate-inbound-secret": secret}
	},
	"bearer": func(secret, _ string, _ time.Time, _ string) map[string]string {
		return map[string]string{"authorization": "Bearer " + secret}
	},
}

// timestamped: the schemes that sign a time and refuse a stale one.
var timestamped = map[string]bool{"stripe": true, "slack": true, "standard_webhooks": true}

func secretFor(scheme string) string {
	if scheme == "standard_webhooks" {
		return "whsec_" + base64.StdEncoding.EncodeToString([]byte("a-standard-webhooks-key-"+scheme))
	}
	return "secret-for-" + scheme + "-0123456789"
}

func createSource(t *testing.T, e *env, ws, name, scheme, secret string) {
	t.Helper()
	src := store.Source{WorkspaceID: ws, Name: name, Scheme: scheme, Secrets: []store.SigningSecret{{Value: secret}}}
	if _, err := e.store.CreateSource(context.Background(), src); err != nil {
		t.Fatal(err)
	}
}

func postWebhook(t *testing.T, e *env, ws, query string, headers map[string]string, body string) reply {
	t.Helper()
	h := map[string]string{"content-type": "application/json"}
	for k, v := range headers {
		h[k] = v
	}
	return do(t, http.MethodPost, e.stack.URL+"/v1/webhooks/generic/"+ws+"?"+query, h, body)
}

// logOf returns the workspace's event log.
func logOf(t *testing.T, e *env, ws string) []store.Event {
	t.Helper()
	var out []store.Event
	var after int64
	for {
		page, err := e.store.ListEvents(context.Background(), ws, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Cursor
	}
}

func countType(evs []store.Event, typ string) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// Every scheme through the local HTTP API: a correctly signed delivery is accepted and recorded
// once; a tampered body, a wrong secret, a stale timestamp and a replayed delivery are not.
func TestEveryScheme(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	for scheme, sign := range signers {
		t.Run(scheme, func(t *testing.T) {
			ws := "doors-" + strings.ReplaceAll(scheme, "_", "-")
			createSource(t, e, ws, scheme, scheme, secretFor(scheme))
			id := "dlv-" + scheme
			body := fmt.Sprintf(`{"id":"evt_%s","type":"invoice.paid","data":{"n":1}}`, scheme)
			query := "source=" + scheme + "&dedupe_key=" + id // one delivery id for every scheme
			now := time.Now()

			if signsBody := scheme != "shared_secret" && scheme != "bearer"; signsBody {
				if r := postWebhook(t, e, ws, query, sign(secretFor(scheme), id, now, body+" "), body); r.status != 401 || r.errorCode() != "unauthorized" {
					t.Fatalf("tampered body: %d %s", r.status, r.raw)
				}
			}
			if r := postWebhook(t, e, ws, query, sign("wrong-"+secretFor(scheme), id, now, body), body); r.status != 401 {
				t.Fatalf("wrong secret: %d %s", r.status, r.raw)
			}
			if timestamped[scheme] {
				if r := postWebhook(t, e, ws, query, sign(secretFor(scheme), id, now.Add(-10*time.Minute), body), body); r.status != 401 || !strings.Contains(r.raw, "invalid signature") {
					t.Fatalf("stale timestamp: %d %s", r.status, r.raw)
				}
			}
			r := postWebhook(t, e, ws, query, sign(secretFor(scheme), id, now, body), body)
			if r.status != 202 || r.body["accepted"] != true || r.body["role"] != "webhook."+scheme+".invoice_paid" {
				t.Fatalf("signed delivery: %d %s", r.status, r.raw)
			}
			if r := postWebhook(t, e, ws, query, sign(secretFor(scheme), id, now, body), body); r.status != 200 || r.body["accepted"] != false {
				t.Fatalf("replayed delivery: %d %s", r.status, r.raw)
			}
			typ := "webhook." + scheme + ".invoice_paid"
			waitFor(t, "the webhook event", 20*time.Second, func() bool { return countType(logOf(t, e, ws), typ) > 0 })
			time.Sleep(time.Second)
			evs := logOf(t, e, ws)
			if len(evs) != 1 || evs[0].Type != typ || !strings.Contains(string(evs[0].Data), `"payload":`+body) {
				t.Fatalf("log of %s = %d events, first %+v", ws, len(evs), evs)
			}
		})
	}
}

// Slack's url_verification handshake is answered with its challenge once signed, and records nothing.
func TestSlackURLVerification(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	const ws = "doors-slack-handshake"
	createSource(t, e, ws, "slack", "slack", secretFor("slack"))
	body := `{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`
	if r := postWebhook(t, e, ws, "source=slack", signers["slack"]("wrong-secret-0123456789", "", time.Now(), body), body); r.status != 401 {
		t.Fatalf("unsigned handshake: %d %s", r.status, r.raw)
	}
	r := postWebhook(t, e, ws, "source=slack", signers["slack"](secretFor("slack"), "", time.Now(), body), body)
	if r.status != 200 || r.body["challenge"] != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Fatalf("handshake: %d %s", r.status, r.raw)
	}
	time.Sleep(time.Second)
	if evs := logOf(t, e, ws); len(evs) != 0 {
		t.Fatalf("the handshake recorded %d events", len(evs))
	}
}

// 50 concurrent copies of one delivery: exactly one event and one run.
func TestConcurrentCopiesGiveOneEventAndOneRun(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	const ws = "doors-concurrent"
	createSource(t, e, ws, "stripe", "stripe", secretFor("stripe"))
	if err := e.store.PutRoleRoutes(context.Background(), ws, []store.RoleRoute{{Pattern: "webhook.stripe.*", Agent: "echo"}}); err != nil {
		t.Fatal(err)
	}
	body := `{"id":"evt_concurrent","object":"event","type":"payment_intent.succeeded"}`
	headers := signers["stripe"](secretFor("stripe"), "", time.Now(), body)
	var mu sync.Mutex
	statuses := map[int]int{}
	runIDs := map[string]bool{}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			r := postWebhook(t, e, ws, "source=stripe", headers, body)
			mu.Lock()
			defer mu.Unlock()
			statuses[r.status]++
			if id, ok := r.body["run_id"].(string); ok {
				runIDs[id] = true
			}
		})
	}
	wg.Wait()
	if statuses[202] != 1 || statuses[200] != 49 || len(runIDs) != 1 {
		t.Fatalf("statuses %v, run ids %v; want one 202, 49 200 and one run id", statuses, runIDs)
	}
	waitFor(t, "the run to complete", 30*time.Second, func() bool { return countType(logOf(t, e, ws), "run.completed") > 0 })
	time.Sleep(2 * time.Second) // room for a duplicate, were there one
	evs := logOf(t, e, ws)
	if n := countType(evs, "webhook.stripe.payment_intent_succeeded"); n != 1 {
		t.Fatalf("%d webhook events, want 1", n)
	}
	if countType(evs, "run.created") != 1 || countType(evs, "run.completed") != 1 {
		t.Fatalf("log %v: want one run", evs)
	}
	for id := range runIDs {
		run, err := e.store.GetRun(context.Background(), ws, id)
		if err != nil || run.Status != store.RunCompleted || run.ThreadID != keyedIDs(e).Thread(ws, "webhook.stripe", "evt_concurrent") {
			t.Fatalf("run = %+v, %v", run, err)
		}
	}
}

func postTelegram(t *testing.T, e *env, token, body string) reply {
	t.Helper()
	return do(t, http.MethodPost, e.stack.URL+"/v1/inbound/telegram", map[string]string{
		"content-type": "application/json", "x-telegram-bot-api-secret-token": token}, body)
}

// A Telegram text message starts a run on the chat's thread; other updates are events; update_id
// dedupes; a wrong token is refused.
func TestTelegram(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	chat := time.Now().UnixNano() % 1e9
	upd := chat // unique per run of the test
	text := fmt.Sprintf(`{"update_id":%d,"message":{"message_id":1,"date":1700000000,"chat":{"id":%d,"type":"private"},"from":{"id":42,"is_bot":false,"first_name":"Ada","username":"ada"},"text":"hello bot"}}`, upd, chat)
	if r := postTelegram(t, e, "wrong-token", text); r.status != 401 {
		t.Fatalf("wrong token: %d %s", r.status, r.raw)
	}
	r := postTelegram(t, e, telegramToken, text)
	thread := keyedIDs(e).Thread("default", "telegram", strconv.FormatInt(chat, 10))
	if r.status != 202 || r.body["thread_id"] != thread {
		t.Fatalf("text message: %d %s", r.status, r.raw)
	}
	run := waitRun(t, e, thread, r.body["run_id"].(string))
	if res, _ := run["result"].(map[string]any); res["text"] != "hello bot" {
		t.Fatalf("run = %v", run)
	}
	if r := postTelegram(t, e, telegramToken, text); r.status != 200 || r.body["accepted"] != false {
		t.Fatalf("repeated update_id: %d %s", r.status, r.raw)
	}
	edited := fmt.Sprintf(`{"update_id":%d,"edited_message":{"message_id":1,"date":1700000001,"chat":{"id":%d,"type":"private"},"text":"hello again"}}`, upd+1, chat)
	if r := postTelegram(t, e, telegramToken, edited); r.status != 202 || r.body["role"] != "telegram.edited_message" {
		t.Fatalf("edited message: %d %s", r.status, r.raw)
	}
	waitFor(t, "the edited_message event", 20*time.Second, func() bool {
		return len(eventsAbout(t, e, "hello again")["telegram.edited_message"]) == 1
	})
	for _, bad := range []string{`[]`, `{"message":{}}`, `{"update_id":7}`, `not json`} {
		if r := postTelegram(t, e, telegramToken, bad); r.status != 400 {
			t.Fatalf("%s: %d %s", bad, r.status, r.raw)
		}
	}
}

// Rotation: the old and the new secret both verify until the old one is retired.
func TestRotationAcceptsBothUntilRetired(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	const ws = "doors-rotation"
	old, next := secretFor("github"), "the-new-github-secret-0123"
	createSource(t, e, ws, "github", "github", old)
	n := 0
	post := func(secret string) int {
		n++
		body := fmt.Sprintf(`{"action":"opened","n":%d}`, n)
		return postWebhook(t, e, ws, "source=github", signers["github"](secret, fmt.Sprintf("d-%d", n), time.Now(), body), body).status
	}
	if s := post(old); s != 202 {
		t.Fatalf("before rotation: %d", s)
	}
	if _, err := e.store.RotateSourceSecret(context.Background(), ws, "github", next, time.Hour); err != nil {
		t.Fatal(err)
	}
	if a, b := post(old), post(next); a != 202 || b != 202 {
		t.Fatalf("during the overlap: old %d, new %d", a, b)
	}
	if _, err := e.store.RetireSourceSecrets(context.Background(), ws, "github"); err != nil {
		t.Fatal(err)
	}
	if a, b := post(old), post(next); a != 401 || b != 202 {
		t.Fatalf("after retirement: old %d, new %d", a, b)
	}
}

// Zapier/Make: the stack's inbound secret as an HMAC signature or a Bearer token (never a plain
// header); a workspace's own trigger source by its scheme and no other.
func TestIntegrationsTrigger(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	body := `{"channel":"zapier","external_id":"zap-1","text":"from a zap"}`
	url := e.stack.URL + "/v1/integrations/trigger"
	post := func(url string, h map[string]string) reply {
		h["content-type"] = "application/json"
		return do(t, http.MethodPost, url, h, body)
	}
	if r := post(url, map[string]string{"x-hookgate-signature": "sha256=" + hmacHex(inboundSecret, body)}); r.status != 202 || r.body["run_id"] == nil {
		t.Fatalf("hmac: %d %s", r.status, r.raw)
	}
	if r := post(url, map[string]string{"authorization": "Bearer " + inboundSecret}); r.status != 202 || r.body["run_id"] == nil {
		t.Fatalf("bearer: %d %s", r.status, r.raw)
	}
	for name, h := range map[string]map[string]string{
		"wrong hmac":          {"x-hookgate-signature": "sha256=" + hmacHex("wrong", body)},
		"wrong bearer":        {"authorization": "Bearer " + inboundSecret + "x"},
		"plain, right secret": {"x-hookgate-inbound-secret": inboundSecret},
		"nothing":             {},
	} {
		if r := post(url, h); r.status != 401 {
			t.Fatalf("%s: %d %s", name, r.status, r.raw)
		}
	}
	// A workspace whose trigger source is bearer takes Bearer (Zapier's "Webhooks by Zapier").
	const ws = "doors-trigger-bearer"
	createSource(t, e, ws, "trigger", "bearer", secretFor("bearer"))
	if r := post(url+"?workspace_id="+ws, map[string]string{"authorization": "Bearer " + secretFor("bearer")}); r.status != 202 || r.body["run_id"] == nil {
		t.Fatalf("bearer source: %d %s", r.status, r.raw)
	}
	if r := post(url+"?workspace_id="+ws, map[string]string{"x-hookgate-signature": "sha256=" + hmacHex(secretFor("bearer"), body)}); r.status != 401 {
		t.Fatalf("hmac on a bearer source: %d %s", r.status, r.raw)
	}
}

// postTrigger posts body to the trigger door with the stack secret's signature of signed.
func postTrigger(t *testing.T, e *env, signed, body string, headers map[string]string) reply {
	t.Helper()
	h := map[string]string{"content-type": "application/json", "x-hookgate-signature": "sha256=" + hmacHex(inboundSecret, signed)}
	for k, v := range headers {
		h[k] = v
	}
	return do(t, http.MethodPost, e.stack.URL+"/v1/integrations/trigger", h, body)
}

// A body changed after signing (here: a valid signature of another body) is refused, and nothing
// of it is queued or stored; the body it was signed for goes through.
func TestTriggerTamperedBodyIsRefused(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	n := time.Now().UnixNano()
	eventID, ext, forged := fmt.Sprintf("zap-tamper-%d", n), fmt.Sprintf("lead-%d", n), fmt.Sprintf("forged-%d", n)
	signed := fmt.Sprintf(`{"channel":"zapier","external_id":%q,"text":"original","event_id":%q}`, ext, eventID)
	tampered := fmt.Sprintf(`{"channel":"zapier","external_id":%q,"text":"tampered","event_id":%q}`, forged, eventID)
	if r := postTrigger(t, e, signed, tampered, nil); r.status != 401 || r.errorCode() != "unauthorized" {
		t.Fatalf("tampered body: %d %s", r.status, r.raw)
	}
	runID := keyedIDs(e).Derive("run", "default", "trigger", "trigger", eventID)
	time.Sleep(2 * time.Second) // room for the worker, were anything queued
	if _, err := e.store.GetRun(context.Background(), "default", runID); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("the tampered request stored run %s: %v", runID, err)
	}
	if evs := eventsAbout(t, e, forged); len(evs) != 0 {
		t.Fatalf("the tampered request recorded %v", evs)
	}
	// The body as signed is accepted, with the run id checked above.
	r := postTrigger(t, e, signed, signed, nil)
	if r.status != 202 || r.body["run_id"] != runID {
		t.Fatalf("signed body: %d %s, want run %s", r.status, r.raw, runID)
	}
	waitRun(t, e, r.body["thread_id"].(string), runID)
	if evs := eventsAbout(t, e, forged); len(evs) != 0 {
		t.Fatalf("the tampered body shows up: %v", evs)
	}
}

// A signed request replayed as it is, or with another Idempotency-Key (which no signature
// covers), gets the same ids from the body's event_id and makes exactly one run.
func TestTriggerReplayGivesOneRun(t *testing.T) {
	inLane(t, laneOnce)
	e := onceStack(t)
	n := time.Now().UnixNano()
	eventID := fmt.Sprintf("zap-replay-%d", n)
	body := fmt.Sprintf(`{"channel":"zapier","external_id":"lead-%d","text":"once only","event_id":%q}`, n, eventID)
	first := postTrigger(t, e, body, body, map[string]string{"idempotency-key": "key-1"})
	if first.status != 202 || first.body["run_id"] != keyedIDs(e).Derive("run", "default", "trigger", "trigger", eventID) {
		t.Fatalf("first: %d %s", first.status, first.raw)
	}
	runID, threadID := first.body["run_id"].(string), first.body["thread_id"].(string)
	waitRun(t, e, threadID, runID)
	for _, headers := range []map[string]string{{"idempotency-key": "key-1"}, {"idempotency-key": "a-replayers-key"}, nil} {
		r := postTrigger(t, e, body, body, headers)
		if r.status != 202 || r.body["run_id"] != runID || r.body["thread_id"] != threadID || r.body["message_id"] != first.body["message_id"] {
			t.Fatalf("replay with %v: %d %s, want the first ids %s", headers, r.status, r.raw, first.raw)
		}
	}
	time.Sleep(2 * time.Second) // give a (wrong) second run time to appear
	byType := eventsAbout(t, e, runID)
	if len(byType["run.created"]) != 1 || len(byType["run.completed"]) != 1 {
		t.Fatalf("replays made more runs: %d created, %d completed", len(byType["run.created"]), len(byType["run.completed"]))
	}
	if msgs := eventsAbout(t, e, first.body["message_id"].(string))["message.received"]; len(msgs) != 1 {
		t.Fatalf("%d message.received events, want 1", len(msgs))
	}
	if run := waitRun(t, e, threadID, runID); run["attempts"] != float64(1) {
		t.Fatalf("the agent ran %v times", run["attempts"])
	}
}

// A binding report changed after signing is refused: no binding is stored, nothing recorded.
func TestBindingTamperedBodyIsRefused(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	n := time.Now().UnixNano()
	real, forged := fmt.Sprintf("b-real-%d", n), fmt.Sprintf("b-forged-%d", n)
	signed := `{"channel":"slack","binding_id":"` + real + `","status":"connected"}`
	tampered := `{"channel":"slack","binding_id":"` + forged + `","status":"disconnected","detail":"hijacked"}`
	url := e.stack.URL + "/v1/inbound/binding/status"
	if r := do(t, http.MethodPost, url, map[string]string{"x-hookgate-signature": "sha256=" + hmacHex(inboundSecret, signed)}, tampered); r.status != 401 || r.errorCode() != "unauthorized" {
		t.Fatalf("tampered body: %d %s", r.status, r.raw)
	}
	if r := do(t, http.MethodPost, url, map[string]string{"x-hookgate-signature": "sha256=" + hmacHex(inboundSecret, signed)}, signed); r.status != 202 {
		t.Fatalf("signed body: %d %s", r.status, r.raw)
	}
	waitFor(t, "the signed report", 20*time.Second, func() bool { return len(eventsAbout(t, e, real)["binding.status"]) == 1 })
	time.Sleep(time.Second)
	bs, err := e.store.ListBindings(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.BindingID == forged {
			t.Fatalf("the tampered report was stored: %+v", b)
		}
	}
	if evs := eventsAbout(t, e, forged); len(evs) != 0 {
		t.Fatalf("the tampered report was recorded: %v", evs)
	}
}

// A connector's binding report is stored (newest wins) and recorded as binding.status.
func TestBindingStatus(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	id := fmt.Sprintf("b-%d", time.Now().UnixNano())
	url := e.stack.URL + "/v1/inbound/binding/status"
	body := `{"channel":"slack","binding_id":"` + id + `","status":"connected","detail":"ok"}`
	if r := do(t, http.MethodPost, url, map[string]string{"x-hookgate-signature": "sha256=" + hmacHex(inboundSecret, body)}, body); r.status != 202 {
		t.Fatalf("report: %d %s", r.status, r.raw)
	}
	waitFor(t, "binding.status", 20*time.Second, func() bool { return len(eventsAbout(t, e, id)["binding.status"]) == 1 })
	l, err := e.store.ListBindings(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, b := range l {
		found = found || (b.BindingID == id && b.Status == "connected" && b.Detail == "ok")
	}
	if !found {
		t.Fatalf("binding %s not stored: %+v", id, l)
	}
	for _, bad := range []string{`{"channel":"slack","status":"x"}`, `[]`, `{`} {
		if r := do(t, http.MethodPost, url, map[string]string{"x-hookgate-signature": "sha256=" + hmacHex(inboundSecret, bad)}, bad); r.status != 400 {
			t.Fatalf("%s: %d %s", bad, r.status, r.raw)
		}
	}
	if r := do(t, http.MethodPost, url, map[string]string{"x-hookgate-inbound-secret": "wrong-secret-0123456789"}, body); r.status != 401 {
		t.Fatalf("wrong secret: %d %s", r.status, r.raw)
	}
}

// Bad input to the generic webhook door: the right 4xx with a JSON error, and nothing recorded.
func TestWebhookBadInput(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	const ws = "doors-bad"
	createSource(t, e, ws, "hooks", "hmac_sha256", secretFor("hmac_sha256"))
	signed := func(body string) map[string]string {
		return signers["hmac_sha256"](secretFor("hmac_sha256"), "", time.Now(), body)
	}
	big := `{"pad":"` + strings.Repeat("x", 400_000) + `"}`
	for _, c := range []struct {
		name, ws, query, body string
		headers               map[string]string
		status                int
	}{
		{"invalid JSON", ws, "source=hooks", `{"a":`, signed(`{"a":`), 400},
		{"not an object", ws, "source=hooks", `[1,2]`, signed(`[1,2]`), 400},
		{"oversized", ws, "source=hooks", big, signed(big), 413},
		// Unknown or malformed workspaces and sources look like a bad signature (nothing tells
		// which exist).
		{"unknown source", ws, "source=nope", `{}`, signed(`{}`), 401},
		{"unknown workspace", "nobody-here", "source=hooks", `{}`, signed(`{}`), 401},
		{"bad source name", ws, "source=Bad!", `{}`, signed(`{}`), 401},
		{"wrong signature", ws, "source=hooks", `{}`, map[string]string{"x-hookgate-signature": "sha256=00"}, 401},
		{"no signature", ws, "source=hooks", `{}`, nil, 401},
	} {
		r := postWebhook(t, e, c.ws, c.query, c.headers, c.body)
		if r.status != c.status || r.errorCode() == "" {
			t.Errorf("%s: %d %s, want %d with a JSON error", c.name, r.status, r.raw, c.status)
		}
	}
	time.Sleep(2 * time.Second)
	if evs := logOf(t, e, ws); len(evs) != 0 {
		t.Fatalf("refused requests recorded %d events", len(evs))
	}
}
