package e2e_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// An agent's reply holding an emoji (a character above U+FFFF: SQS takes it) reaches a subscriber
// of message.sent. The worker writes the reply's events straight into the log, so no queue saw the
// text before the fan-out; a small delivery's message now carries its payload, and local mode's
// SQS (fauxqs behind the guard) refuses every character above U+FFFF in a body: the fan-out's batch
// fails, the stream retries it, and the subscriber never gets the event (the message of the fan-out
// before the change only pointed at the delivery's item, and it was delivered).
func TestAttackSubscriberGetsAnAgentsEmojiReply(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	n := time.Now().UnixNano() % 1e9
	ws := fmt.Sprintf("emoji-%d", n)
	key := wsKey(t, e, ws)
	const text = "Done \U0001F600 \U0001F44D"
	agentSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"type":"speak","text":%q}`, text)
	}))
	t.Cleanup(agentSrv.Close)
	mustStatus(t, "create the agent", do(t, http.MethodPost, e.stack.URL+"/v1/agents", key,
		fmt.Sprintf(`{"name":"emo","type":"webhook","url":%q,"timeout_seconds":10}`, agentSrv.URL)), 201)
	var got atomic.Value
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), `"message.sent"`) {
			got.Store(string(b))
		}
	}))
	t.Cleanup(hook.Close)
	mustStatus(t, "subscribe", do(t, http.MethodPost, e.stack.URL+"/v1/webhooks", key,
		fmt.Sprintf(`{"url":%q,"events":["message.sent"]}`, hook.URL+"/hook")), 201)
	adp := fmt.Sprintf("emoji-%d", n)
	made := mustStatus(t, "create adapter", do(t, http.MethodPost, e.stack.URL+"/v1/adapters", key, fmt.Sprintf(`{"name":%q,"agent":"emo"}`, adp)), 201)
	r := do(t, http.MethodPost, e.stack.URL+"/webhook/"+adp, map[string]string{"authorization": "Bearer " + made.body["secret"].(string)},
		`{"text":"hi","sync":true,"timeoutMs":20000}`)
	if r.status != 200 || !strings.Contains(r.raw, "Done") {
		t.Fatalf("the run: %d %s", r.status, r.raw)
	}
	waitFor(t, "message.sent delivered to the subscriber", 60*time.Second, func() bool {
		b, _ := got.Load().(string)
		return strings.Contains(b, "\U0001F600") || strings.Contains(b, `\ud83d\ude00`)
	})
}

// A door's message holding an emoji is queued (202) and its run echoes it back whole: SQS takes
// characters above U+FFFF, and so does local mode (fauxqs refused them: the door answered 503).
func TestInboundEmojiIsQueuedAndEchoed(t *testing.T) {
	inLane(t, laneShared)
	e := sharedStack(t)
	const text = "thumbs \U0001F44D and a face \U0001F600"
	r := postInbound(t, e, nil, fmt.Sprintf(`{"channel":"demo","external_id":"emoji-%d","text":%q}`, time.Now().UnixNano(), text))
	if r.status != 202 {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	run := waitRun(t, e, r.body["thread_id"].(string), r.body["run_id"].(string))
	if res, _ := run["result"].(map[string]any); run["status"] != "completed" || res["text"] != text {
		t.Fatalf("run %v", run)
	}
}
