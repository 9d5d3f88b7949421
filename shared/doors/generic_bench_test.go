package doors

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/verify"
)

// nopQueue is the in-process fake of the queue interface the benchmark queues to.
type nopQueue struct{ n int }

func (q *nopQueue) SendInbound(_ context.Context, m *queue.Inbound) error {
	if _, err := json.Marshal(m); err != nil { // the real sender encodes the message too
		return err
	}
	q.n++
	return nil
}

func benchEvent(b *testing.B) events.APIGatewayV2HTTPRequest {
	ev := genericSample(b)
	delete(ev.Headers, "x-hookgate-inbound-secret")
	ev.Headers["x-hookgate-signature"] = signGeneric(ev.Body)
	return ev
}

// benchHandler: API Gateway v2 event in, verified, validated, queued to the fake, genericResponse out.
func benchHandler(b *testing.B) {
	ev := benchEvent(b)
	h := NewGeneric(GenericConfig{Workspace: "default", MaxBodyBytes: 1_000_000, Secrets: verify.NewSecrets(genericSecret), IDs: testIDs}, &nopQueue{},
		slog.New(slog.NewJSONHandler(io.Discard, nil)), time.Now)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, _ := h.Handle(ctx, ev)
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
		}
	}
}

// benchBaseline: a plain net/http handler doing HMAC + JSON decode of the same body.
func benchBaseline(b *testing.B) {
	ev := benchEvent(b)
	sig := ev.Headers["x-hookgate-signature"]
	secrets := verify.NewSecrets(genericSecret)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !secrets.VerifyHMAC(body, r.Header.Get("X-Hookgate-Signature")) {
			http.Error(w, "bad", http.StatusUnauthorized)
			return
		}
		var req genericRequest
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/v1/inbound/generic", strings.NewReader(ev.Body))
		r.Header.Set("X-Hookgate-Signature", sig)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkInbound measures the handler path against its baseline in the same run; `make bench`
// prints handler/baseline ratios (targets: ≤ 1.5× ns/op, ≤ 40 allocs/op).
func BenchmarkInbound(b *testing.B) {
	b.Run("baseline", benchBaseline)
	b.Run("handler", benchHandler)
}
