package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/store"
)

// byteCase is a text a sender may send, as it appears inside a JSON string, and what it must
// become: kept (the decoded string, stored as sent), or a 400 naming the field.
type byteCase struct {
	name    string
	literal string // the JSON string's content, escapes and raw bytes as sent
	want    string // the decoded text when kept
	refused bool   // 400 naming the field (invalid UTF-8, an unpaired surrogate)
}

var textCases = []byteCase{
	{"U+FFFF and U+FFFE", `a\uffff b ` + "\uffff\ufffe", "a\uffff b \uffff\ufffe", false},
	{"C0 controls", `a\u0001\u001b\u001fb`, "a\x01\x1b\x1fb", false},
	{"lone surrogate", `a\ud800b`, "", true},
	{"invalid UTF-8", "a\xff\xfeb", "", true},
}

// dataBad is a data object holding invalid UTF-8: the SDK would rewrite its bytes on the wire.
const dataBad = "{\"note\":\"bad \xff byte\"}"

// checkRefused asserts a 400 whose message names the field, never a 5xx.
func checkRefused(t *testing.T, what string, r reply, field string) {
	t.Helper()
	e, _ := r.body["error"].(map[string]any)
	msg, _ := e["message"].(string)
	if r.status != 400 || !strings.HasPrefix(msg, field+" ") {
		t.Errorf("%s: %d %s, want 400 naming %s", what, r.status, r.raw, field)
	}
}

// messageOn waits until the message id (any inbound message when id is "") is stored on the
// thread and returns it.
func messageOn(t *testing.T, e *env, ws, thread, id string) store.Message {
	t.Helper()
	var got store.Message
	waitFor(t, "message "+id+" stored", 30*time.Second, func() bool {
		msgs, err := e.store.ListMessages(context.Background(), ws, thread, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.ID == id || id == "" && m.Direction == "in" {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

// sameJSON reports whether a and b decode to the same value.
func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && fmt.Sprint(x) == fmt.Sprint(y)
}

// The generic door and the Zapier/Make trigger: every valid character is queued and stored as
// sent, text and data alike; invalid UTF-8 and unpaired surrogates are a 400 naming the field.
func TestGenericAndTriggerDoorsKeepEveryCharacterOrNameTheField(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	doors := map[string]func(body string) reply{
		"generic": func(body string) reply { return postInbound(t, e, nil, body) },
		"trigger": func(body string) reply { return postTrigger(t, e, body, body, nil) },
	}
	for door, post := range doors {
		for i, c := range textCases {
			ext := fmt.Sprintf("bytes-%s-%d-%d", door, i, time.Now().UnixNano())
			data := `{"note":"` + c.literal + `"}`
			r := post(`{"channel":"bytes","external_id":"` + ext + `","text":"` + c.literal + `","data":` + data + `}`)
			what := door + " " + c.name
			if c.refused {
				checkRefused(t, what, r, "text")
				continue
			}
			if r.status != 202 {
				t.Errorf("%s: %d %s", what, r.status, r.raw)
				continue
			}
			m := messageOn(t, e, "default", str(r.body, "thread_id"), str(r.body, "message_id"))
			if m.Text != c.want || !sameJSON(m.Data, []byte(`{"note":"`+c.literal+`"}`)) {
				t.Errorf("%s: stored %q / %s", what, m.Text, m.Data)
			}
		}
		ext := fmt.Sprintf("bytes-%s-data-%d", door, time.Now().UnixNano())
		checkRefused(t, door+" invalid UTF-8 in data", post(`{"channel":"bytes","external_id":"`+ext+`","text":"hi","data":`+dataBad+`}`), "data.note")
		if n := len(eventsAbout(t, e, ext)); n != 0 {
			t.Errorf("%s: a refused message recorded %d event types", door, n)
		}
	}
}

// The SaaS webhook door stores the payload byte for byte: every valid UTF-8 payload (unpaired
// surrogate escapes are plain ASCII there) is kept exactly; invalid UTF-8 is a 400 naming it.
func TestWebhookDoorKeepsEveryValidPayloadByteForByte(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	ws := uniqueWS("bytes")
	createSource(t, e, ws, "generic", "shared_secret", secretFor("shared_secret"))
	auth := signers["shared_secret"](secretFor("shared_secret"), "", time.Now(), "")
	for i, c := range textCases {
		body := fmt.Sprintf(`{"type":"bytes","id":"p-%d","text":"%s"}`, i, c.literal)
		r := postWebhook(t, e, ws, "source=generic", auth, body)
		if c.refused && c.name == "invalid UTF-8" {
			checkRefused(t, c.name, r, "text")
			continue
		}
		if r.status != 202 {
			t.Errorf("%s: %d %s", c.name, r.status, r.raw)
			continue
		}
		var stored []byte
		waitFor(t, "the webhook event", 30*time.Second, func() bool {
			for _, ev := range logOf(t, e, ws) {
				var d struct {
					SourceIdentifier string          `json:"source_identifier"`
					Payload          json.RawMessage `json:"payload"`
				}
				if ev.Type == "webhook.generic.bytes" && json.Unmarshal(ev.Data, &d) == nil && d.SourceIdentifier == fmt.Sprintf("p-%d", i) {
					stored = d.Payload
					return true
				}
			}
			return false
		})
		if !bytes.Equal(stored, []byte(body)) {
			t.Errorf("%s: stored %q, sent %q", c.name, stored, body)
		}
	}
	checkRefused(t, "invalid UTF-8 in data", postWebhook(t, e, ws, "source=generic", auth, `{"type":"bytes","data":`+dataBad+`}`), "data.note")
}

// A subscriber gets every character of an event from a delivery whose message carried it (the
// fan-out writes no item for a small one; its first attempt's claim does): U+FFFE and U+FFFF, which
// SQS refuses in a body and local mode's guard refuses as SQS does, are escaped in the message and
// come back as sent. The body signed and sent is the payload the delivery's item holds, byte for
// byte, and the stored webhook's text is in it unchanged.
func TestSubscriberGetsEveryCharacterOfACarriedDelivery(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	ws := uniqueWS("carried")
	createSource(t, e, ws, "generic", "shared_secret", secretFor("shared_secret"))
	got := make(chan []byte, 10)
	var secret atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if s, _ := secret.Load().(string); !verifySHA256(s, r.Header.Get("X-Webhook-Signature"), b) {
			t.Errorf("a delivery whose signature does not verify: %q", b)
		}
		got <- b
	}))
	defer srv.Close()
	sub := do(t, http.MethodPost, e.stack.URL+"/v1/webhooks", wsKey(t, e, ws), fmt.Sprintf(`{"url":%q,"events":["webhook.generic.*"]}`, srv.URL+"/hook"))
	if sub.status != 201 {
		t.Fatalf("subscribe: %d %s", sub.status, sub.raw)
	}
	secret.Store(sub.body["secret"].(string))
	// As sent: JSON escapes and raw characters; decoded: the same characters.
	text := `a\uffff b \ufffe ` + "\uffff\ufffe" + ` \u0001 \" <&> \u2028 é`
	want := "a\uffff b \ufffe \uffff\ufffe \x01 \" <&> \u2028 é"
	auth := signers["shared_secret"](secretFor("shared_secret"), "", time.Now(), "")
	if r := postWebhook(t, e, ws, "source=generic", auth, `{"type":"bytes","id":"carried-1","text":"`+text+`"}`); r.status != 202 {
		t.Fatalf("post: %d %s", r.status, r.raw)
	}
	var body []byte
	select {
	case body = <-got:
	case <-time.After(time.Minute):
		t.Fatal("no delivery")
	}
	var env struct {
		ID   string `json:"id"`
		Data struct {
			Payload struct {
				Text string `json:"text"`
			} `json:"payload"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Data.Payload.Text != want {
		t.Fatalf("received %q (%v), want the text %q", body, err, want)
	}
	id := store.DeliveryID(ws, env.ID, sub.body["id"].(string))
	var d store.Delivery
	waitFor(t, "the delivery recorded", 30*time.Second, func() bool {
		var err error
		d, err = e.store.GetDelivery(context.Background(), ws, id)
		return err == nil && d.Status == store.DeliverySucceeded
	})
	if !bytes.Equal(d.Payload, body) {
		t.Fatalf("sent %q, the delivery holds %q", body, d.Payload)
	}
}

// The Telegram door: a text with any valid character reaches the chat's thread as sent; an
// update holding invalid UTF-8 or an unpaired surrogate is a 400 naming the field.
func TestTelegramDoorKeepsEveryCharacterOrNamesTheField(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	for i, c := range textCases {
		chat := time.Now().UnixNano()%1e9 + int64(i)
		r := postTelegram(t, e, telegramToken, fmt.Sprintf(`{"update_id":%d,"message":{"message_id":1,"date":1700000000,"chat":{"id":%d,"type":"private"},"text":"%s"}}`, chat, chat, c.literal))
		if c.refused {
			checkRefused(t, c.name, r, "message.text")
			continue
		}
		if r.status != 202 {
			t.Errorf("%s: %d %s", c.name, r.status, r.raw)
			continue
		}
		thread := keyedIDs(e).Thread("default", "telegram", strconv.FormatInt(chat, 10))
		m := messageOn(t, e, "default", thread, "")
		if m.Text != c.want {
			t.Errorf("%s: stored %q", c.name, m.Text)
		}
	}
	chat := time.Now().UnixNano() % 1e9
	r := postTelegram(t, e, telegramToken, fmt.Sprintf(`{"update_id":%d,"message":{"message_id":1,"date":1700000000,"chat":{"id":%d,"type":"private"},"from":{"id":1,"first_name":"bad `+"\xff"+`"},"text":"hi"}}`, chat, chat))
	checkRefused(t, "invalid UTF-8 in the update", r, "message.from.first_name")
}

// The binding door: a detail with any valid character is stored as sent; invalid UTF-8 and an
// unpaired surrogate are a 400 naming the field.
func TestBindingDoorKeepsEveryCharacterOrNamesTheField(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	url := e.stack.URL + "/v1/inbound/binding/status"
	for i, c := range textCases {
		id := fmt.Sprintf("bytes-%d-%d", i, time.Now().UnixNano())
		body := `{"channel":"slack","binding_id":"` + id + `","status":"connected","detail":"` + c.literal + `"}`
		r := do(t, http.MethodPost, url, map[string]string{"x-hookgate-signature": "sha256=" + hmacHex(inboundSecret, body)}, body)
		if c.refused {
			checkRefused(t, c.name, r, "detail")
			continue
		}
		if r.status != 202 {
			t.Errorf("%s: %d %s", c.name, r.status, r.raw)
			continue
		}
		var got *store.BindingStatus
		waitFor(t, "binding "+id, 30*time.Second, func() bool {
			l, err := e.store.ListBindings(context.Background(), "default")
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range l {
				if b.BindingID == id {
					got = &b
				}
			}
			return got != nil
		})
		if got.Detail != c.want {
			t.Errorf("%s: stored %q", c.name, got.Detail)
		}
	}
}

// The webhook adapter: every valid character is stored and queued as sent (the run completes
// with it); invalid UTF-8 and unpaired surrogates are a 400 naming the field.
func TestAdapterKeepsEveryCharacterOrNamesTheField(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	post := func(body string) reply {
		return do(t, http.MethodPost, e.stack.URL+"/webhook/default", map[string]string{"authorization": "Bearer " + adapterSecret, "content-type": "application/json"}, body)
	}
	for i, c := range textCases {
		r := post(fmt.Sprintf(`{"text":"%s","data":{"note":"%s"},"eventId":"bytes-%d-%d"}`, c.literal, c.literal, i, time.Now().UnixNano()))
		if c.refused {
			checkRefused(t, c.name, r, "text")
			continue
		}
		if r.status != 202 {
			t.Errorf("%s: %d %s", c.name, r.status, r.raw)
			continue
		}
		run := waitRun(t, e, str(r.body, "threadId"), str(r.body, "runId"))
		if run["status"] != "completed" {
			t.Errorf("%s: run %v", c.name, run)
		}
		m := messageOn(t, e, "default", str(r.body, "threadId"), "")
		if m.Text != c.want || !sameJSON(m.Data, []byte(`{"note":"`+c.literal+`"}`)) {
			t.Errorf("%s: stored %q / %s", c.name, m.Text, m.Data)
		}
	}
	checkRefused(t, "invalid UTF-8 in data", post(`{"text":"hi","data":`+dataBad+`}`), "data.note")
}

// An adapter call with an eventId whose text SQS forbids holds no in-flight slot once answered:
// with maxInFlight 1, the next call is accepted (today the first got 503 and its run held the
// adapter's only slot for the lease, 15 minutes).
func TestAdapterForbiddenTextHoldsNoSlot(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	r := a.post(t, "/webhook/tiny", fmt.Sprintf(`{"text":"x\uffff","eventId":"slot-%d"}`, time.Now().UnixNano()))
	switch r.status {
	case 202:
		a.waitStatus(t, "tiny", str(r.body, "threadId"), str(r.body, "runId"), "completed")
	case 400:
	default:
		t.Fatalf("forbidden text: %d %s", r.status, r.raw)
	}
	// The slot is given back just after the run ends (or at once when nothing was queued): the
	// next call is taken within seconds, not after the 15-minute lease.
	var next reply
	waitFor(t, "the call after it to be taken", 10*time.Second, func() bool {
		next = a.post(t, "/webhook/tiny", `{"text":"next"}`)
		return next.status == 202
	})
	a.waitStatus(t, "tiny", str(next.body, "threadId"), str(next.body, "runId"), "completed")
}

// The widget: its text rule (printable, line breaks and tabs) refuses controls and U+FFFF with a
// 400 naming text, and so are invalid UTF-8 and unpaired surrogates, which were replaced
// silently before; nothing is queued for any of them.
func TestWidgetRefusesBytesItCannotKeep(t *testing.T) {
	inLane(t, laneLive)
	e := liveStack(t)
	site := e.stack.URL
	token, _, threadID := openSession(t, e, site)
	for _, c := range textCases {
		r := do(t, http.MethodPost, e.stack.URL+"/v1/web/messages", map[string]string{"Origin": site, "Authorization": "Bearer " + token, "Content-Type": "application/json"},
			`{"text":"`+c.literal+`"}`)
		checkRefused(t, c.name, r, "text")
	}
	if msgs, err := e.store.ListMessages(context.Background(), "default", threadID, 10); err != nil || len(msgs) != 0 {
		t.Fatalf("refused texts stored: %+v %v", msgs, err)
	}
}

// A GitHub source keeps the secret GitHub was given, however short and with spaces, and verifies
// GitHub-signed deliveries with it.
func TestGitHubSourceWithShortSpacedSecretVerifies(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	ws := uniqueWS("gh")
	key := apiKeyFor(t, e, ws)
	const secret = "my hook"
	r := do(t, http.MethodPost, e.stack.URL+"/v1/sources", map[string]string{"x-api-key": key}, `{"name":"github","scheme":"github","secret":"`+secret+`"}`)
	if r.status != 201 {
		t.Fatalf("create the source: %d %s", r.status, r.raw)
	}
	body := `{"action":"opened","issue":{"number":1}}`
	r = postWebhook(t, e, ws, "source=github", signers["github"](secret, fmt.Sprintf("d-%d", time.Now().UnixNano()), time.Now(), body), body)
	if r.status != 202 || r.body["role"] != "webhook.github.opened" {
		t.Fatalf("signed delivery: %d %s", r.status, r.raw)
	}
	r = postWebhook(t, e, ws, "source=github", signers["github"]("my hook2", "d-x", time.Now(), body), body)
	if r.status != 401 {
		t.Fatalf("wrong secret: %d %s", r.status, r.raw)
	}
}

// apiKeyFor creates an API key for ws through the management API.
func apiKeyFor(t *testing.T, e *env, ws string) string {
	t.Helper()
	r := do(t, http.MethodPost, e.stack.URL+"/v1/api-keys", adminHeaders(), fmt.Sprintf(`{"name":"bytes","workspace_id":%q}`, ws))
	if r.status != 201 {
		t.Fatalf("create api key: %d %s", r.status, r.raw)
	}
	return r.body["key"].(string)
}

// timeoutMs over 30,000 is capped to 30,000, not refused.
func TestAdapterTimeoutOver30sIsCapped(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	r := do(t, http.MethodPost, e.stack.URL+"/webhook/default", map[string]string{"authorization": "Bearer " + adapterSecret},
		`{"text":"capped","sync":true,"timeoutMs":31000}`)
	if r.status != 200 || r.body["status"] != "completed" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

// A pressed inline button (callback_query) reaches the agent as a message with the button's data
// on the chat's thread; the reply goes to the chat and answers the query.
func TestTelegramCallbackQueryReachesTheAgent(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	chat := time.Now().UnixNano() % 1e9
	qid := fmt.Sprintf("cbq-%d", chat)
	update := fmt.Sprintf(`{"update_id":%d,"callback_query":{"id":%q,"from":{"id":7,"is_bot":false,"first_name":"Ada","username":"ada"},`+
		`"message":{"message_id":5,"date":1700000000,"chat":{"id":%d,"type":"private"},"text":"Pick one"},"chat_instance":"1","data":"pick:blue"}}`, chat, qid, chat)
	r := postTelegram(t, a.env, telegramToken, update)
	if r.status != 202 || r.body["thread_id"] != keyedIDs(a.env).Thread("default", "telegram", strconv.FormatInt(chat, 10)) {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	waitFor(t, "the reply and the answer at the Bot API", 30*time.Second, func() bool {
		a.bot.mu.Lock()
		defer a.bot.mu.Unlock()
		sent, answered := false, false
		for _, m := range a.bot.sent {
			sent = sent || m["chat_id"] == float64(chat) && m["text"] == "pick:blue"
		}
		for _, m := range a.bot.answered {
			answered = answered || m["callback_query_id"] == qid
		}
		return sent && answered
	})
}

// A photo with a caption runs the agent on the caption.
func TestTelegramCaptionedPhotoReachesTheAgent(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	chat := time.Now().UnixNano() % 1e9
	update := fmt.Sprintf(`{"update_id":%d,"message":{"message_id":1,"date":1700000000,"chat":{"id":%d,"type":"private"},`+
		`"photo":[{"file_id":"AgAD","file_unique_id":"u","width":90,"height":90}],"caption":"what is this?"}}`, chat, chat)
	if r := postTelegram(t, a.env, telegramToken, update); r.status != 202 || r.body["run_id"] == nil {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	waitFor(t, "the caption's echo at the Bot API", 30*time.Second, func() bool {
		a.bot.mu.Lock()
		defer a.bot.mu.Unlock()
		for _, m := range a.bot.sent {
			if m["chat_id"] == float64(chat) && m["text"] == "what is this?" {
				return true
			}
		}
		return false
	})
}

// A Slack Events API app_mention gets the role of its inner event type.
func TestSlackAppMentionGetsItsRole(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	ws := uniqueWS("slack")
	createSource(t, e, ws, "slack", "slack", secretFor("slack"))
	body := fmt.Sprintf(`{"token":"x","team_id":"T1","api_app_id":"A1","event":{"type":"app_mention","user":"U1","text":"<@U0> hi","ts":"1.2","channel":"C1"},"type":"event_callback","event_id":"Ev%d","event_time":1700000000}`, time.Now().UnixNano())
	r := postWebhook(t, e, ws, "source=slack", signers["slack"](secretFor("slack"), "", time.Now(), body), body)
	if r.status != 202 || r.body["role"] != "webhook.slack.app_mention" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	waitFor(t, "the event", 30*time.Second, func() bool { return countType(logOf(t, e, ws), "webhook.slack.app_mention") == 1 })
}
