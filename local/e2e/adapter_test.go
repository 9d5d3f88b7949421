package e2e_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The webhook adapter end to end: the local HTTP API, the adapter, worker, fan-out and delivery
// bootstraps on DynamoDB Local and fauxqs, against test servers that speak the agent protocol,
// OpenAI's chat completions and Telegram's Bot API, each checking what it is sent independently.

const (
	agentSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // the signing secret of the test agent
	openAIKey   = "sk-test-0123456789"
	botToken    = "123456:TEST-token_abc"
)

// protoAgent is a test agent speaking Hookgate's webhook agent protocol. What it answers depends
// on the text: "silent" → 204, "approve" → a request for approval, "approve twice" → a request for
// approval and, once approved, a second one, "flaky" → two 503s then an answer, "dead" → always
// 500, "slow" → an answer after 3 s, "block" → waits for release.
type protoAgent struct {
	srv                   *httptest.Server
	verify                *standardwebhooks.Webhook
	mu                    sync.Mutex
	kinds                 map[string][]string // session id → request kinds, in order
	badSigs               int
	tries                 map[string]int // run id → user_speak calls
	decisions             map[string]int // run id → approval_result calls
	twice                 map[string]bool
	release               chan struct{}
	inFlight, maxInFlight atomic.Int32
}

func newProtoAgent(t *testing.T) *protoAgent {
	v, err := standardwebhooks.NewWebhook(agentSecret)
	if err != nil {
		t.Fatal(err)
	}
	a := &protoAgent{verify: v, kinds: map[string][]string{}, tries: map[string]int{}, decisions: map[string]int{}, twice: map[string]bool{}, release: make(chan struct{})}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	return a
}

func (a *protoAgent) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := a.verify.Verify(body, r.Header); err != nil {
		a.mu.Lock()
		a.badSigs++
		a.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var req struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		RunID    string `json:"run_id"`
		Session  struct{ ID string }
		Decision *struct {
			Approved bool
			Option   string
		}
	}
	_ = json.Unmarshal(body, &req)
	a.mu.Lock()
	a.kinds[req.Session.ID] = append(a.kinds[req.Session.ID], req.Type)
	if req.Type == "user_speak" {
		a.tries[req.RunID]++
	}
	if req.Type == "user_speak" && req.Text == "approve twice" {
		a.twice[req.RunID] = true
	}
	if req.Type == "approval_result" {
		a.decisions[req.RunID]++
	}
	tries, twice, decisions := a.tries[req.RunID], a.twice[req.RunID], a.decisions[req.RunID]
	a.mu.Unlock()
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	switch {
	case req.Type == "session_start":
		w.WriteHeader(http.StatusNoContent)
	case req.Type == "approval_result" && req.Decision.Approved && twice && decisions == 1:
		reply(map[string]any{"type": "request_approval", "prompt": "And 5 EUR more?", "options": []string{"refund", "refuse"}})
	case req.Type == "approval_result" && req.Decision.Approved:
		reply(map[string]string{"type": "speak", "text": "done, as " + req.Decision.Option})
	case req.Type == "approval_result":
		reply(map[string]string{"type": "speak", "text": "understood, not doing it"})
	case req.Text == "silent":
		w.WriteHeader(http.StatusNoContent)
	case req.Text == "approve", req.Text == "approve twice":
		reply([]map[string]any{{"type": "speak", "text": "I would like to refund 20 EUR."},
			{"type": "request_approval", "prompt": "Refund 20 EUR?", "options": []string{"refund", "refuse"}}})
	case req.Text == "flaky" && tries <= 2, req.Text == "dead":
		http.Error(w, "try later", http.StatusServiceUnavailable)
	case req.Text == "slow":
		time.Sleep(3 * time.Second)
		reply(map[string]string{"type": "speak", "text": "slowly: " + req.Text})
	case req.Text == "block":
		n := a.inFlight.Add(1)
		for m := a.maxInFlight.Load(); n > m && !a.maxInFlight.CompareAndSwap(m, n); m = a.maxInFlight.Load() {
		}
		<-a.release
		a.inFlight.Add(-1)
		reply(map[string]string{"type": "speak", "text": "unblocked"})
	default:
		reply(map[string]string{"type": "speak", "text": "agent: " + req.Text})
	}
}

func (a *protoAgent) kindsOf(session string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.kinds[session]...)
}

// openAIServer is an OpenAI-compatible chat completions endpoint that answers with what it got.
type openAIServer struct {
	srv      *httptest.Server
	mu       sync.Mutex
	requests [][]map[string]string // the messages of each request
	badAuth  int
}

func newOpenAIServer(t *testing.T) *openAIServer {
	o := &openAIServer{}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model    string              `json:"model"`
			Messages []map[string]string `json:"messages"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		o.mu.Lock()
		defer o.mu.Unlock()
		if r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer "+openAIKey || req.Model != "test-model" {
			o.badAuth++
			http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusUnauthorized)
			return
		}
		o.requests = append(o.requests, req.Messages)
		last := req.Messages[len(req.Messages)-1]["content"]
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"choices":[{"message":{"role":"assistant","content":%q}}]}`, fmt.Sprintf("gpt heard %q after %d messages", last, len(req.Messages)-1))
	}))
	return o
}

// botAPI is a Telegram Bot API that records sendMessage and answerCallbackQuery calls.
type botAPI struct {
	srv      *httptest.Server
	mu       sync.Mutex
	sent     []map[string]any
	answered []map[string]any
}

func newBotAPI(t *testing.T) *botAPI {
	b := &botAPI{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		b.mu.Lock()
		defer b.mu.Unlock()
		switch r.URL.Path {
		case "/bot" + botToken + "/sendMessage":
			b.sent = append(b.sent, m)
			fmt.Fprint(w, `{"ok":true,"result":{"message_id":1}}`)
		case "/bot" + botToken + "/answerCallbackQuery":
			b.answered = append(b.answered, m)
			fmt.Fprint(w, `{"ok":true,"result":true}`)
		default:
			http.Error(w, `{"ok":false,"error_code":404,"description":"Not Found"}`, http.StatusNotFound)
		}
	}))
	return b
}

// callbacks records the callbacks POSTed to it (raw, too) and checks their signatures by hand with
// the ops adapter's callback secret: the one derived from the stack's approval signing key.
type callbacks struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []map[string]any
	raw     []postedCallback
	badSigs int
}

type postedCallback struct {
	header http.Header
	body   []byte
}

// signedBy reports whether both signatures of a callback verify with secret: X-Webhook-Signature
// keyed with the whole string, Webhook-Signature with the base64-decoded part of a whsec_ secret.
func signedBy(secret string, h http.Header, body []byte) (hexOK, stdOK bool) {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	hexOK = hmac.Equal([]byte(h.Get("X-Webhook-Signature")), []byte("sha256="+hex.EncodeToString(mac.Sum(nil))))
	key := []byte(secret)
	if b, ok := strings.CutPrefix(secret, "whsec_"); ok {
		key, _ = base64.StdEncoding.DecodeString(b)
	}
	std := hmac.New(sha256.New, key)
	fmt.Fprintf(std, "%s.%s.%s", h.Get("Webhook-Id"), h.Get("Webhook-Timestamp"), body)
	stdOK = h.Get("Webhook-Signature") == "v1,"+base64.StdEncoding.EncodeToString(std.Sum(nil))
	return hexOK, stdOK
}

func newCallbacks(t *testing.T, secret string) *callbacks {
	c := &callbacks{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hexOK, stdOK := signedBy(secret, r.Header, body)
		var env map[string]any
		_ = json.Unmarshal(body, &env)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.raw = append(c.raw, postedCallback{r.Header.Clone(), body})
		if !hexOK || !stdOK {
			c.badSigs++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		c.got = append(c.got, env)
		w.WriteHeader(http.StatusNoContent)
	}))
	return c
}

type adapterEnv struct {
	*env
	agent   *protoAgent
	openai  *openAIServer
	bot     *botAPI
	replies *callbacks
}

var (
	adapterOnce   sync.Once
	adapterShared *adapterEnv
	adapterErr    error
)

// adapterStack is the stack of the adapter tests, with test servers as its agents. Like the stack,
// they live until the test binary exits.
func adapterStack(t *testing.T) *adapterEnv {
	t.Helper()
	adapterOnce.Do(func() {
		a := &adapterEnv{agent: newProtoAgent(t), openai: newOpenAIServer(t), bot: newBotAPI(t), replies: newCallbacks(t, opsCallbackSecret())}
		agents := fmt.Sprintf(`{"proto":{"type":"webhook","url":%q,"secret":%q,"timeoutSeconds":20},`+
			`"gpt":{"type":"openai","baseUrl":%q,"model":"test-model","maxHistory":10,"system":"Be brief."}}`,
			a.agent.srv.URL+"/agent", agentSecret, a.openai.srv.URL+"/v1")
		adapters := `[{"name":"default","readAllRuns":true},` +
			`{"name":"ops","agent":"proto","replyHosts":["127.0.0.1"],"approvers":["boss"],"maxBodyBytes":4096},` +
			`{"name":"limited","agent":"proto","maxInFlight":32},{"name":"tiny","agent":"proto","maxInFlight":1},` +
			`{"name":"gpt","agent":"gpt"}]`
		a.env, adapterErr = startSharedStack(t, "adp", 30*time.Second, map[string]string{
			"Adapters": adapters, "Agents": agents, "OpenAIApiKey": openAIKey, "AgentRetrySchedule": "0s,1s,1s",
			"TelegramBotToken": botToken, "TelegramApiUrl": a.bot.srv.URL, "ApprovalSigningKey": approvalKey,
		}, nil)
		adapterShared = a
	})
	if adapterErr != nil {
		t.Fatalf("start the adapter stack: %v", adapterErr)
	}
	return adapterShared
}

func (a *adapterEnv) post(t *testing.T, path, body string) reply {
	t.Helper()
	return do(t, http.MethodPost, a.stack.URL+path, map[string]string{"authorization": "Bearer " + adapterSecret, "content-type": "application/json"}, body)
}

// waitStatus polls a run through the adapter until it has one of the statuses.
func (a *adapterEnv) waitStatus(t *testing.T, adapter, thread, run string, statuses ...string) reply {
	t.Helper()
	var last reply
	waitFor(t, fmt.Sprintf("run %s to be %v", run, statuses), 45*time.Second, func() bool {
		last = do(t, http.MethodGet, a.stack.URL+"/webhook/"+adapter+"/threads/"+thread+"/runs/"+run, map[string]string{"x-webhook-secret": adapterSecret}, "")
		if last.status != 200 {
			t.Fatalf("run status: %d %s", last.status, last.raw)
		}
		for _, s := range statuses {
			if last.body["status"] == s {
				return true
			}
		}
		return false
	})
	return last
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

func resultText(r reply) string {
	res, _ := r.body["result"].(map[string]any)
	return str(res, "text")
}

func TestAdapterThreadFollowUpAndPoll(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	start := a.post(t, "/webhook/ops", `{"text":"hello","user":"alice","data":{"order":7}}`)
	if start.status != 202 || str(start.body, "status") != "queued" {
		t.Fatalf("start: %d %s", start.status, start.raw)
	}
	thread, run := str(start.body, "threadId"), str(start.body, "runId")
	done := a.waitStatus(t, "ops", thread, run, "completed")
	if resultText(done) != "agent: hello" || done.body["completedAt"] == nil {
		t.Fatalf("first run: %s", done.raw)
	}
	follow := a.post(t, "/webhook/ops/threads/"+thread+"/messages", `{"text":"silent","user":"alice"}`)
	if follow.status != 202 || str(follow.body, "threadId") != thread {
		t.Fatalf("follow-up: %d %s", follow.status, follow.raw)
	}
	// 204 from the agent: the run completes with no reply.
	quiet := a.waitStatus(t, "ops", thread, str(follow.body, "runId"), "completed")
	if resultText(quiet) != "" {
		t.Fatalf("silent run: %s", quiet.raw)
	}
	if got := a.agent.kindsOf(thread); strings.Join(got, ",") != "session_start,user_speak,user_speak" {
		t.Fatalf("the agent saw %v", got)
	}
	if a.agent.badSigs != 0 {
		t.Fatalf("%d agent requests failed signature verification", a.agent.badSigs)
	}
	// The reply is a message.sent event for subscribers and streams.
	sent := eventsAbout(t, a.env, run)["message.sent"]
	if len(sent) != 1 || !strings.Contains(string(sent[0].Data), `"text":"agent: hello"`) {
		t.Fatalf("message.sent events %+v", sent)
	}
	if r := a.post(t, "/webhook/ops/threads/thr_00000000000000000000000000/messages", `{"text":"x"}`); r.status != 404 || r.errorCode() != "not_found" {
		t.Fatalf("unknown thread: %d %s", r.status, r.raw)
	}
}

// Every error the adapter's callers know, through the HTTP API.
func TestAdapterErrors(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	url := a.stack.URL + "/webhook/ops"
	for _, tc := range []struct {
		name    string
		headers map[string]string
		body    string
		status  int
		message string
	}{
		{"no secret", map[string]string{}, `{"text":"hi"}`, 401, "missing or invalid adapter secret"},
		{"wrong secret", map[string]string{"authorization": "Bearer not-the-secret-at-all"}, `{"text":"hi"}`, 401, "missing or invalid adapter secret"},
		{"blank text", nil, `{"text":"   "}`, 400, "text is required"},
		{"reply host", nil, `{"text":"hi","replyUrl":"http://localhost:9/cb"}`, 400, "replyUrl host is not allowed"},
		{"too large", nil, `{"text":"` + strings.Repeat("x", 5000) + `"}`, 413, "body is larger than 4096 bytes"},
	} {
		h := tc.headers
		if h == nil {
			h = map[string]string{"authorization": "Bearer " + adapterSecret}
		}
		r := do(t, http.MethodPost, url, h, tc.body)
		e, _ := r.body["error"].(map[string]any)
		if r.status != tc.status || str(e, "message") != tc.message {
			t.Errorf("%s: %d %s, want %d %q", tc.name, r.status, r.raw, tc.status, tc.message)
		}
	}
	if r := do(t, http.MethodGet, a.stack.URL+"/webhook/ops/threads/thr_x/runs/run_00000000000000000000000000", map[string]string{"x-webhook-secret": adapterSecret}, ""); r.status != 404 || !strings.Contains(r.raw, "run not found") {
		t.Errorf("unknown run: %d %s", r.status, r.raw)
	}
	// 429: an adapter with one slot, held by a run whose agent is blocked.
	first := a.post(t, "/webhook/tiny", `{"text":"block"}`)
	if first.status != 202 {
		t.Fatalf("tiny: %d %s", first.status, first.raw)
	}
	second := a.post(t, "/webhook/tiny", `{"text":"hi"}`)
	e, _ := second.body["error"].(map[string]any)
	if second.status != 429 || str(e, "message") != "too many in-flight webhook runs" {
		t.Errorf("over the limit: %d %s", second.status, second.raw)
	}
	waitFor(t, "the blocked run to reach the agent", 30*time.Second, func() bool { return a.agent.inFlight.Load() == 1 })
	a.agent.release <- struct{}{}
	a.waitStatus(t, "tiny", str(first.body, "threadId"), str(first.body, "runId"), "completed")
	var after reply
	waitFor(t, "the slot to be free again", 10*time.Second, func() bool {
		after = a.post(t, "/webhook/tiny", `{"text":"after"}`)
		return after.status == 202
	})
	// The run leaves the slot free for the tests after this one.
	a.waitStatus(t, "tiny", str(after.body, "threadId"), str(after.body, "runId"), "completed")
}

func TestAdapterApproval(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	base := func(r reply) string {
		return "/webhook/ops/threads/" + str(r.body, "threadId") + "/runs/" + str(r.body, "runId")
	}
	start := a.post(t, "/webhook/ops", `{"text":"approve","user":"alice"}`)
	waiting := a.waitStatus(t, "ops", str(start.body, "threadId"), str(start.body, "runId"), "waiting_approval")
	ap, _ := waiting.body["approval"].(map[string]any)
	if str(ap, "prompt") != "Refund 20 EUR?" || resultText(waiting) != "I would like to refund 20 EUR." || str(ap, "id") == "" {
		t.Fatalf("waiting: %s", waiting.raw)
	}
	if strings.Contains(waiting.raw, "token") {
		t.Fatalf("the adapter's run view shows decision tokens: %s", waiting.raw)
	}
	// The adapter's secret and a name approve nothing: approvers decide with their tokens.
	if r := a.post(t, base(start)+"/approve", `{"user":"boss","option":"refund"}`); r.status != 403 {
		t.Fatalf("the adapter's secret approved: %d %s", r.status, r.raw)
	}
	tok := decisionToken(t, a, str(start.body, "runId"), str(ap, "id"), "boss", "approve", "refund")
	if r := a.decide(t, base(start)+"/approve", tok, `{"comment":"fine"}`); r.status != 200 {
		t.Fatalf("approve: %d %s", r.status, r.raw)
	}
	done := a.waitStatus(t, "ops", str(start.body, "threadId"), str(start.body, "runId"), "completed")
	if resultText(done) != "done, as refund" {
		t.Fatalf("approved run: %s", done.raw)
	}

	denied := a.post(t, "/webhook/ops", `{"text":"approve","user":"alice"}`)
	w := a.waitStatus(t, "ops", str(denied.body, "threadId"), str(denied.body, "runId"), "waiting_approval")
	ap, _ = w.body["approval"].(map[string]any)
	deny := decisionToken(t, a, str(denied.body, "runId"), str(ap, "id"), "boss", "deny", "")
	if r := a.decide(t, base(denied)+"/deny", deny, `{"comment":"no"}`); r.status != 200 || str(r.body, "status") != "denied" {
		t.Fatalf("deny: %d %s", r.status, r.raw)
	}
	end := a.waitStatus(t, "ops", str(denied.body, "threadId"), str(denied.body, "runId"), "denied")
	ap, _ = end.body["approval"].(map[string]any)
	if str(ap, "decision") != "denied" || str(ap, "decidedBy") != "boss" || str(ap, "comment") != "no" {
		t.Fatalf("denied run: %s", end.raw)
	}
	// The agent hears of the denial; its answer is recorded on the thread, the run stays denied.
	waitFor(t, "the agent to hear of the denial", 20*time.Second, func() bool {
		kinds := a.agent.kindsOf(str(denied.body, "threadId"))
		return len(kinds) > 0 && kinds[len(kinds)-1] == "approval_result"
	})
	waitFor(t, "the denial's answer as message.sent", 20*time.Second, func() bool {
		return len(eventsAbout(t, a.env, "understood, not doing it")["message.sent"]) == 1
	})
	if r := a.post(t, base(denied)+"/cancel", `{"user":"alice"}`); r.status != 409 {
		t.Fatalf("cancelling a denied run: %d %s", r.status, r.raw)
	}
	// Cancel a queued or running run.
	c := a.post(t, "/webhook/ops", `{"text":"slow","user":"alice"}`)
	if r := a.post(t, base(c)+"/cancel", `{"user":"mallory"}`); r.status != 403 {
		t.Fatalf("a stranger cancelled: %d %s", r.status, r.raw)
	}
	if r := a.post(t, base(c)+"/cancel", `{"user":"alice"}`); r.status != 200 || str(r.body, "status") != "cancelled" {
		t.Fatalf("cancel: %d %s", r.status, r.raw)
	}
	time.Sleep(4 * time.Second) // longer than the slow agent takes: the run must stay cancelled
	if r := a.waitStatus(t, "ops", str(c.body, "threadId"), str(c.body, "runId"), "cancelled"); resultText(r) != "" {
		t.Fatalf("a cancelled run got a result: %s", r.raw)
	}
}

func TestAdapterSyncMode(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	fast := a.post(t, "/webhook/ops", `{"text":"quick","sync":true,"timeoutMs":20000}`)
	if fast.status != 200 || str(fast.body, "status") != "completed" || resultText(fast) != "agent: quick" {
		t.Fatalf("fast: %d %s", fast.status, fast.raw)
	}
	slow := a.post(t, "/webhook/ops", `{"text":"slow","sync":true,"timeoutMs":500}`)
	if slow.status != 202 || str(slow.body, "runId") == "" {
		t.Fatalf("slow: %d %s", slow.status, slow.raw)
	}
	a.waitStatus(t, "ops", str(slow.body, "threadId"), str(slow.body, "runId"), "completed")
}

func TestAdapterCallback(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	r := a.post(t, "/webhook/ops", fmt.Sprintf(`{"text":"call me back","replyUrl":%q}`, a.replies.srv.URL+"/cb"))
	if r.status != 202 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	var got map[string]any
	waitFor(t, "the callback", 30*time.Second, func() bool {
		a.replies.mu.Lock()
		defer a.replies.mu.Unlock()
		for _, env := range a.replies.got {
			if d, _ := env["data"].(map[string]any); str(d, "runId") == str(r.body, "runId") {
				got = env
				return true
			}
		}
		return false
	})
	d, _ := got["data"].(map[string]any)
	res, _ := d["result"].(map[string]any)
	if str(got, "type") != "run.completed" || str(d, "status") != "completed" || str(res, "text") != "agent: call me back" {
		t.Fatalf("callback %v", got)
	}
	if a.replies.badSigs != 0 {
		t.Fatalf("%d callbacks failed signature verification", a.replies.badSigs)
	}
}

func TestAdapterIdempotentEventID(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	key := fmt.Sprintf("evt-%d", time.Now().UnixNano())
	var wg sync.WaitGroup
	replies := make([]reply, 20)
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = a.post(t, "/webhook/ops", `{"text":"exactly once","eventId":"`+key+`"}`)
		}()
	}
	wg.Wait()
	run := str(replies[0].body, "runId")
	for _, r := range replies {
		if r.status != 202 || str(r.body, "runId") != run {
			t.Fatalf("reply %d %s, first %s", r.status, r.raw, replies[0].raw)
		}
	}
	a.waitStatus(t, "ops", str(replies[0].body, "threadId"), run, "completed")
	time.Sleep(time.Second)
	a.agent.mu.Lock()
	calls := a.agent.tries[run]
	a.agent.mu.Unlock()
	if calls != 1 || len(eventsAbout(t, a.env, run)["run.created"]) != 1 {
		t.Fatalf("the agent answered the run %d times", calls)
	}
}

func TestAdapterAgentRetries(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	flaky := a.post(t, "/webhook/ops", `{"text":"flaky"}`)
	dead := a.post(t, "/webhook/ops", `{"text":"dead"}`)
	done := a.waitStatus(t, "ops", str(flaky.body, "threadId"), str(flaky.body, "runId"), "completed", "failed")
	if str(done.body, "status") != "completed" || resultText(done) != "agent: flaky" || done.body["attempts"] != float64(3) {
		t.Fatalf("flaky: %s", done.raw)
	}
	failed := a.waitStatus(t, "ops", str(dead.body, "threadId"), str(dead.body, "runId"), "completed", "failed")
	if str(failed.body, "status") != "failed" || !strings.Contains(str(failed.body, "error"), "503") {
		t.Fatalf("dead: %s", failed.raw)
	}
	// The worker appends run.failed just after the run's change.
	waitFor(t, "run.failed in the log", 30*time.Second, func() bool {
		return len(eventsAbout(t, a.env, str(dead.body, "runId"))["run.failed"]) >= 1
	})
	if evs := eventsAbout(t, a.env, str(dead.body, "runId"))["run.failed"]; len(evs) != 1 {
		t.Fatalf("run.failed events: %d", len(evs))
	}
}

func TestAdapterOpenAICompatible(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	first := a.post(t, "/webhook/gpt", `{"text":"what is 2+2?","sync":true,"timeoutMs":20000}`)
	if first.status != 200 || resultText(first) != `gpt heard "what is 2+2?" after 1 messages` {
		t.Fatalf("first: %d %s", first.status, first.raw)
	}
	second := a.post(t, "/webhook/gpt/threads/"+str(first.body, "threadId")+"/messages", `{"text":"and 3+3?","sync":true,"timeoutMs":20000}`)
	if second.status != 200 || resultText(second) != `gpt heard "and 3+3?" after 3 messages` {
		t.Fatalf("second: %d %s", second.status, second.raw)
	}
	a.openai.mu.Lock()
	defer a.openai.mu.Unlock()
	last := a.openai.requests[len(a.openai.requests)-1]
	want := []string{"system:Be brief.", "user:what is 2+2?", `assistant:gpt heard "what is 2+2?" after 1 messages`, "user:and 3+3?"}
	var got []string
	for _, m := range last {
		got = append(got, m["role"]+":"+m["content"])
	}
	if strings.Join(got, "|") != strings.Join(want, "|") || a.openai.badAuth != 0 {
		t.Fatalf("messages %q, want %q (bad requests %d)", got, want, a.openai.badAuth)
	}
}

// A reply on a Telegram thread is sent to the chat through the Bot API.
func TestTelegramReplyReachesTheBotAPI(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	chat := time.Now().UnixNano() % 1e9
	update := fmt.Sprintf(`{"update_id":%d,"message":{"message_id":1,"date":1700000000,"chat":{"id":%d,"type":"private"},"text":"hi bot"}}`, chat, chat)
	if r := postTelegram(t, a.env, telegramToken, update); r.status != 202 || r.body["thread_id"] != keyedIDs(a.env).Thread("default", "telegram", strconv.FormatInt(chat, 10)) {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	waitFor(t, "sendMessage at the Bot API", 30*time.Second, func() bool {
		a.bot.mu.Lock()
		defer a.bot.mu.Unlock()
		for _, m := range a.bot.sent {
			if m["chat_id"] == float64(chat) && m["text"] == "hi bot" {
				return true
			}
		}
		return false
	})
}

// 40 concurrent posts to an adapter with maxInFlight 32 and an agent that holds every run: across
// two separately started adapter hosts (further Lambda instances, with processes of their own),
// exactly 32 are accepted and 8 refused with 429, and none is lost when the agent lets go.
func TestAdapterInFlightLimitAcrossInstances(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	var hosts []interface {
		Invoke(ctx context.Context, payload []byte) ([]byte, error)
	}
	for range 2 {
		h, err := a.stack.StartFunction(context.Background(), "AdapterFunction", 3)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		hosts = append(hosts, h)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var accepted []map[string]any
	var limited int
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := events.APIGatewayV2HTTPRequest{
				Version: "2.0", RouteKey: "POST /webhook/{name}", RawPath: "/webhook/limited",
				PathParameters: map[string]string{"name": "limited"},
				Headers:        map[string]string{"authorization": "Bearer " + adapterSecret, "content-type": "application/json"},
				Body:           `{"text":"block"}`,
			}
			req.RequestContext.HTTP.Method, req.RequestContext.HTTP.Path = http.MethodPost, "/webhook/limited"
			payload, _ := json.Marshal(req)
			out, err := hosts[i%2].Invoke(context.Background(), payload)
			if err != nil {
				t.Error(err)
				return
			}
			var resp events.APIGatewayV2HTTPResponse
			_ = json.Unmarshal(out, &resp)
			var body map[string]any
			_ = json.Unmarshal([]byte(resp.Body), &body)
			mu.Lock()
			defer mu.Unlock()
			switch resp.StatusCode {
			case 202:
				accepted = append(accepted, body)
			case 429:
				limited++
			default:
				t.Errorf("%d %s", resp.StatusCode, resp.Body)
			}
		}()
	}
	wg.Wait()
	if len(accepted) != 32 || limited != 8 {
		t.Fatalf("accepted %d, limited %d; want 32 and 8", len(accepted), limited)
	}
	if max := a.agent.maxInFlight.Load(); max > 32 {
		t.Fatalf("%d runs at the agent at once", max)
	}
	// Let every held run go: all 32 complete.
	go func() {
		for range 32 {
			a.agent.release <- struct{}{}
		}
	}()
	for _, b := range accepted {
		done := a.waitStatus(t, "limited", str(b, "threadId"), str(b, "runId"), "completed")
		if resultText(done) != "unblocked" {
			t.Fatalf("held run: %s", done.raw)
		}
	}
	if r := a.post(t, "/webhook/limited", `{"text":"free again"}`); r.status != 202 {
		t.Fatalf("after the runs finished: %d %s", r.status, r.raw)
	}
}

// Texts are bounded by what they cost encoded: 300 KB of markup (one byte each in the queue
// message and the events) makes it through SQS and DynamoDB; 100 KB of control characters (six
// bytes each) is refused with 413 before anything is stored.
func TestAdapterLargeTextsFit(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	text := strings.Repeat("<b>&amp;</b>", 25_000) // 300,000 bytes
	body, _ := json.Marshal(map[string]any{"text": text, "sync": true, "timeoutMs": 25000})
	r := a.post(t, "/webhook/default", string(body))
	if r.status != 200 || str(r.body, "status") != "completed" || resultText(r) != text {
		t.Fatalf("%d %.300s", r.status, r.raw)
	}
	waitFor(t, "the reply's message.sent", 20*time.Second, func() bool {
		return len(eventsAbout(t, a.env, str(r.body, "runId"))["message.sent"]) == 1
	})
	body, _ = json.Marshal(map[string]any{"text": strings.Repeat("\x01", 100_000)})
	if r := a.post(t, "/webhook/default", string(body)); r.status != 413 {
		t.Fatalf("control characters: %d %.300s", r.status, r.raw)
	}
}
