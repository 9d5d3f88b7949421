package e2e_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Approvals prove who approves (issue 11, class 4): approve and deny take an approver's signed,
// expiring decision token from the run.requires_approval event, bound to the run, the approval
// request, the approver, the decision and the option; the adapter's secret and a user name decide
// nothing. Callbacks are signed with their own secret, not the adapter's. Tokens and callback
// secrets are computed here independently, with the documented formulas.

const approvalKey = "test-approval-signing-key-0123" // the adapter stack's ApprovalSigningKey

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func hmacSHA256(key, msg string) []byte {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// signToken makes a decision token as the README documents it: base64url(payload) "."
// base64url(HMAC-SHA256(key, payload)), payload the JSON array ["v1", workspace, run id,
// approval id, approver, decision, option, expiry in unix seconds].
func signToken(key, run, approvalID, approver, decision, option string, expires time.Time) string {
	p, _ := json.Marshal([]any{"v1", "default", run, approvalID, approver, decision, option, expires.Unix()})
	return b64url(p) + "." + b64url(hmacSHA256(key, string(p)))
}

// opsCallbackSecret is the ops adapter's derived callback secret: "whsec_" +
// base64(HMAC-SHA256(ApprovalSigningKey, "hookgate-callback-v1\x00" + workspace + "\x00" + adapter)).
func opsCallbackSecret() string {
	return "whsec_" + base64.StdEncoding.EncodeToString(hmacSHA256(approvalKey, "hookgate-callback-v1\x00default\x00ops"))
}

type decisionLink struct {
	Approver, Decision, Option, Token, Path string
}

// decisionToken waits for the run.requires_approval event of the approval request and returns
// its token for the approver, decision and option.
func decisionToken(t *testing.T, a *adapterEnv, run, approvalID, approver, decision, option string) string {
	t.Helper()
	var tok string
	waitFor(t, "the decision token in run.requires_approval", 20*time.Second, func() bool {
		for _, ev := range eventsAbout(t, a.env, run)["run.requires_approval"] {
			var d struct {
				ApprovalID string `json:"approval_id"`
				Decisions  []decisionLink
			}
			if json.Unmarshal(ev.Data, &d) != nil || d.ApprovalID != approvalID {
				continue
			}
			for _, l := range d.Decisions {
				if l.Approver == approver && l.Decision == decision && l.Option == option {
					if !strings.HasSuffix(l.Path, "/"+decision+"?token="+l.Token) {
						t.Fatalf("decision link %+v", l)
					}
					tok = l.Token
					return true
				}
			}
		}
		return false
	})
	return tok
}

// decide posts a decision with a token in the query, without the adapter's secret.
func (a *adapterEnv) decide(t *testing.T, path, token, body string) reply {
	t.Helper()
	return do(t, http.MethodPost, a.stack.URL+path+"?token="+url.QueryEscape(token), map[string]string{"content-type": "application/json"}, body)
}

// swapSignature puts the signature of one token on the payload of another.
func swapSignature(payloadOf, signatureOf string) string {
	p, _, _ := strings.Cut(payloadOf, ".")
	_, sig, _ := strings.Cut(signatureOf, ".")
	return p + "." + sig
}

// waitingRun starts an ops run whose agent asks for approval and waits until it does.
func waitingRun(t *testing.T, a *adapterEnv, text string) (base, run, approvalID string) {
	t.Helper()
	start := a.post(t, "/webhook/ops", `{"text":"`+text+`","user":"alice"}`)
	if start.status != 202 {
		t.Fatalf("start: %d %s", start.status, start.raw)
	}
	w := a.waitStatus(t, "ops", str(start.body, "threadId"), str(start.body, "runId"), "waiting_approval")
	ap, _ := w.body["approval"].(map[string]any)
	run = str(start.body, "runId")
	return "/webhook/ops/threads/" + str(start.body, "threadId") + "/runs/" + run, run, str(ap, "id")
}

// stillWaiting asserts that nothing was decided: the run waits on the same request, no decision
// event was recorded and the agent heard of none.
func stillWaiting(t *testing.T, a *adapterEnv, base, run, approvalID string) {
	t.Helper()
	r := do(t, http.MethodGet, a.stack.URL+base, map[string]string{"authorization": "Bearer " + adapterSecret}, "")
	ap, _ := r.body["approval"].(map[string]any)
	if str(r.body, "status") != "waiting_approval" || str(ap, "id") != approvalID || str(ap, "decision") != "" {
		t.Fatalf("the run was decided: %s", r.raw)
	}
	evs := eventsAbout(t, a.env, run)
	if n := len(evs["run.approved"]) + len(evs["run.denied"]); n != 0 {
		t.Fatalf("%d decision events were recorded", n)
	}
	a.agent.mu.Lock()
	defer a.agent.mu.Unlock()
	if a.agent.decisions[run] != 0 {
		t.Fatalf("the agent was told of %d decisions", a.agent.decisions[run])
	}
}

// The adapter's Bearer secret with a user of the caller's choosing — an approver's name, or the
// run's own user — approves and denies nothing.
func TestApprovalByANonApproverIsRefused(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	base, run, approvalID := waitingRun(t, a, "approve")
	for _, c := range []struct{ action, body string }{
		{"approve", `{"user":"boss","option":"refund"}`},
		{"approve", `{"user":"alice","option":"refund"}`},
		{"deny", `{"user":"boss"}`},
	} {
		r := a.post(t, base+"/"+c.action, c.body)
		if r.status != 403 || r.errorCode() != "forbidden" {
			t.Fatalf("%s %s with the adapter's secret: %d %s", c.action, c.body, r.status, r.raw)
		}
	}
	stillWaiting(t, a, base, run, approvalID)
}

// Forged, expired, another run's, another decision's and another option's tokens are refused,
// even when the caller also holds the adapter's secret and names an approver.
func TestApprovalRefusesForgedExpiredAndMisboundTokens(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	base, run, approvalID := waitingRun(t, a, "approve")
	_, otherRun, otherApproval := waitingRun(t, a, "approve")
	later := time.Now().Add(time.Hour)
	cases := map[string]struct{ action, token, body, message string }{
		"forged":             {"approve", signToken("not-the-stack-key-0123456", run, approvalID, "boss", "approve", "refund", later), "", "decision token is invalid"},
		"deny's signature":   {"approve", swapSignature(decisionToken(t, a, run, approvalID, "boss", "approve", "refund"), decisionToken(t, a, run, approvalID, "boss", "deny", "")), "", "decision token is invalid"},
		"expired":            {"approve", signToken(approvalKey, run, approvalID, "boss", "approve", "refund", time.Now().Add(-time.Minute)), "", "decision token has expired"},
		"another run's":      {"approve", decisionToken(t, a, otherRun, otherApproval, "boss", "approve", "refund"), "", "decision token is not for this run"},
		"deny's, to approve": {"approve", decisionToken(t, a, run, approvalID, "boss", "deny", ""), "", "decision token is for deny, not approve"},
		"approve's, to deny": {"deny", decisionToken(t, a, run, approvalID, "boss", "approve", "refund"), "", "decision token is for approve, not deny"},
		"another option":     {"approve", decisionToken(t, a, run, approvalID, "boss", "approve", "refuse"), `{"user":"boss","option":"refund"}`, "decision token is for another option"},
		"not an approver":    {"approve", signToken(approvalKey, run, approvalID, "mallory", "approve", "refund", later), "", "decision token's approver may not decide this request"},
	}
	for name, c := range cases {
		// With the adapter's secret and an approver's name too: the token decides, and it is bad.
		body := c.body
		if body == "" {
			body = `{"user":"boss"}`
		}
		r := do(t, http.MethodPost, a.stack.URL+base+"/"+c.action+"?token="+url.QueryEscape(c.token),
			map[string]string{"authorization": "Bearer " + adapterSecret, "content-type": "application/json"}, body)
		if r.status != 403 || !strings.Contains(r.raw, c.message) {
			t.Errorf("%s: %d %s, want 403 %q", name, r.status, r.raw, c.message)
		}
	}
	stillWaiting(t, a, base, run, approvalID)
}

// The right token approves, once: a replay answers the same and tells the agent nothing more, and
// the run's other tokens no longer decide anything.
func TestApprovalTokenApprovesExactlyOnce(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	base, run, approvalID := waitingRun(t, a, "approve")
	tok := decisionToken(t, a, run, approvalID, "boss", "approve", "refund")
	first := a.decide(t, base+"/approve", tok, `{"comment":"go"}`)
	ap, _ := first.body["approval"].(map[string]any)
	if first.status != 200 || str(ap, "decidedBy") != "boss" || str(ap, "option") != "refund" || str(ap, "id") != approvalID {
		t.Fatalf("approve: %d %s", first.status, first.raw)
	}
	if again := a.decide(t, base+"/approve", tok, ""); again.status != 200 {
		t.Fatalf("replay: %d %s", again.status, again.raw)
	}
	done := a.waitStatus(t, "ops", strings.Split(base, "/")[4], run, "completed")
	if resultText(done) != "done, as refund" {
		t.Fatalf("approved run: %s", done.raw)
	}
	for _, c := range []struct{ action, option string }{{"approve", "refuse"}, {"deny", ""}} {
		if r := a.decide(t, base+"/"+c.action, decisionToken(t, a, run, approvalID, "boss", c.action, c.option), ""); r.status != 409 {
			t.Fatalf("%s after the approval: %d %s", c.action, r.status, r.raw)
		}
	}
	if r := a.decide(t, base+"/approve", tok, ""); r.status != 200 {
		t.Fatalf("replay after completion: %d %s", r.status, r.raw)
	}
	evs := eventsAbout(t, a.env, run)
	a.agent.mu.Lock()
	told := a.agent.decisions[run]
	a.agent.mu.Unlock()
	if len(evs["run.approved"]) != 1 || len(evs["run.denied"]) != 0 || len(evs["run.completed"]) != 1 || told != 1 {
		t.Fatalf("approved %d, denied %d, completed %d times; the agent was told %d times",
			len(evs["run.approved"]), len(evs["run.denied"]), len(evs["run.completed"]), told)
	}
}

// A run that asks for approval twice: the first request's decision, replayed late, does not
// answer the second.
func TestDecisionForTheFirstApprovalRequestDoesNotApproveTheSecond(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	base, run, first := waitingRun(t, a, "approve twice")
	tok := decisionToken(t, a, run, first, "boss", "approve", "refund")
	if r := a.decide(t, base+"/approve", tok, ""); r.status != 200 {
		t.Fatalf("approve the first: %d %s", r.status, r.raw)
	}
	var second string
	waitFor(t, "the second request for approval", 30*time.Second, func() bool {
		r := do(t, http.MethodGet, a.stack.URL+base, map[string]string{"authorization": "Bearer " + adapterSecret}, "")
		ap, _ := r.body["approval"].(map[string]any)
		second = str(ap, "id")
		return str(r.body, "status") == "waiting_approval" && second != first
	})
	if r := a.decide(t, base+"/approve", tok, ""); r.status != 409 {
		t.Fatalf("the first request's token on the second: %d %s", r.status, r.raw)
	}
	if r := a.decide(t, base+"/deny", decisionToken(t, a, run, first, "boss", "deny", ""), ""); r.status != 409 {
		t.Fatalf("the first request's deny token on the second: %d %s", r.status, r.raw)
	}
	r := do(t, http.MethodGet, a.stack.URL+base, map[string]string{"authorization": "Bearer " + adapterSecret}, "")
	ap, _ := r.body["approval"].(map[string]any)
	if str(r.body, "status") != "waiting_approval" || str(ap, "id") != second || str(ap, "decision") != "" || len(eventsAbout(t, a.env, run)["run.approved"]) != 1 {
		t.Fatalf("the second request was answered: %s", r.raw)
	}
	// Its own token answers it.
	if r := a.decide(t, base+"/approve", decisionToken(t, a, run, second, "boss", "approve", "refuse"), ""); r.status != 200 {
		t.Fatalf("approve the second: %d %s", r.status, r.raw)
	}
	if done := a.waitStatus(t, "ops", strings.Split(base, "/")[4], run, "completed"); resultText(done) != "done, as refuse" {
		t.Fatalf("run: %s", done.raw)
	}
}

// A callback verifies with the adapter's callback secret, and not with its Bearer secret.
func TestCallbackIsNotSignedWithTheAdaptersSecret(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	r := a.post(t, "/webhook/ops", fmt.Sprintf(`{"text":"sign it","replyUrl":%q}`, a.replies.srv.URL+"/signed"))
	if r.status != 202 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	var got *postedCallback
	waitFor(t, "the callback", 30*time.Second, func() bool {
		a.replies.mu.Lock()
		defer a.replies.mu.Unlock()
		for i, c := range a.replies.raw {
			var env struct{ Data struct{ RunID string } }
			if json.Unmarshal(c.body, &env) == nil && env.Data.RunID == str(r.body, "runId") {
				got = &a.replies.raw[i]
				return true
			}
		}
		return false
	})
	if hexOK, stdOK := signedBy(opsCallbackSecret(), got.header, got.body); !hexOK || !stdOK {
		t.Fatalf("the callback does not verify with the callback secret: X-Webhook-Signature %v, Webhook-Signature %v", hexOK, stdOK)
	}
	if hexOK, stdOK := signedBy(adapterSecret, got.header, got.body); hexOK || stdOK {
		t.Fatalf("the callback verifies with the adapter's Bearer secret: X-Webhook-Signature %v, Webhook-Signature %v", hexOK, stdOK)
	}
}

// Cancel stays with the adapter that started the run: another adapter of the workspace, with the
// same stack secret, cannot cancel it.
func TestCancelByAnotherAdapterIsRefused(t *testing.T) {
	inLane(t, laneAdapter)
	a := adapterStack(t)
	base, run, approvalID := waitingRun(t, a, "approve")
	if r := a.post(t, strings.Replace(base, "/webhook/ops/", "/webhook/limited/", 1)+"/cancel", `{"user":"alice"}`); r.status != 404 {
		t.Fatalf("another adapter cancelled: %d %s", r.status, r.raw)
	}
	stillWaiting(t, a, base, run, approvalID)
	if len(eventsAbout(t, a.env, run)["run.cancelled"]) != 0 {
		t.Fatal("a run.cancelled event was recorded")
	}
}
