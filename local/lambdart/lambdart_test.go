package lambdart

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testBootstrap is testdata/testfn, built once by TestMain.
var testBootstrap string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lambdart-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testBootstrap = filepath.Join(dir, "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", testBootstrap, "./testdata/testfn")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build testfn:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	// In the parent's environment only: the bootstrap must not see it.
	_ = os.Setenv("LAMBDART_PARENT_ONLY", "leaked")
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type req struct {
	Op    string   `json:"op"`
	Value string   `json:"value,omitempty"`
	Ms    int      `json:"ms,omitempty"`
	Names []string `json:"names,omitempty"`
}

type res struct {
	Value      string             `json:"value"`
	RequestID  string             `json:"requestId"`
	ARN        string             `json:"arn"`
	DeadlineMs int64              `json:"deadlineMs"`
	PID        int                `json:"pid"`
	Start      int64              `json:"start"`
	End        int64              `json:"end"`
	Env        map[string]*string `json:"env"`
}

func startHost(t *testing.T, c Config) (*Host, *syncBuffer) {
	t.Helper()
	log := &syncBuffer{}
	c.Name, c.Path, c.Log = "testfn", testBootstrap, log
	h, err := Start(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = h.Close()
		if t.Failed() {
			t.Logf("function output:\n%s", log)
		}
	})
	return h, log
}

func call(t *testing.T, h *Host, r req) (res, error) {
	t.Helper()
	payload, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	out, err := h.Invoke(ctx, payload)
	var v res
	if err == nil {
		if jerr := json.Unmarshal(out, &v); jerr != nil {
			t.Fatalf("response %q: %v", out, jerr)
		}
	}
	return v, err
}

func mustCall(t *testing.T, h *Host, r req) res {
	t.Helper()
	v, err := call(t, h, r)
	if err != nil {
		t.Fatalf("%s: %v", r.Op, err)
	}
	return v
}

func functionError(t *testing.T, err error, typ string) *FunctionError {
	t.Helper()
	var fe *FunctionError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *FunctionError", err)
	}
	if fe.Type != typ {
		t.Fatalf("error type %q, want %q (%v)", fe.Type, typ, err)
	}
	return fe
}

func TestEcho(t *testing.T) {
	t.Parallel()
	h, log := startHost(t, Config{Timeout: 5 * time.Second})
	v := mustCall(t, h, req{Op: "echo", Value: "hello"})
	if v.Value != "hello" {
		t.Errorf("value %q, want hello", v.Value)
	}
	if want := "arn:aws:lambda:us-east-1:000000000000:function:testfn"; v.ARN != want {
		t.Errorf("arn %q, want %q", v.ARN, want)
	}
	if v.DeadlineMs <= 0 || v.DeadlineMs > 5000 {
		t.Errorf("time left at start %d ms, want in (0, 5000]", v.DeadlineMs)
	}
	if again := mustCall(t, h, req{Op: "echo", Value: "again"}); again.PID != v.PID {
		t.Errorf("second invocation ran in process %d, want the warm %d", again.PID, v.PID)
	}
	_ = h.Close() // output is copied asynchronously; Close waits for it
	if !strings.Contains(log.String(), "[testfn] echo: hello\n") {
		t.Errorf("log lacks the prefixed output line:\n%s", log)
	}
}

func TestFunctionError(t *testing.T) {
	t.Parallel()
	h, _ := startHost(t, Config{})
	_, err := call(t, h, req{Op: "error", Value: "amount"})
	if fe := functionError(t, err, "ValidationError"); fe.Message != "invalid field amount" {
		t.Errorf("message %q", fe.Message)
	}
	mustCall(t, h, req{Op: "echo"})
}

func TestPanic(t *testing.T) {
	t.Parallel()
	h, _ := startHost(t, Config{})
	first := mustCall(t, h, req{Op: "echo"})
	_, err := call(t, h, req{Op: "panic", Value: "boom"})
	if fe := functionError(t, err, "string"); fe.Message != "boom" {
		t.Errorf("message %q, want boom", fe.Message)
	}
	// aws-lambda-go exits after reporting a panic: the next invocation gets a new process.
	if v := mustCall(t, h, req{Op: "echo"}); v.PID == first.PID {
		t.Errorf("process %d reused after a panic", v.PID)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	h, _ := startHost(t, Config{Timeout: 500 * time.Millisecond})
	first := mustCall(t, h, req{Op: "echo"})
	_, err := call(t, h, req{Op: "sleep", Ms: 5000})
	if fe := functionError(t, err, "Sandbox.Timedout"); !strings.Contains(fe.Message, "Task timed out after 0.50 seconds") {
		t.Errorf("message %q", fe.Message)
	}
	if v := mustCall(t, h, req{Op: "echo"}); v.PID == first.PID {
		t.Errorf("process %d reused after a timeout", v.PID)
	}
}

func TestExitMidInvocation(t *testing.T) {
	t.Parallel()
	h, _ := startHost(t, Config{})
	_, err := call(t, h, req{Op: "exit"})
	if fe := functionError(t, err, "Runtime.ExitError"); !strings.Contains(fe.Message, "exit status 3") {
		t.Errorf("message %q", fe.Message)
	}
	mustCall(t, h, req{Op: "echo"})
}

func TestConcurrency(t *testing.T) {
	t.Parallel()
	h, _ := startHost(t, Config{Concurrency: 3})
	results := make([]res, 3)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			v, err := call(t, h, req{Op: "sleep", Ms: 400})
			if err != nil {
				t.Error(err)
			}
			results[i] = v
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	lastStart, firstEnd := results[0].Start, results[0].End
	pids := map[int]bool{}
	for _, v := range results {
		lastStart, firstEnd = max(lastStart, v.Start), min(firstEnd, v.End)
		pids[v.PID] = true
	}
	if lastStart >= firstEnd {
		t.Errorf("invocations did not overlap: last start %d, first end %d", lastStart, firstEnd)
	}
	if len(pids) != 3 {
		t.Errorf("ran in %d processes, want 3", len(pids))
	}
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	h, _ := startHost(t, Config{
		MemoryMB: 256,
		Env:      map[string]string{"TABLE_NAME": "events", "AWS_REGION": "eu-west-1", "AWS_LAMBDA_FUNCTION_NAME": "spoofed"},
	})
	names := []string{"TABLE_NAME", "LAMBDART_PARENT_ONLY", "PATH", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_RUNTIME_API"}
	v := mustCall(t, h, req{Op: "env", Names: names})
	want := map[string]string{
		"TABLE_NAME": "events", "PATH": os.Getenv("PATH"), "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1",
		"AWS_LAMBDA_FUNCTION_NAME": "testfn", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
	}
	for k, w := range want {
		if got := v.Env[k]; got == nil || *got != w {
			t.Errorf("%s = %v, want %q", k, got, w)
		}
	}
	if got := v.Env["LAMBDART_PARENT_ONLY"]; got != nil {
		t.Errorf("parent variable LAMBDART_PARENT_ONLY visible to the function: %q", *got)
	}
	if api := v.Env["AWS_LAMBDA_RUNTIME_API"]; api == nil || !strings.HasPrefix(*api, "127.0.0.1:") {
		t.Errorf("AWS_LAMBDA_RUNTIME_API = %v", api)
	}
	if want := "arn:aws:lambda:eu-west-1:000000000000:function:testfn"; v.ARN != want {
		t.Errorf("arn %q, want %q", v.ARN, want)
	}
}

func TestRequestIDs(t *testing.T) {
	t.Parallel()
	h, _ := startHost(t, Config{Concurrency: 2})
	var mu sync.Mutex
	n := 0
	h.newID = func() string { // before the first Invoke
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("req-%d", n)
	}
	seen := map[string]bool{}
	for i := 1; i <= 4; i++ {
		v := mustCall(t, h, req{Op: "echo"})
		if want := fmt.Sprintf("req-%d", i); v.RequestID != want {
			t.Errorf("handler saw request id %q, want %q", v.RequestID, want)
		}
		seen[v.RequestID] = true
	}
	if len(seen) != 4 {
		t.Errorf("request ids %v are not unique", seen)
	}
	if id := newUUID(); len(id) != 36 || id == newUUID() {
		t.Errorf("newUUID %q", id)
	}
}

func TestInitFailure(t *testing.T) {
	t.Parallel()
	h, _ := startHost(t, Config{Env: map[string]string{"TESTFN_FAIL_INIT": "config table missing"}})
	for range 2 { // the second one waits out the backoff and fails the same way
		_, err := call(t, h, req{Op: "echo"})
		functionError(t, err, "Runtime.ExitError")
		if !strings.Contains(err.Error(), "config table missing") || !strings.Contains(err.Error(), "exit status 2") {
			t.Errorf("error lacks the output tail or the exit status: %v", err)
		}
	}
}

func TestContextCancel(t *testing.T) {
	t.Parallel()
	h, _ := startHost(t, Config{})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := h.Invoke(ctx, []byte(`{"op":"sleep","ms":400}`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want context.DeadlineExceeded", err)
	}
	// The same process finishes the sleep, drops its result and takes the next one.
	if v := mustCall(t, h, req{Op: "echo", Value: "after"}); v.Value != "after" {
		t.Errorf("value %q", v.Value)
	}
}

func TestPayloadLimits(t *testing.T) {
	t.Parallel()
	h, _ := startHost(t, Config{})
	if _, err := h.Invoke(t.Context(), make([]byte, MaxPayloadBytes+1)); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversized request: err %v", err)
	}
	_, err := call(t, h, req{Op: "big", Ms: MaxPayloadBytes})
	functionError(t, err, "Function.ResponseSizeTooLarge")
	mustCall(t, h, req{Op: "echo"})
}

func TestSIGTERM(t *testing.T) {
	t.Parallel()
	h, log := startHost(t, Config{Env: map[string]string{"TESTFN_SIGTERM": "1"}})
	mustCall(t, h, req{Op: "echo"})
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if out := log.String(); !strings.Contains(out, "[testfn] sigterm received") || strings.Contains(out, "WARNING") {
		t.Errorf("want the SIGTERM callback to run with the extension registered; output:\n%s", out)
	}
}

func TestUnknownRequestID(t *testing.T) {
	t.Parallel()
	h, _ := startHost(t, Config{})
	mustCall(t, h, req{Op: "echo"})
	h.mu.Lock()
	var api string
	for p := range h.procs {
		api = p.api
	}
	h.mu.Unlock()
	resp, err := http.Post("http://"+api+"/2018-06-01/runtime/invocation/nope/response", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
}

func TestCloseAndStart(t *testing.T) {
	t.Parallel()
	if _, err := Start(t.Context(), Config{Name: "x", Path: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("Start with a missing bootstrap: no error")
	}
	notExec := filepath.Join(t.TempDir(), "bootstrap")
	if err := os.WriteFile(notExec, []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := InvokeOnce(t.Context(), Config{Name: "x", Path: notExec}, nil); err == nil || !strings.Contains(err.Error(), "start bootstrap") {
		t.Errorf("InvokeOnce with a bootstrap that cannot start: err %v", err)
	}
	h, _ := startHost(t, Config{})
	mustCall(t, h, req{Op: "echo"})
	_ = h.Close()
	_ = h.Close()
	if _, err := h.Invoke(t.Context(), []byte(`{"op":"echo"}`)); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Invoke after Close: err %v", err)
	}
}

func TestInvokeOnce(t *testing.T) {
	t.Parallel()
	out, err := InvokeOnce(t.Context(), Config{Name: "once", Path: testBootstrap}, []byte(`{"op":"echo","value":"x"}`))
	if err != nil || !bytes.Contains(out, []byte(`"value":"x"`)) {
		t.Errorf("InvokeOnce = %s, %v", out, err)
	}
}

// Lambda's recursive loop detection: a chain of requests that re-invokes the function with the
// trace header of its previous invocation (as a message it sent to its own queue carries it) runs
// 16 times; the 17th is stopped without running, unless RecursiveLoop is Allow.
func TestRecursionRuleStopsTheSeventeenth(t *testing.T) {
	t.Parallel()
	for _, allow := range []bool{false, true} {
		c := Config{Timeout: 5 * time.Second}
		if allow {
			c.RecursiveLoop = "Allow"
		}
		h, _ := startHost(t, c)
		payload, _ := json.Marshal(req{Op: "env", Names: []string{"_X_AMZN_TRACE_ID"}})
		trace, root := "", ""
		for i := 1; i <= 20; i++ {
			out, err := h.InvokeTraced(t.Context(), payload, trace)
			var rec *RecursiveInvocationError
			if !allow && i == 17 {
				if !errors.As(err, &rec) || rec.Count != 17 {
					t.Fatalf("invocation 17: %v, want a RecursiveInvocationError", err)
				}
				break
			}
			if err != nil {
				t.Fatalf("allow %v: invocation %d: %v", allow, i, err)
			}
			var v res
			if err := json.Unmarshal(out, &v); err != nil || v.Env["_X_AMZN_TRACE_ID"] == nil {
				t.Fatalf("invocation %d: no _X_AMZN_TRACE_ID in %s", i, out)
			}
			trace = *v.Env["_X_AMZN_TRACE_ID"]
			if n := ChainCount(trace, h.arn); n != i {
				t.Fatalf("invocation %d has count %d in %q", i, n, trace)
			}
			r, _, _ := strings.Cut(trace, ";")
			if root == "" {
				root = r
			} else if r != root {
				t.Fatalf("the chain changed root: %q then %q", root, r)
			}
		}
		// A new chain (no trace) starts again at 1.
		if n, stopped := h.Chain(""); n != 1 || stopped {
			t.Fatalf("new chain: %d %v", n, stopped)
		}
	}
}

// Other functions' counts in the Lineage are kept; each function counts its own.
func TestLineage(t *testing.T) {
	a, b := "arn:aws:lambda:us-east-1:000000000000:function:A", "arn:aws:lambda:us-east-1:000000000000:function:B"
	tr, n := nextTrace("", a)
	if n != 1 || ChainCount(tr, a) != 1 || ChainCount(tr, b) != 0 {
		t.Fatalf("%q: %d", tr, n)
	}
	tr, _ = nextTrace(tr, b)
	tr, _ = nextTrace(tr, a)
	if ChainCount(tr, a) != 2 || ChainCount(tr, b) != 1 {
		t.Fatalf("%q", tr)
	}
	// The versioned form Lambda also writes ("2:<id>:<count>").
	if got := ChainCount("Root=1-a-b;Lineage=2:"+lineageID(a)+":9", a); got != 9 {
		t.Fatalf("versioned lineage count %d", got)
	}
}

// A bootstrap killed mid-invocation is a crashed Lambda instance: the invocation fails as a
// runtime exit, and the next invocation runs in a fresh process.
func TestKilledBootstrapIsReplaced(t *testing.T) {
	t.Parallel()
	h, log := startHost(t, Config{Timeout: 30 * time.Second})
	first := mustCall(t, h, req{Op: "echo"}).PID
	done := make(chan error, 1)
	go func() {
		_, err := call(t, h, req{Op: "hang", Ms: 20_000})
		done <- err
	}()
	// The invocation is in flight once its process says so.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), fmt.Sprintf("pid %d hangs", first)) {
		if time.Now().After(deadline) {
			t.Fatal("the invocation never started in the first process")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if fe := functionError(t, <-done, "Runtime.ExitError"); !strings.Contains(fe.Message, "killed") {
		t.Errorf("message %q", fe.Message)
	}
	if next := mustCall(t, h, req{Op: "echo"}).PID; next == first {
		t.Fatalf("the next invocation ran in the killed process %d", first)
	}
}
