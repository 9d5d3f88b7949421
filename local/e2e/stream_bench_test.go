package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/local/ssetest"
	"github.com/hookgate/hookgate/local/stack"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/store"
)

// deliverySamples is how many events each sub-benchmark times.
const deliverySamples = 40

// BenchmarkEventDelivery measures how long a new event takes to reach a reader that is connected
// and waiting: from just before its append (so the commit is included) to the moment the reader
// has parsed it. stream is GET /v1/events/stream through the local HTTP API, with the template's
// window (20 s) and poll interval (200 ms); baseline is a reader polling Store.ListEvents at the
// same interval in this process: the latency polling itself costs, without Lambda, HTTP or SSE.
// Events are appended at random moments, so they land anywhere in a poll's interval. ns/op is the
// median; p50-ms and p90-ms are reported too.
func BenchmarkEventDelivery(b *testing.B) {
	st := benchStack(b)
	cfg, err := awscfg.Load(context.Background(), func(k string) string {
		return map[string]string{awscfg.EnvDynamoEndpoint: st.DynamoEndpoint}[k]
	})
	if err != nil {
		b.Fatal(err)
	}
	s := store.New(cfg.DynamoDB(), st.Tables["Table"], time.Now)
	poll := 200 * time.Millisecond

	b.Run("baseline", func(b *testing.B) {
		measureDelivery(b, s, func(ctx context.Context, ws string, got func(id string)) {
			var after int64
			for ctx.Err() == nil {
				evs, err := s.ListEvents(ctx, ws, after, 100)
				if err == nil {
					for _, e := range evs {
						got(e.ID)
						after = e.Cursor
					}
				}
				select {
				case <-ctx.Done():
				case <-time.After(poll):
				}
			}
		})
	})
	b.Run("stream", func(b *testing.B) {
		measureDelivery(b, s, func(ctx context.Context, ws string, got func(id string)) {
			lastID := "now"
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, st.URL+"/v1/events/stream", nil)
				req.Header.Set("X-API-Key", st.Params["AdminApiKey"])
				req.Header.Set("Last-Event-ID", lastID)
				resp, err := apiClient(b).Do(req)
				if err != nil {
					continue
				}
				rd := ssetest.NewReader(resp.Body, lastID)
				for {
					ev, err := rd.Next()
					if err != nil {
						break
					}
					var env struct{ ID string }
					if json.Unmarshal([]byte(ev.Data), &env) == nil {
						got(env.ID)
					}
				}
				if rd.LastEventID != "" {
					lastID = rd.LastEventID
				}
				resp.Body.Close()
			}
		})
	})
}

// measureDelivery appends deliverySamples events to the default workspace (the admin key's), each
// at a random moment after the previous one arrived, while follow reads them and calls got with
// each event's id.
func measureDelivery(b *testing.B, s *store.Store, follow func(ctx context.Context, ws string, got func(id string))) {
	ws := "default"
	var lat []time.Duration
	for range b.N {
		ctx, cancel := context.WithCancel(context.Background())
		var mu sync.Mutex
		sent := map[string]time.Time{}
		arrived := make(chan string, deliverySamples)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			follow(ctx, ws, func(id string) {
				mu.Lock()
				defer mu.Unlock()
				if t0, ok := sent[id]; ok {
					lat = append(lat, time.Since(t0))
					delete(sent, id)
					arrived <- id
				}
			})
		}()
		time.Sleep(time.Second) // the reader is connected and waiting
		for i := range deliverySamples {
			time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond)
			id := fmt.Sprintf("evt_bench_%d_%d", time.Now().UnixNano(), i)
			mu.Lock()
			sent[id] = time.Now()
			mu.Unlock()
			if _, err := s.AppendEvent(ctx, store.Event{ID: id, Type: "bench.delivered", WorkspaceID: ws}); err != nil {
				b.Fatal(err)
			}
			select {
			case <-arrived:
			case <-time.After(10 * time.Second):
				b.Fatalf("event %d did not arrive within 10 s", i)
			}
		}
		cancel()
		wg.Wait()
	}
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	b.ReportMetric(float64(p(0.5).Nanoseconds()), "ns/op")
	b.ReportMetric(float64(p(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p(0.9).Microseconds())/1000, "p90-ms")
}

// benchStack starts a stack with the template's own stream settings.
func benchStack(b *testing.B) *stack.Stack {
	b.Helper()
	root, _ := filepath.Abs("../..")
	bin := os.Getenv("HOOKGATE_BIN_DIR")
	if bin == "" {
		cmd := exec.Command("make", "-s", "bootstraps")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("make bootstraps: %v\n%s", err, out)
		}
		bin = filepath.Join(root, ".build", runtime.GOARCH)
	}
	s, err := stack.Start(context.Background(), stack.Options{
		Root: root, BinDir: bin, Addr: "127.0.0.1:0",
		DynamoEndpoint: emulatortest.Dynamo(b), SQSEndpoint: emulatortest.SQS(b), KMSEndpoint: emulatortest.KMS(b),
		Params: map[string]string{"AdminApiKey": adminKey}, Prefix: fmt.Sprintf("bench%d-", time.Now().UnixNano()%1e9),
		FunctionLog: io.Discard,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}
