package doors

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/verify"
)

// The inbound function's queue stalls (it accepts connections and never answers): the door answers
// the documented 503 inside the function's 10 s timeout, through the real SDK client with
// awscfg's budget, instead of running into the timeout (which API Gateway turns into a 500).
func TestGenericAnswers503WhenTheQueueStalls(t *testing.T) {
	var requests atomic.Int32
	done := make(chan struct{})
	stalled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select { // never answers
		case <-r.Context().Done():
		case <-done:
		}
	}))
	defer stalled.Close()
	defer close(done)
	cfg, err := awscfg.Load(context.Background(), func(k string) string {
		if k == awscfg.EnvSQSEndpoint {
			return stalled.URL
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	h := NewGeneric(GenericConfig{Workspace: "default", MaxBodyBytes: 1_000_000, Secrets: verify.NewSecrets(genericSecret), IDs: testIDs},
		queue.NewSender(cfg.SQS(), stalled.URL+"/000000000000/inbound.fifo"), slog.New(slog.NewJSONHandler(io.Discard, nil)), time.Now)

	const functionTimeout = 10 * time.Second // InboundGenericFunction's Timeout
	ctx, cancel := context.WithTimeout(context.Background(), functionTimeout)
	defer cancel()
	resp, err := h.Handle(ctx, genericSample(t))
	if ctx.Err() != nil {
		t.Fatalf("the handler returned after the function's timeout: %v", ctx.Err())
	}
	if err != nil {
		t.Fatalf("handler error (a 500): %v", err)
	}
	var body struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal([]byte(resp.Body), &body)
	if resp.StatusCode != http.StatusServiceUnavailable || body.Error.Code != "unavailable" {
		t.Fatalf("status %d body %s, want 503 unavailable", resp.StatusCode, resp.Body)
	}
	if n := requests.Load(); n < 1 || n > awscfg.MaxAttempts {
		t.Fatalf("the queue got %d requests, want 1 to %d", n, awscfg.MaxAttempts)
	}
}
