package doors

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/sources"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/verify"
)

// The fakes below stand in for DynamoDB and SQS so that the doors' own logic can be driven
// step by step on a fake clock; local/e2e/doors_test.go runs the same doors against the
// emulators.

// The secrets the samples in events/ are made with (see events/*.json).
const (
	devInboundSecret = "dev-inbound-secret"
	devTelegramToken = "dev-telegram-secret-token"
	devStripeSecret  = "whsec_dev_stripe_signing_secret_0123"
)

// clock is a settable time source shared by the doors and the fakes.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// memStore is the doors' Store in memory: dedupe claims as store.ClaimDedupe makes them (the
// first claim within the window wins; later ones learn when the key was first seen) and role
// routes. Setting an error makes that call fail.
type memStore struct {
	mu       sync.Mutex
	now      func() time.Time
	claims   map[string]time.Time // workspace, scope, key → first seen
	queued   map[string]bool      // claims whose message was reported queued
	released []string
	routes   map[string][]store.RoleRoute

	claimErr, releaseErr, routesErr error
}

func newMemStore(now func() time.Time) *memStore {
	return &memStore{now: now, claims: map[string]time.Time{}, queued: map[string]bool{}, routes: map[string][]store.RoleRoute{}}
}

func claimKey(ws, scope, key string) string { return ws + "|" + scope + "|" + key }

func (s *memStore) ClaimDedupe(_ context.Context, ws, scope, key string, window time.Duration) (store.DedupeClaim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claimErr != nil {
		return store.DedupeClaim{}, s.claimErr
	}
	k, now := claimKey(ws, scope, key), s.now().UTC()
	if first, ok := s.claims[k]; ok && now.Before(first.Add(window)) {
		return store.DedupeClaim{FirstAt: first, Queued: s.queued[k]}, nil
	}
	s.claims[k] = now
	delete(s.queued, k)
	return store.DedupeClaim{Won: true, FirstAt: now}, nil
}

func (s *memStore) MarkDedupeQueued(_ context.Context, ws, scope, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := claimKey(ws, scope, key); s.claims[k] != (time.Time{}) {
		s.queued[k] = true
	}
	return nil
}

func (s *memStore) ReleaseDedupe(_ context.Context, ws, scope, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.releaseErr != nil {
		return s.releaseErr
	}
	k := claimKey(ws, scope, key)
	delete(s.claims, k)
	delete(s.queued, k)
	s.released = append(s.released, k)
	return nil
}

func (s *memStore) RoleRoutes(_ context.Context, ws string) ([]store.RoleRoute, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.routesErr != nil {
		return nil, s.routesErr
	}
	return s.routes[ws], nil
}

func (s *memStore) claimed(ws, scope, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.claims[claimKey(ws, scope, key)]
	return ok
}

// memSources is sources.Store in memory.
type memSources struct {
	mu   sync.Mutex
	srcs map[string]store.Source // workspace, name → source
}

func (m *memSources) put(src store.Source) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.srcs == nil {
		m.srcs = map[string]store.Source{}
	}
	m.srcs[src.WorkspaceID+"|"+src.Name] = src
}

func (m *memSources) GetSource(_ context.Context, ws, name string) (store.Source, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	src, ok := m.srcs[ws+"|"+name]
	if !ok {
		return store.Source{}, apierr.New(apierr.NotFound, "source not found")
	}
	return src, nil
}

// fifoSQS is the SQS API under the real queue.Sender, so the tests see the deduplication id,
// group and body the doors really send. Like a FIFO queue it drops a message whose
// deduplication id it accepted in the last five minutes.
type fifoSQS struct {
	mu       sync.Mutex
	now      func() time.Time
	err      error
	sends    []*sqs.SendMessageInput // every call, dropped or not
	accepted []queue.Inbound         // what the worker would receive, decoded as it decodes it
	seen     map[string]time.Time
}

const sqsFIFODedupe = 5 * time.Minute

func (q *fifoSQS) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sends = append(q.sends, in)
	if q.err != nil {
		return nil, q.err
	}
	if in.MessageGroupId == nil || *in.MessageGroupId == "" || in.MessageDeduplicationId == nil || *in.MessageDeduplicationId == "" {
		return nil, fmt.Errorf("MissingParameter: a FIFO queue needs MessageGroupId and MessageDeduplicationId")
	}
	id, now := *in.MessageDeduplicationId, q.now()
	if first, ok := q.seen[id]; ok && now.Sub(first) < sqsFIFODedupe {
		return &sqs.SendMessageOutput{}, nil // accepted and dropped, as SQS does
	}
	if q.seen == nil {
		q.seen = map[string]time.Time{}
	}
	q.seen[id] = now
	var m queue.Inbound
	if err := json.Unmarshal([]byte(*in.MessageBody), &m); err != nil {
		return nil, fmt.Errorf("fake SQS: body is not an inbound message: %w", err)
	}
	q.accepted = append(q.accepted, m)
	return &sqs.SendMessageOutput{}, nil
}

func (q *fifoSQS) counts() (sends, accepted int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.sends), len(q.accepted)
}

func (q *fifoSQS) fail(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.err = err
}

// harness is a set of doors over the fakes, configured as FromEnv configures them for the
// default workspace with the development secrets of the samples.
type harness struct {
	clock   *clock
	sources *memSources
	store   *memStore
	sqs     *fifoSQS
	doors   *Doors
}

func newHarness(t *testing.T, start time.Time) *harness {
	t.Helper()
	c := &clock{t: start}
	h := &harness{clock: c, sources: &memSources{}, store: newMemStore(c.now), sqs: &fifoSQS{now: c.now}}
	h.sources.put(store.Source{WorkspaceID: "default", Name: "stripe", Scheme: string(verify.Stripe), Secrets: []store.SigningSecret{{Value: devStripeSecret}}})
	res := sources.New(h.sources, 0, c.now, "default", StackSources([]string{devInboundSecret}, devTelegramToken)...)
	cfg := Config{DefaultWorkspace: "default", MaxBodyBytes: MaxStoredBody, DedupeWindow: 72 * time.Hour, IDs: testIDs}
	h.doors = New(cfg, res, h.store, queue.NewSender(h.sqs, "https://sqs.us-east-1.amazonaws.com/000000000000/InboundQueue.fifo"),
		slog.New(slog.DiscardHandler), c.now)
	return h
}

type handlerFunc = HandlerFunc

// testIDs is the id key of the tests' doors.
var testIDs = ids.NewKeyed("test-id-derivation-key")

// reply is a door's response.
type reply struct {
	status int
	header map[string]string
	body   map[string]any
	raw    string
}

func (r reply) errorCode() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// invoke pushes req through the Lambda runtime's decoding to handler, as Lambda does.
func invoke(t *testing.T, handler handlerFunc, req events.APIGatewayV2HTTPRequest) reply {
	t.Helper()
	raw, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	out, err := lambda.NewHandler(handler).Invoke(context.Background(), raw)
	if err != nil {
		t.Fatalf("handler returned an error (API Gateway would answer 500): %v", err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Headers, raw: resp.Body}
	if err := json.Unmarshal([]byte(resp.Body), &r.body); err != nil {
		t.Fatalf("response body %q is not JSON: %v", resp.Body, err)
	}
	return r
}

// sample reads events/<name> as Lambda would receive it.
func sample(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := os.ReadFile("../../events/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var req events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatalf("events/%s: %v", name, err)
	}
	return req
}

// sampleTime is when a sample was sent (its requestContext.timeEpoch).
func sampleTime(req events.APIGatewayV2HTTPRequest) time.Time {
	return time.UnixMilli(req.RequestContext.TimeEpoch).UTC()
}

// signStripe signs req's body as Stripe does at time at: stripe-signature t=<unix>,v1=<hex of
// HMAC-SHA256(secret, "<unix>.<body>")>. It is the test's own signer, independent of shared/verify.
func signStripe(req *events.APIGatewayV2HTTPRequest, secret string, at time.Time) {
	ts := strconv.FormatInt(at.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + req.Body))
	req.Headers["stripe-signature"] = fmt.Sprintf("t=%s,v1=%x", ts, m.Sum(nil))
}

// hmacHex is the x-hookgate-signature value for body.
func hmacHex(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return fmt.Sprintf("sha256=%x", m.Sum(nil))
}
