package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/local/stack"
)

// burstMessages is the burst of BenchmarkBurstDrain: generic messages to one workspace.
const burstMessages = 2000

// burstTypes are the events each generic message of the burst leads to (its echo run's).
var burstTypes = []string{"message.received", "run.created", "message.sent", "run.completed"}

// cpuBound is the machine CPU utilisation over a drain above which the drain measures the
// machine, not the log: its ratio is not a shard result.
const cpuBound = 0.85

// BenchmarkBurstDrain posts a burst of 2,000 generic messages to one workspace with one `*`
// subscriber, and measures the time from the last 202 to the last of the 8,000 events (each
// message's burstTypes) reaching the subscriber: the fan-out draining the workspace's log. baseline
// is a log of one shard; shards-4 splits it in four (EventLogShards=4, and 4 virtual partitions of the stream, stack.EnvStreamPartitions, as AWS gives a busy table a stream shard per partition).
// Each on a stack and a DynamoDB Local of its own, one after the other in the same run. ns/op is
// the drain time; drain-s, accept-s and cpu-% (the machine's CPU utilisation over the drain, from
// /proc/stat) are reported too, and a drain above cpuBound is logged as CPU-bound, not a shard
// result: on two cores the worker, fan-out, delivery, emulators and receiver share the CPU, and
// shards add parallelism, not CPU. DynamoDB Local is not AWS: the ratio is the point, not the
// figures. In make bench (3 to 4 minutes: two stacks, each taking a burst and draining it); alone:
//
//	make bootstraps && HOOKGATE_BIN_DIR=$PWD/.build/amd64 go test -run '^$' -bench BurstDrain -timeout 30m ./local/e2e | .build/hookgate-local ratios
func BenchmarkBurstDrain(b *testing.B) {
	for _, shards := range []int{1, 4} {
		name := "shards-" + strconv.Itoa(shards)
		if shards == 1 {
			name = "baseline"
		}
		b.Run(name, func(b *testing.B) {
			b.Setenv(stack.EnvStreamPartitions, strconv.Itoa(shards))
			for range b.N {
				accept, drain, cpu := burstDrain(b, shards)
				b.ReportMetric(float64(drain.Nanoseconds()), "ns/op")
				b.ReportMetric(drain.Seconds(), "drain-s")
				b.ReportMetric(accept.Seconds(), "accept-s")
				b.ReportMetric(100*cpu, "cpu-%")
				if cpu > cpuBound {
					b.Logf("%d shards: the drain ran at %.0f%% CPU: CPU-bound, not a shard result", shards, 100*cpu)
				} else {
					b.Logf("%d shards: the drain ran at %.0f%% CPU", shards, 100*cpu)
				}
			}
		})
	}
}

// burstDrain runs one burst on a fresh stack and returns how long the posts took, how long the
// deliveries took after the last 202, and the machine's CPU utilisation over that drain.
func burstDrain(b *testing.B, shards int) (accept, drain time.Duration, cpu float64) {
	root, _ := filepath.Abs("../..")
	s, err := stack.Start(context.Background(), stack.Options{
		Root: root, BinDir: binDir(b), Addr: "127.0.0.1:0",
		DynamoEndpoint: emulatortest.OwnDynamo(b), SQSEndpoint: emulatortest.SQS(b), KMSEndpoint: emulatortest.KMS(b),
		Params: map[string]string{
			"InboundSecret": inboundSecret, "AdminApiKey": adminKey,
			"AllowHttpUrls": "true", "AllowPrivateDestinations": "true",
			"EventLogShards": strconv.Itoa(shards),
		},
		Prefix:            fmt.Sprintf("drain%d-", time.Now().UnixNano()%1e9),
		VisibilityTimeout: 30 * time.Second, PollWait: time.Second, FunctionLog: io.Discard,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()

	var mu sync.Mutex
	seen := map[string]string{} // webhook-id (the event's id) → its type
	var last time.Time
	want := len(burstTypes) * burstMessages
	all := make(chan struct{})
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct{ Type string }
		_ = json.NewDecoder(r.Body).Decode(&env)
		mu.Lock()
		defer mu.Unlock()
		if id := r.Header.Get("webhook-id"); id != "" && seen[id] == "" {
			seen[id], last = env.Type, time.Now()
			if len(seen) == want {
				close(all)
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()
	post := func(path string, h map[string]string, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewBufferString(body))
		req.Header.Set("content-type", "application/json")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	sub, _ := json.Marshal(map[string]any{"url": rcv.URL + "/hook", "events": []string{"*"}})
	if code, raw := post("/v1/webhooks", map[string]string{"x-api-key": adminKey}, string(sub)); code != 201 {
		b.Fatalf("subscribe: %d %s", code, raw)
	}

	start := time.Now()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range burstMessages {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			key := map[string]string{"x-hookgate-inbound-secret": inboundSecret, "Idempotency-Key": fmt.Sprintf("drain-%d", i)}
			body := fmt.Sprintf(`{"channel":"drain","external_id":"u-%d","text":"m %d"}`, i%50, i)
			for try := 1; ; try++ { // a 5xx is retried with the same key, as the README asks
				code, raw := post("/v1/inbound/generic", key, body)
				if code == 202 {
					return
				}
				if code < 500 || try == 5 {
					b.Errorf("post %d (try %d): %d %s", i, try, code, raw)
					return
				}
				time.Sleep(time.Second)
			}
		})
	}
	wg.Wait()
	accepted := time.Now()
	before := readCPU(b)
	if b.Failed() {
		b.FailNow()
	}
	select {
	case <-all:
	case <-time.After(15 * time.Minute):
		mu.Lock()
		defer mu.Unlock()
		b.Fatalf("%d of %d events delivered 15 minutes after the last 202", len(seen), want)
	}
	after := readCPU(b)
	mu.Lock()
	defer mu.Unlock()
	perType := map[string]int{}
	for _, typ := range seen {
		perType[typ]++
	}
	for _, typ := range burstTypes {
		if perType[typ] != burstMessages {
			b.Fatalf("delivered %v, want %d of each of %v", perType, burstMessages, burstTypes)
		}
	}
	return accepted.Sub(start), last.Sub(accepted), after.utilisation(before)
}

// cpuTimes is the first line of /proc/stat: the machine's CPU time so far, busy and in all.
type cpuTimes struct{ busy, total uint64 }

func readCPU(b *testing.B) cpuTimes {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal guest guest_nice
	if len(f) < 9 || f[0] != "cpu" {
		b.Fatalf("/proc/stat starts %q", line)
	}
	var t cpuTimes
	for i, v := range f[1:9] { // guest time is counted in user time already
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			b.Fatalf("/proc/stat: %q", line)
		}
		t.total += n
		if i != 3 && i != 4 { // idle, iowait
			t.busy += n
		}
	}
	return t
}

// utilisation is the share of CPU time busy between before and t.
func (t cpuTimes) utilisation(before cpuTimes) float64 {
	if t.total <= before.total {
		return 0
	}
	return float64(t.busy-before.busy) / float64(t.total-before.total)
}
