package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// benchStore claims every attempt of any delivery id: the benchmark measures the handler and the
// signed POST, not DynamoDB (whose round trips are the same for any sender).
type benchStore struct {
	fakeStore
	payload json.RawMessage
}

func (b *benchStore) ClaimAttempt(_ context.Context, ws, id string, attempt int, _ time.Duration) (store.Delivery, bool, error) {
	return store.Delivery{ID: id, WorkspaceID: ws, SubscriptionID: "sub_1", EventID: "evt_" + id, EventType: "run.completed",
		Payload: b.payload, Status: store.DeliveryPending, Attempts: attempt}, true, nil
}

func (b *benchStore) RecordAttempt(context.Context, string, string, store.Attempt, string, *time.Time) error {
	return nil
}

// BenchmarkDeliveries: one op is a batch of 10 queue messages, each a 1 KB event POSTed to a
// loopback receiver (204). The handler (parse, claim, sign both schemes, SSRF-checked client,
// record) against a bare net/http client posting the same 10 bodies in parallel; target ≥ 0.7× the
// baseline's deliveries per second (≤ 1.43× its ns/op).
func BenchmarkDeliveries(b *testing.B) {
	const batch = 10
	payload, _ := json.Marshal(map[string]string{"pad": string(bytes.Repeat([]byte("x"), 1000))})
	var received atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		received.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	ctx := context.Background()

	b.Run("baseline", func(b *testing.B) {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 16 // as the delivery client: the default 2 would redial each batch
		c := &http.Client{Transport: tr}
		defer c.CloseIdleConnections()
		b.ReportAllocs()
		for b.Loop() {
			var wg sync.WaitGroup
			for range batch {
				wg.Go(func() {
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, bytes.NewReader(payload))
					req.Header.Set("Content-Type", "application/json")
					resp, err := c.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				})
			}
			wg.Wait()
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "deliveries/s")
	})
	b.Run("handler", func(b *testing.B) {
		s, _ := outbound.ParseSchedule("")
		st := &benchStore{payload: payload}
		st.sub = store.Subscription{ID: "sub_1", WorkspaceID: "ws", URL: srv.URL, Status: "active", Secrets: []store.SigningSecret{{Value: outbound.NewSecret()}}}
		c := outbound.NewClient(outbound.ClientOptions{AllowPrivate: true})
		defer c.CloseIdleConnections()
		post := func(ctx context.Context, r outbound.Request) outbound.Result {
			return outbound.Post(ctx, c, UserAgent, r)
		}
		h := New(Config{Schedule: s, Lease: time.Minute}, st, &fakeQueue{}, post, slog.New(slog.DiscardHandler), time.Now)
		ev := events.SQSEvent{}
		for i := range batch {
			body, _ := json.Marshal(queue.Delivery{Version: queue.DeliveryVersion, WorkspaceID: "ws", DeliveryID: fmt.Sprintf("dlv_%d", i)})
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprint(i), Body: string(body)})
		}
		before := received.Load()
		b.ReportAllocs()
		for b.Loop() {
			if resp, _ := h.Handle(ctx, ev); len(resp.BatchItemFailures) != 0 {
				b.Fatalf("failures %v", resp.BatchItemFailures)
			}
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "deliveries/s")
		if got := received.Load() - before; got != int64(b.N*batch) {
			b.Fatalf("receiver got %d deliveries, want %d", got, b.N*batch)
		}
	})
}

// limitedStore admits every attempt at once through the fake limiter's calls (a rate lane that is
// never ahead, a free slot), each call taking rtt as a DynamoDB round trip would; so do the claim
// and the record.
type limitedStore struct {
	benchStore
	rtt time.Duration
}

func (l *limitedStore) wait() {
	if l.rtt > 0 {
		time.Sleep(l.rtt)
	}
}

func (l *limitedStore) ClaimAttempt(ctx context.Context, ws, id string, attempt int, lease time.Duration) (store.Delivery, bool, error) {
	l.wait()
	return l.benchStore.ClaimAttempt(ctx, ws, id, attempt, lease)
}

func (l *limitedStore) RecordAttempt(context.Context, string, string, store.Attempt, string, *time.Time) error {
	l.wait()
	return nil
}

func (l *limitedStore) ReservePace(_ context.Context, _ store.Pace, ref time.Time, _ time.Duration) (time.Time, bool, error) {
	l.wait()
	return ref, true, nil
}

func (l *limitedStore) TakeInFlight(_ context.Context, _, _ string, _ int, holder string, _ time.Duration) (store.SlotRef, error) {
	l.wait() // the put of a free slot (the store tries one at random first)
	return store.SlotRef{PK: "p", SK: holder}, nil
}

func (l *limitedStore) ReleaseInFlight(context.Context, store.SlotRef, string) error {
	l.wait()
	return nil
}

// BenchmarkDeliveryLimits: the delivery handler's throughput for a subscription with a rate limit
// and max_in_flight against the same subscription without (same batches of 10 1 KB events to a
// loopback receiver, same run); target ≥ 0.8× (≤ 1.25× the baseline's ns/op). The store answers
// at once, as in BenchmarkDeliveries: this is the handler's own cost.
func BenchmarkDeliveryLimits(b *testing.B) { benchLimits(b, 0) }

// BenchmarkDeliveryLimitsRTT is BenchmarkDeliveryLimits with a 1 ms round trip on every store
// call, as DynamoDB's: a limited delivery makes more of them (the rate lane's write, the slot's
// put, and its delete alongside the record), which its latency shows.
func BenchmarkDeliveryLimitsRTT(b *testing.B) { benchLimits(b, time.Millisecond) }

func benchLimits(b *testing.B, rtt time.Duration) {
	const batch = 10
	payload, _ := json.Marshal(map[string]string{"pad": string(bytes.Repeat([]byte("x"), 1000))})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	ev := events.SQSEvent{}
	for i := range batch {
		body, _ := json.Marshal(queue.Delivery{Version: queue.DeliveryVersion, WorkspaceID: "ws", DeliveryID: fmt.Sprintf("dlv_%d", i)})
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprint(i), Body: string(body)})
	}
	run := func(b *testing.B, limited bool, rtt time.Duration) {
		s, _ := outbound.ParseSchedule("")
		st := &limitedStore{benchStore: benchStore{payload: payload}, rtt: rtt}
		st.sub = store.Subscription{ID: "sub_1", WorkspaceID: "ws", URL: srv.URL, Status: "active", Secrets: []store.SigningSecret{{Value: outbound.NewSecret()}}}
		if limited {
			st.sub.RateLimit, st.sub.MaxInFlight = &store.RateLimit{PerSecond: 500, Burst: 1000}, 100
		}
		c := outbound.NewClient(outbound.ClientOptions{AllowPrivate: true})
		defer c.CloseIdleConnections()
		post := func(ctx context.Context, r outbound.Request) outbound.Result {
			return outbound.Post(ctx, c, UserAgent, r)
		}
		h := New(Config{Schedule: s, Lease: time.Minute, Circuit: DefaultCircuit}, st, &fakeQueue{}, post, slog.New(slog.DiscardHandler), time.Now)
		b.ReportAllocs()
		for b.Loop() {
			if resp, _ := h.Handle(context.Background(), ev); len(resp.BatchItemFailures) != 0 {
				b.Fatalf("failures %v", resp.BatchItemFailures)
			}
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "deliveries/s")
	}
	b.Run("baseline", func(b *testing.B) { run(b, false, rtt) })
	b.Run("limited", func(b *testing.B) { run(b, true, rtt) })
}
