package store

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/hookgate/hookgate/local/emulator"
	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/local/provision"
	"github.com/hookgate/hookgate/local/template"
	"github.com/hookgate/hookgate/shared/awscfg"
)

// BenchmarkAppendContention: N separate processes (1, 2, 4, 8) append to one workspace's log on
// DynamoDB Local at once, one event per append, each process one appender, with a log of one shard
// (shards-1) and of four (shards-4: the appenders' store is WithShards(4) and every event a Spread
// threadless one, dealt to a shard by its id); baseline is 1 process and 1 shard. Per
// sub-benchmark: ns/op is the wall time per append of all processes together (its ratio against
// baseline is the inverse of the throughput ratio); appends/s; calls/append; retries/append, the
// requests the SDK sent again; condfail/append, the conditional writes refused (an append's only
// conditions are its id marker's and its item's "absent", which fail only for a repeated id, and
// a stale reservation's move; the raise of the mark, which each process makes once per workspace
// of several shards and all but the first find made, is made before the start); p99-ms of one
// append. Every shard is checked afterwards (LogHead, ListShard): every cursor from 1 to its head
// holds one event, each event once, all of them.
//
// Unthrottled, retries are 0 at every count: every append updates its shard's counter with an
// unconditional ADD, so no append waits for another's condition, and DynamoDB Local never
// throttles. BenchmarkAppendContentionThrottled shows what a partition's write budget does.
// DynamoDB Local is not AWS (one SQLite writer per process, no partitions); the curve's shape is
// the point, not its figures. B/op and allocs/op (-benchmem) are the benchmark process's own, not
// the appenders'.
func BenchmarkAppendContention(b *testing.B) { benchContention(b, false) }

// BenchmarkAppendContentionThrottled is BenchmarkAppendContention through a proxy that enforces a
// write budget per partition key (throttleProxy), an emulation of DynamoDB's documented 1,000 WU/s
// per partition scaled to DynamoDB Local on this machine: three quarters of the rate one process
// appends at through the proxy with no budget, measured first (each append writes 1 WU to its
// shard's counter and 1 WU to its shard's events' key). One shard is then throttled at every
// process count; four shards are not while eight processes together append at under three times
// one's rate, as on two cores. Buckets hold a tenth of a second's budget. A write over budget is
// answered ProvisionedThroughputExceededException, which the SDK retries (within
// awscfg.MaxAttempts; an append whose retries run out fails the benchmark). throttled/append is
// the writes the proxy refused per append after the start, budget-WU/s the budget (DynamoDB's
// 1,000 scaled by a thousandth of it). Expected: with one shard, retries/append grow with
// processes; with four they stay flat. The machine's load moves the budget with the rate: on a
// busy machine both are low, and each sub-benchmark's few appends make its figures noisy.
func BenchmarkAppendContentionThrottled(b *testing.B) { benchContention(b, true) }

// benchContention runs the sub-benchmarks against a fresh table, through a throttling proxy when
// throttled. One process's 300 appends come first, unmeasured: a DynamoDB Local's JVM warms up on
// its first requests, which would slow the baseline alone; and the throttled budget is set from
// their rate (the proxy has no budget yet).
func benchContention(b *testing.B, throttled bool) {
	endpoint := emulatortest.Dynamo(b)
	table := benchTable(b, endpoint)
	var proxy *throttleProxy
	target := endpoint
	if throttled {
		proxy = newThrottleProxy(b, endpoint)
		target = proxy.URL
	}
	const warm = 300
	res := runAppenders(b, target, table, fmt.Sprintf("ws-warm-up-%d", time.Now().UnixNano()), 1, 1, warm, func() {})
	if throttled {
		budget := max(10, math.Round(warm/time.Duration(res[0].End-res[0].Start).Seconds()*3/4))
		proxy.limit(budget, budget/10)
	}
	b.Run("baseline", func(b *testing.B) { contention(b, endpoint, proxy, table, 1, 1) })
	for _, shards := range []int{1, 4} {
		b.Run(fmt.Sprintf("shards-%d", shards), func(b *testing.B) {
			for _, procs := range []int{1, 2, 4, 8} {
				if shards == 1 && procs == 1 {
					continue // baseline
				}
				b.Run(fmt.Sprintf("processes-%d", procs), func(b *testing.B) { contention(b, endpoint, proxy, table, shards, procs) })
			}
		})
	}
}

// benchTable creates on the DynamoDB Local at endpoint the tables template.yaml declares, under a
// fresh prefix, without their streams and TTL sweeper, and returns the name of the one logically
// named Table. DynamoDB Local's cost per write grows with the stream records the process holds
// (see emulatortest.OwnDynamo), which would slow each sub-benchmark more than the one before it and
// the second benchmark more than the first; DynamoDB's does not.
func benchTable(b *testing.B, endpoint string) string {
	b.Helper()
	wd, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	root, err := emulator.FindRoot(wd)
	if err != nil {
		b.Fatal(err)
	}
	tpl, err := template.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	prefix := fmt.Sprintf("contention%d-", time.Now().UnixNano()%1e9)
	tables, _ := provision.Specs(tpl, prefix, 0)
	for i := range tables {
		tables[i].StreamViewType, tables[i].TTLAttribute = "", ""
	}
	cfg, err := localConfig(endpoint)
	if err != nil {
		b.Fatal(err)
	}
	if err := provision.Tables(context.Background(), cfg.DynamoDB(), tables); err != nil {
		b.Fatal(err)
	}
	return prefix + "Table"
}

// contention is one sub-benchmark: procs processes append b.N events (rounded up to a multiple of
// procs) to a fresh workspace of shards shards, directly or through proxy.
func contention(b *testing.B, endpoint string, proxy *throttleProxy, table string, shards, procs int) {
	ws := fmt.Sprintf("ws-contention-%d-%d-%d", shards, procs, time.Now().UnixNano())
	per := max(1, (b.N+procs-1)/procs)
	target := endpoint
	if proxy != nil {
		target = proxy.URL
	}
	var warmThrottled int64 // the writes refused before the start: the appenders' warm-up
	res := runAppenders(b, target, table, ws, shards, procs, per, func() {
		if proxy != nil {
			warmThrottled = proxy.Throttled("WS#" + ws + "#")
		}
	})
	total := procs * per
	var lat []time.Duration
	var calls, retries, condfails int64
	start, end := res[0].Start, res[0].End
	for _, r := range res {
		lat = append(lat, r.Latencies...)
		calls += r.Calls
		retries += r.Attempts - r.Calls
		condfails += r.ConditionFailures
		start, end = min(start, r.Start), max(end, r.End)
	}
	wall := time.Duration(end - start) // from the first process's start to the last one's end
	slices.Sort(lat)
	p99 := lat[(len(lat)*99+99)/100-1] // nearest rank
	b.ReportMetric(float64(wall.Nanoseconds())/float64(total), "ns/op")
	b.ReportMetric(float64(total)/wall.Seconds(), "appends/s")
	b.ReportMetric(float64(calls)/float64(total), "calls/append")
	b.ReportMetric(float64(retries)/float64(total), "retries/append")
	b.ReportMetric(float64(condfails)/float64(total), "condfail/append")
	if proxy != nil {
		b.ReportMetric(float64(proxy.Throttled("WS#"+ws+"#")-warmThrottled)/float64(total), "throttled/append")
		b.ReportMetric(proxy.budget(), "budget-WU/s")
	}
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	checkDense(b, endpoint, table, ws, shards, total)
}

// appenderResult is what one appending process reports.
type appenderResult struct {
	Latencies         []time.Duration
	Start, End        int64 // Unix ns: the start signal, and its last append's end
	Calls, Attempts   int64 // DynamoDB calls, and the attempts the SDK made for them
	ConditionFailures int64
}

// The environment that makes the test binary an appender (TestMain): endpoint, table, workspace,
// shards, appends and an id prefix, separated by spaces.
const appenderEnv = "HOOKGATE_BENCH_APPENDER"

// runAppenders starts procs appender processes, lets them go together once all are ready (a line
// on each stdin; onGo is called just before), and returns their reports.
func runAppenders(b *testing.B, endpoint, table, ws string, shards, procs, per int, onGo func()) []appenderResult {
	type child struct {
		cmd    *exec.Cmd
		in     io.WriteCloser
		out    *bufio.Reader
		waited bool
	}
	// A child that hangs or outlives a failed sub-benchmark is killed: it must not append while the
	// next one runs.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	children := make([]*child, procs)
	b.Cleanup(func() {
		cancel()
		for _, c := range children {
			if c != nil && !c.waited {
				_ = c.cmd.Wait()
			}
		}
	})
	for i := range children {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.WaitDelay = time.Second
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s %d %d p%d", appenderEnv, endpoint, table, ws, shards, per, i))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		children[i] = &child{cmd: cmd, in: stdin, out: bufio.NewReader(stdout)}
	}
	for _, c := range children { // each says "ready" once its client is built
		if line, err := c.out.ReadString('\n'); err != nil || line != "ready\n" {
			b.Fatalf("appender: %q %v", line, err)
		}
	}
	onGo()
	for _, c := range children {
		if _, err := io.WriteString(c.in, "go\n"); err != nil {
			b.Fatal(err)
		}
		c.in.Close()
	}
	out := make([]appenderResult, procs)
	for i, c := range children {
		if err := json.NewDecoder(c.out).Decode(&out[i]); err != nil {
			b.Fatalf("appender %d: %v", i, err)
		}
		err := c.cmd.Wait()
		c.waited = true
		if err != nil {
			b.Fatalf("appender %d: %v", i, err)
		}
	}
	return out
}

// runAppender is the appending process: it builds its client, makes one append elsewhere and, for
// a log of several shards, the raise of ws's mark that a process makes once per workspace (so that
// connecting, the SDK's first call and the once-per-process write are not timed), says ready,
// waits for the start signal and appends.
func runAppender() int {
	var endpoint, table, ws, prefix string
	var shards, n int
	if _, err := fmt.Sscan(os.Getenv(appenderEnv), &endpoint, &table, &ws, &shards, &n, &prefix); err != nil {
		fmt.Fprintln(os.Stderr, "appender:", err)
		return 2
	}
	ctx := context.Background()
	cfg, err := localConfig(endpoint)
	if err != nil {
		fmt.Fprintln(os.Stderr, "appender:", err)
		return 2
	}
	var res appenderResult
	var calls, attempts, failures atomic.Int64
	cfg.AWS.APIOptions = append(cfg.AWS.APIOptions, countRequests(&calls, &attempts, &failures))
	st := New(cfg.DynamoDB(), table, time.Now).WithShards(shards)
	if _, err := st.AppendEvent(ctx, Event{ID: "evt_warm_" + prefix, Type: "bench.append", WorkspaceID: ws + "-warm-up-" + prefix}); err != nil {
		fmt.Fprintln(os.Stderr, "appender:", err)
		return 1
	}
	if err := st.ensureMark(ctx, ws, shards-1); err != nil {
		fmt.Fprintln(os.Stderr, "appender:", err)
		return 1
	}
	calls.Store(0)
	attempts.Store(0)
	failures.Store(0)
	fmt.Println("ready")
	if line, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil || line != "go\n" {
		fmt.Fprintln(os.Stderr, "appender: no start signal:", err)
		return 2
	}
	res.Start = time.Now().UnixNano()
	for i := range n {
		t := time.Now()
		if _, err := st.AppendEvent(ctx, Event{ID: "evt_" + prefix + "_" + strconv.Itoa(i), Type: "bench.append", WorkspaceID: ws, Spread: true}); err != nil {
			var pte *types.ProvisionedThroughputExceededException
			if errors.As(err, &pte) {
				fmt.Fprintln(os.Stderr, "appender: an append's retries ran out on throttling:", err)
			} else {
				fmt.Fprintln(os.Stderr, "appender:", err)
			}
			return 1
		}
		res.Latencies = append(res.Latencies, time.Since(t))
	}
	res.End = time.Now().UnixNano()
	res.Calls, res.Attempts, res.ConditionFailures = calls.Load(), attempts.Load(), failures.Load()
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 1
	}
	return 0
}

// countRequests counts each DynamoDB call, each attempt the SDK's retryer makes for it, and the
// attempts a condition refused.
func countRequests(calls, attempts, failures *atomic.Int64) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		if err := s.Initialize.Add(middleware.InitializeMiddlewareFunc("benchCalls", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			calls.Add(1)
			return next.HandleInitialize(ctx, in)
		}), middleware.Before); err != nil {
			return err
		}
		return s.Finalize.Insert(middleware.FinalizeMiddlewareFunc("benchAttempts", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			attempts.Add(1)
			out, md, err := next.HandleFinalize(ctx, in)
			var cf *types.ConditionalCheckFailedException
			if errors.As(err, &cf) {
				failures.Add(1)
			}
			return out, md, err
		}), "Retry", middleware.After)
	}
}

// checkDense fails b unless ws's log has at most shards shards, each holding exactly the cursors 1
// to its head (LogHead), and the shards together hold total events, each once.
func checkDense(b *testing.B, endpoint, table, ws string, shards, total int) {
	b.Helper()
	cfg, err := localConfig(endpoint)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	st := New(cfg.DynamoDB(), table, time.Now)
	head, err := st.LogHead(ctx, ws)
	if err != nil {
		b.Fatal(err)
	}
	if len(head) > shards {
		b.Fatalf("the log has %d shards, want at most %d", len(head), shards)
	}
	seen := map[string]bool{}
	for sh, last := range head {
		var after int64
		for {
			evs, _, err := st.ListShard(ctx, ws, sh, after, 1000)
			if err != nil {
				b.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			for _, e := range evs {
				if e.Cursor != after+1 || seen[e.ID] {
					b.Fatalf("shard %d: event %s at cursor %d after %d (seen before: %v)", sh, e.ID, e.Cursor, after, seen[e.ID])
				}
				seen[e.ID], after = true, e.Cursor
			}
		}
		if after != last {
			b.Fatalf("shard %d holds cursors 1 to %d, its head is %d", sh, after, last)
		}
	}
	if len(seen) != total {
		b.Fatalf("the log holds %d events, want %d", len(seen), total)
	}
}

// The benchmark's counters see what they count: a claim of an id already claimed is one call, one
// attempt and one refused condition; a call the SDK sends again after a 500 is one call and its
// attempts.
func TestCountRequestsSeesConditionFailures(t *testing.T) {
	t.Parallel()
	endpoint := emulatortest.Dynamo(t)
	_, table := emulatortest.Table(t, "counting")
	cfg, err := localConfig(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var calls, attempts, failures atomic.Int64
	cfg.AWS.APIOptions = append(cfg.AWS.APIOptions, countRequests(&calls, &attempts, &failures))
	st := New(cfg.DynamoDB(), table, time.Now)
	e := Event{ID: "evt_1", WorkspaceID: "ws", Cursor: 1, CreatedAt: time.Now()}
	if _, err := claimAlone(context.Background(), st, e); err != nil {
		t.Fatal(err)
	}
	e.Cursor = 2
	got, err := claimAlone(context.Background(), st, e)
	if err != nil || got.Cursor != 1 {
		t.Fatalf("second claim: %+v %v", got, err)
	}
	if calls.Load() != 2 || attempts.Load() != 2 || failures.Load() != 1 {
		t.Fatalf("calls %d, attempts %d, condition failures %d; want 2, 2, 1", calls.Load(), attempts.Load(), failures.Load())
	}
	calls.Store(0)
	attempts.Store(0)
	failures.Store(0)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"try again"}`)
	}))
	defer broken.Close()
	bcfg, err := localConfig(broken.URL)
	if err != nil {
		t.Fatal(err)
	}
	bcfg.AWS.APIOptions = append(bcfg.AWS.APIOptions, countRequests(&calls, &attempts, &failures))
	if _, err := claimAlone(context.Background(), New(bcfg.DynamoDB(), table, time.Now), e); err == nil {
		t.Fatal("a claim against a failing endpoint succeeded")
	}
	if calls.Load() != 1 || attempts.Load() != awscfg.MaxAttempts || failures.Load() != 0 {
		t.Fatalf("calls %d, attempts %d, condition failures %d; want 1, %d, 0", calls.Load(), attempts.Load(), failures.Load(), awscfg.MaxAttempts)
	}
}

// localConfig is the SDK configuration of a client of the DynamoDB Local at endpoint.
func localConfig(endpoint string) (awscfg.Config, error) {
	return awscfg.Load(context.Background(), func(k string) string {
		return map[string]string{awscfg.EnvDynamoEndpoint: endpoint}[k]
	})
}
