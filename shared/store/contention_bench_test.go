package store

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/awscfg"
)

// BenchmarkAppendContention: N separate processes (1, 2, 4, 8) append to one workspace's log on
// DynamoDB Local at once, one event per append, each process one appender. Per sub-benchmark:
// ns/op is the wall time per append of all processes together (its ratio against baseline, one
// process, is the inverse of the throughput ratio); appends/s; retries/append, the requests the
// SDK sent again plus the conditional writes that failed (an append's only conditions are its id
// marker's and its item's "absent", which fail only for a repeated id, and a stale reservation's
// move); p99-ms of one append. The log is checked afterwards: every cursor from 1 to the total
// holds one event, each event once.
//
// The log has one shard (issue 14's shards are not built): the processes share the workspace's
// counter, which every append updates with an unconditional ADD, so no append waits for another's
// condition. DynamoDB Local is not AWS (one SQLite writer per process, no partitions, no
// throttling); the curve's shape is the point, not its figures. B/op and allocs/op (-benchmem) are
// the benchmark process's own, not the appenders'.
func BenchmarkAppendContention(b *testing.B) {
	endpoint := emulatortest.Dynamo(b)
	_, table := emulatortest.Table(b, "contention")
	for _, procs := range []int{1, 2, 4, 8} {
		name := fmt.Sprintf("processes-%d", procs)
		if procs == 1 {
			name = "baseline"
		}
		b.Run(name, func(b *testing.B) {
			ws := fmt.Sprintf("ws-contention-%d-%d", procs, time.Now().UnixNano())
			per := max(1, (b.N+procs-1)/procs)
			res := runAppenders(b, endpoint, table, ws, procs, per)
			total := procs * per
			var lat []time.Duration
			var calls, retries int64
			start, end := res[0].Start, res[0].End
			for _, r := range res {
				lat = append(lat, r.Latencies...)
				calls += r.Calls
				retries += r.Attempts - r.Calls + r.ConditionFailures
				start, end = min(start, r.Start), max(end, r.End)
			}
			wall := time.Duration(end - start) // from the first process's start to the last one's end
			slices.Sort(lat)
			p99 := lat[(len(lat)*99+99)/100-1] // nearest rank
			b.ReportMetric(float64(wall.Nanoseconds())/float64(total), "ns/op")
			b.ReportMetric(float64(total)/wall.Seconds(), "appends/s")
			b.ReportMetric(float64(calls)/float64(total), "calls/append")
			b.ReportMetric(float64(retries)/float64(total), "retries/append")
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
			checkDense(b, endpoint, table, ws, total)
		})
	}
}

// appenderResult is what one appending process reports.
type appenderResult struct {
	Latencies         []time.Duration
	Start, End        int64 // Unix ns: the start signal, and its last append's end
	Calls, Attempts   int64 // DynamoDB calls, and the attempts the SDK made for them
	ConditionFailures int64
}

// The environment that makes the test binary an appender (TestMain): endpoint, table, workspace,
// appends and an id prefix, separated by spaces.
const appenderEnv = "HOOKGATE_BENCH_APPENDER"

// runAppenders starts procs appender processes, lets them go together once all are ready (a line
// on each stdin), and returns their reports.
func runAppenders(b *testing.B, endpoint, table, ws string, procs, per int) []appenderResult {
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
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s %d p%d", appenderEnv, endpoint, table, ws, per, i))
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

// runAppender is the appending process: it builds its client and makes one append elsewhere (so
// that connecting and the SDK's first call are not timed), says ready, waits for the start signal
// and appends.
func runAppender() int {
	var endpoint, table, ws, prefix string
	var n int
	if _, err := fmt.Sscan(os.Getenv(appenderEnv), &endpoint, &table, &ws, &n, &prefix); err != nil {
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
	st := New(cfg.DynamoDB(), table, time.Now)
	if _, err := st.AppendEvent(ctx, Event{ID: "evt_warm_" + prefix, Type: "bench.append", WorkspaceID: ws + "-warm-up"}); err != nil {
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
		if _, err := st.AppendEvent(ctx, Event{ID: "evt_" + prefix + "_" + strconv.Itoa(i), Type: "bench.append", WorkspaceID: ws}); err != nil {
			fmt.Fprintln(os.Stderr, "appender:", err)
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

// checkDense fails b unless ws's log holds exactly the cursors 1..total, each event once.
func checkDense(b *testing.B, endpoint, table, ws string, total int) {
	b.Helper()
	cfg, err := localConfig(endpoint)
	if err != nil {
		b.Fatal(err)
	}
	st := New(cfg.DynamoDB(), table, time.Now)
	seen := map[string]bool{}
	var after int64
	for {
		evs, err := st.ListEvents(context.Background(), ws, after, 1000)
		if err != nil {
			b.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			if e.Cursor != after+1 || seen[e.ID] {
				b.Fatalf("event %s at cursor %d after %d (seen before: %v)", e.ID, e.Cursor, after, seen[e.ID])
			}
			seen[e.ID], after = true, e.Cursor
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
