package doors

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/verify"
)

const genericSecret = "dev-inbound-secret"

// fakeQueue records what is queued; a fake is fine here because the real SQS path is covered by
// the local-stack integration tests.
type fakeQueue struct {
	mu   sync.Mutex
	sent []queue.Inbound
	err  error
}

func (q *fakeQueue) SendInbound(_ context.Context, m *queue.Inbound) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.sent = append(q.sent, *m)
	return nil
}

func genericSample(t testing.TB) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := os.ReadFile("../../events/inbound-generic.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

type genericResponse struct {
	status int
	body   map[string]any
	raw    string
}

// invoke pushes the event through the real Lambda handler decoding, as the runtime does.
func invokeGeneric(t *testing.T, q Queue, ev events.APIGatewayV2HTTPRequest) genericResponse {
	t.Helper()
	h := NewGeneric(GenericConfig{Workspace: "default", MaxBodyBytes: 1_000_000, Secrets: verify.NewSecrets(genericSecret), IDs: testIDs}, q,
		slog.New(slog.NewJSONHandler(io.Discard, nil)), func() time.Time { return time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC) })
	raw, _ := json.Marshal(ev)
	out, err := lambda.NewHandler(h.Handle).Invoke(context.Background(), raw)
	if err != nil {
		t.Fatalf("handler returned an error (would be a 500): %v", err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	r := genericResponse{status: resp.StatusCode, raw: resp.Body}
	if err := json.Unmarshal([]byte(resp.Body), &r.body); err != nil {
		t.Fatalf("body %q is not JSON: %v", resp.Body, err)
	}
	return r
}

func signGeneric(body string) string {
	m := hmac.New(sha256.New, []byte(genericSecret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func TestAcceptsTheSampleEvent(t *testing.T) {
	q := &fakeQueue{}
	r := invokeGeneric(t, q, genericSample(t))
	if r.status != 202 {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	if len(q.sent) != 1 {
		t.Fatalf("queued %d messages", len(q.sent))
	}
	m := q.sent[0]
	if m.Channel != "email" || m.ExternalID != "alice@example.com" || m.Text != "Hello, agent" || m.User != "alice" || m.WorkspaceID != "default" {
		t.Fatalf("queued %+v", m)
	}
	if r.body["thread_id"] != m.ThreadID || r.body["message_id"] != m.MessageID || r.body["run_id"] != m.RunID {
		t.Fatalf("response %v does not match queued ids %+v", r.body, m)
	}
	if m.ThreadID != testIDs.Thread("default", "email", "alice@example.com") || !ids.Valid("msg", m.MessageID) || !ids.Valid("run", m.RunID) {
		t.Fatalf("bad ids %+v", m)
	}
}

func TestHMACSignatureAccepted(t *testing.T) {
	ev := genericSample(t)
	delete(ev.Headers, "x-hookgate-inbound-secret")
	ev.Headers["x-hookgate-signature"] = signGeneric(ev.Body)
	if r := invokeGeneric(t, &fakeQueue{}, ev); r.status != 202 {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	// The signature covers the raw bytes: base64-delivered bodies verify after decoding.
	ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(ev.Body)), true
	if r := invokeGeneric(t, &fakeQueue{}, ev); r.status != 202 {
		t.Fatalf("base64 body: status %d: %s", r.status, r.raw)
	}
}

func TestRefusals(t *testing.T) {
	type mut func(ev *events.APIGatewayV2HTTPRequest)
	body := func(b string) mut {
		return func(ev *events.APIGatewayV2HTTPRequest) { ev.Body = b }
	}
	tests := []struct {
		name    string
		mutate  mut
		status  int
		message string
	}{
		{"wrong secret", func(ev *events.APIGatewayV2HTTPRequest) {
			ev.Headers["x-hookgate-inbound-secret"] = "dev-inbound-secreT"
		}, 401, "invalid secret"},
		{"no credentials", func(ev *events.APIGatewayV2HTTPRequest) { delete(ev.Headers, "x-hookgate-inbound-secret") }, 401, "missing credentials"},
		{"signature of another body", func(ev *events.APIGatewayV2HTTPRequest) {
			delete(ev.Headers, "x-hookgate-inbound-secret")
			ev.Headers["x-hookgate-signature"] = signGeneric(ev.Body + " ")
		}, 401, "invalid signature"},
		{"bad signature wins over a good secret", func(ev *events.APIGatewayV2HTTPRequest) { ev.Headers["x-hookgate-signature"] = "sha256=00" }, 401, "invalid signature"},
		{"invalid json", body(`{"channel":`), 400, "not valid JSON"},
		{"array", body(`[1,2]`), 400, "JSON object"},
		{"empty", body(``), 400, "JSON object"},
		{"wrong type", body(`{"channel":"c","external_id":7,"text":"x"}`), 400, "wrong type"},
		{"missing channel", body(`{"external_id":"e","text":"x"}`), 400, "channel is required"},
		{"missing external_id", body(`{"channel":"c","text":"x"}`), 400, "external_id is required"},
		{"missing text", body(`{"channel":"c","external_id":"e"}`), 400, "text is required"},
		{"blank text", body(`{"channel":"c","external_id":"e","text":" \n\t "}`), 400, "text is required"},
		{"control chars in channel", body(`{"channel":"c\u0000","external_id":"e","text":"x"}`), 400, "channel must be"},
		{"data not an object", body(`{"channel":"c","external_id":"e","text":"x","data":[1]}`), 400, "data must be a JSON object"},
		{"over the limit", body(`{"channel":"c","external_id":"e","text":"` + strings.Repeat("x", 1_000_000) + `"}`), 413, "larger than"},
		{"too much to store", body(`{"channel":"c","external_id":"e","text":"` + strings.Repeat("x", 400_000) + `"}`), 413, "at most"},
		{"key too long", func(ev *events.APIGatewayV2HTTPRequest) { ev.Headers["idempotency-key"] = strings.Repeat("k", 256) }, 400, "idempotency key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := genericSample(t)
			tt.mutate(&ev)
			q := &fakeQueue{}
			r := invokeGeneric(t, q, ev)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.raw)
			}
			e, _ := r.body["error"].(map[string]any)
			if msg, _ := e["message"].(string); !strings.Contains(msg, tt.message) || e["code"] == "" {
				t.Fatalf("error body %s lacks %q", r.raw, tt.message)
			}
			if len(q.sent) != 0 {
				t.Fatalf("a refused request was queued: %+v", q.sent)
			}
		})
	}
}

func TestQueueDownIs503WithoutDetails(t *testing.T) {
	q := &fakeQueue{err: errors.New("dial tcp 127.0.0.1:9324: connection refused")}
	r := invokeGeneric(t, q, genericSample(t))
	if r.status != 503 {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	if strings.Contains(r.raw, "9324") || strings.Contains(r.raw, "refused") {
		t.Fatalf("503 body leaks the cause: %s", r.raw)
	}
}

func TestIdempotencyKeyGivesTheSameIds(t *testing.T) {
	q := &fakeQueue{}
	ev := genericSample(t)
	ev.Headers["idempotency-key"] = "order-42"
	a, b := invokeGeneric(t, q, ev), invokeGeneric(t, q, ev)
	if a.status != 202 || b.status != 202 {
		t.Fatalf("statuses %d %d", a.status, b.status)
	}
	if a.body["run_id"] != b.body["run_id"] || a.body["message_id"] != b.body["message_id"] {
		t.Fatalf("ids differ: %v vs %v", a.body, b.body)
	}
	// event_id in the body works the same way as the header.
	ev2 := genericSample(t)
	ev2.Body = `{"channel":"email","external_id":"alice@example.com","text":"Hello, agent","event_id":"order-42"}`
	if c := invokeGeneric(t, q, ev2); c.body["run_id"] != a.body["run_id"] {
		t.Fatalf("event_id gave %v, header gave %v", c.body["run_id"], a.body["run_id"])
	}
	// Without a key every post is a new run.
	d, e := invokeGeneric(t, q, genericSample(t)), invokeGeneric(t, q, genericSample(t))
	if d.body["run_id"] == e.body["run_id"] {
		t.Fatal("two posts without a key got one run id")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"channel":"c","external_id":"e","text":"x","data":{"a":1}}`))
	f.Add([]byte(`{"channel":"","text":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte("{\"channel\":\"\xff\",\"external_id\":\"e\",\"text\":\"t\"}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseGeneric(body)
		if err != nil {
			return
		}
		if r.Channel == "" || r.ExternalID == "" || strings.TrimSpace(r.Text) == "" {
			t.Fatalf("accepted %q with a required field empty", body)
		}
		if len(r.Data) > 0 && !json.Valid(r.Data) {
			t.Fatalf("accepted invalid data %q", r.Data)
		}
	})
}

// A signed body's event_id decides its ids, whatever Idempotency-Key says: the header is not
// signed, so a replay of a captured request with another header is the same message again.
func TestBodyEventIDWinsOverTheHeader(t *testing.T) {
	q := &fakeQueue{}
	ev := genericSample(t)
	delete(ev.Headers, "x-hookgate-inbound-secret")
	ev.Body = `{"channel":"email","external_id":"alice@example.com","text":"Hello, agent","event_id":"order-42"}`
	ev.Headers["x-hookgate-signature"] = signGeneric(ev.Body)
	ev.Headers["idempotency-key"] = "first"
	a := invokeGeneric(t, q, ev)
	ev.Headers["idempotency-key"] = "replayed-with-another-key"
	b := invokeGeneric(t, q, ev)
	delete(ev.Headers, "idempotency-key")
	c := invokeGeneric(t, q, ev)
	if a.status != 202 || b.status != 202 || c.status != 202 {
		t.Fatalf("statuses %d %d %d", a.status, b.status, c.status)
	}
	want := testIDs.Derive("run", "default", "generic", "", "order-42")
	for _, r := range []genericResponse{a, b, c} {
		if r.body["run_id"] != want || r.body["message_id"] != testIDs.Derive("msg", "default", "generic", "", "order-42") {
			t.Fatalf("ids %v, want those of event_id order-42 (run %s)", r.body, want)
		}
	}
}
