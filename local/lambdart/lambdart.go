// Package lambdart hosts one Lambda function locally: it serves the Lambda Runtime API (2018-06-01) and
// runs the function's real bootstrap against it, one process per concurrent invocation.
package lambdart

// Processes start lazily, are reused while healthy, and are replaced after a crash or a timeout. Each
// process gets its own listener (a free port), so the host always knows which process asked for or
// answered an invocation. The one extension call aws-lambda-go makes, the registration behind
// lambda.WithEnableSIGTERM, is accepted; no extension events are ever delivered. The bootstrap
// environment is the Lambda one plus Config.Env and the parent's PATH, HOME and TMPDIR only:
// credentials and endpoints must be put in Config.Env.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// MaxPayloadBytes is Lambda's limit for synchronous request and response payloads (6 MB).
const MaxPayloadBytes = 6 << 20

const (
	defaultTimeout  = 3 * time.Second // Lambda's default function timeout
	defaultMemoryMB = 128
	defaultRegion   = "us-east-1"
	initTimeout     = 10 * time.Second // Lambda's limit for the init phase
	initBackoff     = time.Second      // no new process starts this soon after an init failure
	stopGrace       = 2 * time.Second  // SIGTERM to SIGKILL on Close
)

// Config describes one function.
type Config struct {
	Name        string            // function logical id
	Path        string            // bootstrap binary
	Env         map[string]string // function environment (from the template)
	Timeout     time.Duration     // per invocation; default 3 s
	MemoryMB    int               // reported to the function; default 128
	Concurrency int               // max processes running at once; default 1
	Log         io.Writer         // bootstrap stdout and stderr, each line prefixed "[Name] "; default discard
	// RecursiveLoop is the function's recursive loop detection setting: "Allow" lets a chain of
	// requests invoke it any number of times; anything else stops the 17th (trace.go).
	RecursiveLoop string
	// Lines, when set, sees every line of the bootstrap's output, as CloudWatch Logs would (it
	// extracts the metrics of EMF lines); called from one goroutine per process, so it must be
	// safe for concurrent use.
	Lines func(line []byte)
}

// FunctionError is an invocation that failed in the function: the error it reported
// (Type is the Go type name of the error, or of the panic value), or one the host reports
// like Lambda does: "Runtime.ExitError" (the process exited), "Sandbox.Timedout",
// "Function.ResponseSizeTooLarge".
type FunctionError struct {
	Type    string
	Message string
}

func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

// Host serves the Runtime API for one function and runs its bootstrap processes.
type Host struct {
	cfg     Config
	arn     string
	env     map[string]string // bootstrap environment, but AWS_LAMBDA_RUNTIME_API
	newID   func() string     // request ids; replaced by tests
	pending chan *invocation  // unbuffered: hands an invocation to a process waiting in /next
	done    chan struct{}     // closed by Close
	stopCtx func() bool
	close   sync.Once
	logMu   sync.Mutex // one line at a time to cfg.Log
	wg      sync.WaitGroup

	mu         sync.Mutex
	closed     bool
	procs      map[*process]struct{}
	waiting    int           // Invoke calls waiting for a process
	idle       int           // /next requests waiting for an invocation
	starting   int           // processes that have not called /next yet
	initFails  int           // init failures so far
	initFailed chan struct{} // closed, and replaced, on each init failure
	initErr    error         // the latest init failure
	initErrAt  time.Time
	retry      *time.Timer // scale again once initBackoff has passed
}

type invocation struct {
	id      string
	trace   string // Lambda-Runtime-Trace-Id
	payload []byte
	timer   *time.Timer   // the function timeout, from delivery
	done    chan struct{} // closed when out and err are set
	out     []byte
	err     error
}

// Start checks c and returns a host for it. No process starts until the first Invoke. The
// host is closed when ctx is done, or by Close.
func Start(ctx context.Context, c Config) (*Host, error) {
	if c.Name == "" {
		return nil, errors.New("lambdart: config has no function name")
	}
	path, err := filepath.Abs(c.Path)
	if err == nil {
		var fi os.FileInfo
		if fi, err = os.Stat(path); err == nil && !fi.Mode().IsRegular() {
			err = errors.New("not a regular file")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lambdart: %s: bootstrap %q: %w", c.Name, c.Path, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("lambdart: %s: %w", c.Name, err)
	}
	c.Path = path
	c.Timeout = positive(c.Timeout, defaultTimeout)
	c.MemoryMB = positive(c.MemoryMB, defaultMemoryMB)
	c.Concurrency = positive(c.Concurrency, 1)
	if c.Log == nil {
		c.Log = io.Discard
	}
	h := &Host{
		cfg: c, newID: newUUID,
		pending: make(chan *invocation), done: make(chan struct{}),
		procs: map[*process]struct{}{}, initFailed: make(chan struct{}),
	}
	h.env = h.environment()
	h.arn = "arn:aws:lambda:" + h.env["AWS_REGION"] + ":000000000000:function:" + c.Name
	h.stopCtx = context.AfterFunc(ctx, func() { _ = h.Close() })
	return h, nil
}

// positive returns v, or def when v is not positive.
func positive[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// environment is the bootstrap environment: the parent's PATH, HOME and TMPDIR, Lambda's
// defaults, Config.Env, then the variables Lambda itself sets, which Config.Env cannot override.
func (h *Host) environment() map[string]string {
	c := h.cfg
	env := map[string]string{"AWS_LAMBDA_LOG_FORMAT": "Text", "TZ": ":UTC", "LANG": "en_US.UTF-8"}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	maps.Copy(env, c.Env)
	region := cmp.Or(c.Env["AWS_REGION"], defaultRegion)
	env["AWS_REGION"] = region
	env["AWS_DEFAULT_REGION"] = cmp.Or(c.Env["AWS_DEFAULT_REGION"], region)
	maps.Copy(env, map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        c.Name,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(c.MemoryMB),
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + c.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      "local/[$LATEST]" + c.Name,
		"LAMBDA_TASK_ROOT":                filepath.Dir(c.Path),
		"_HANDLER":                        filepath.Base(c.Path),
	})
	return env
}

// Invoke runs one invocation and returns the function's response payload. A failed
// invocation returns an error wrapping a *FunctionError; a bootstrap that fails to start or
// to initialize returns one that includes the tail of its output. If ctx is done first,
// Invoke returns ctx.Err() and the invocation's late result, if any, is dropped.
func (h *Host) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	return h.InvokeTraced(ctx, payload, "")
}

// Chain returns the place an invocation caused by a request carrying trace header would have in
// its chain of requests (1 for a new chain), and whether Lambda's recursive loop detection stops it.
func (h *Host) Chain(header string) (count int, stopped bool) {
	count = ChainCount(header, h.arn) + 1
	return count, count > MaxChain && h.cfg.RecursiveLoop != "Allow"
}

// InvokeTraced is Invoke for an invocation caused by a request that carried the X-Ray trace
// header trace ("" starts a new chain): the function's trace continues it, and an invocation
// Lambda's recursive loop detection stops returns a *RecursiveInvocationError without running.
func (h *Host) InvokeTraced(ctx context.Context, payload []byte, trace string) ([]byte, error) {
	if count, stopped := h.Chain(trace); stopped {
		return nil, &RecursiveInvocationError{Function: h.cfg.Name, Count: count}
	}
	if len(payload) > MaxPayloadBytes {
		return nil, fmt.Errorf("lambdart: %s: request payload is %d bytes, over the %d byte limit",
			h.cfg.Name, len(payload), MaxPayloadBytes)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	trace, _ = nextTrace(trace, h.arn)
	inv := &invocation{id: h.newID(), trace: trace, payload: payload, done: make(chan struct{})}
	if err := h.handOff(ctx, inv); err != nil {
		return nil, err
	}
	select {
	case <-inv.done:
		return inv.out, inv.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// handOff waits until a process takes inv from /next, starting processes as needed.
func (h *Host) handOff(ctx context.Context, inv *invocation) error {
	var err error
	h.mu.Lock()
	gen := h.initFails
	h.waiting++
	h.scale()
	for err == nil {
		if h.closed {
			err = fmt.Errorf("lambdart: %s: host closed", h.cfg.Name)
			break
		}
		if h.initFails != gen { // a process failed to initialize while we waited
			err = h.initErr
			break
		}
		failed := h.initFailed
		h.mu.Unlock()
		select {
		case h.pending <- inv:
			return nil // the /next handler counted it off h.waiting
		case <-failed:
		case <-h.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
		h.mu.Lock()
	}
	h.waiting--
	h.mu.Unlock()
	return err
}

// scale starts processes while invocations wait with no process idle or starting for them.
// Called with h.mu held.
func (h *Host) scale() {
	for !h.closed && h.waiting > h.idle+h.starting && len(h.procs) < h.cfg.Concurrency {
		if wait := time.Until(h.initErrAt.Add(initBackoff)); wait > 0 {
			if h.retry == nil {
				h.retry = time.AfterFunc(wait, func() {
					h.mu.Lock()
					defer h.mu.Unlock()
					h.retry = nil
					h.scale()
				})
			}
			return
		}
		if err := h.spawn(); err != nil {
			h.initFailure(err)
			return
		}
	}
}

// initFailure fails the invocations waiting for a process with err. Called with h.mu held.
func (h *Host) initFailure(err error) {
	h.initErr, h.initErrAt = err, time.Now()
	h.initFails++
	close(h.initFailed)
	h.initFailed = make(chan struct{})
}

// finish completes inv unless it is already complete. Called with h.mu held.
func (h *Host) finish(p *process, inv *invocation, out []byte, err error) bool {
	select {
	case <-inv.done:
		return false
	default:
	}
	if inv.timer != nil {
		inv.timer.Stop()
	}
	delete(p.inflight, inv.id)
	inv.out, inv.err = out, err
	close(inv.done)
	return true
}

// fail completes inv with a function error. Called with h.mu held.
func (h *Host) fail(p *process, inv *invocation, typ, msg string) bool {
	fe := &FunctionError{Type: typ, Message: msg}
	return h.finish(p, inv, nil, fmt.Errorf("lambdart: %s: request %s: %w", h.cfg.Name, inv.id, fe))
}

// timedOut fails inv with Lambda's timeout error and kills its process.
func (h *Host) timedOut(p *process, inv *invocation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	msg := fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", inv.id, h.cfg.Timeout.Seconds())
	if h.fail(p, inv, "Sandbox.Timedout", msg) {
		_ = p.cmd.Process.Kill()
	}
}

// Close stops the processes (SIGTERM, then SIGKILL after 2 s) and their servers, and fails
// the invocations still running. It is idempotent and always returns nil.
func (h *Host) Close() error {
	h.close.Do(func() {
		h.stopCtx()
		h.mu.Lock()
		h.closed = true
		close(h.done)
		if h.retry != nil {
			h.retry.Stop()
		}
		procs := make([]*process, 0, len(h.procs))
		for p := range h.procs {
			procs = append(procs, p)
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
		h.mu.Unlock()
		kill := time.AfterFunc(stopGrace, func() {
			for _, p := range procs {
				_ = p.cmd.Process.Kill()
			}
		})
		h.wg.Wait()
		kill.Stop()
	})
	return nil
}

// PIDs returns the process ids of the function's running bootstraps (tests kill them to see a
// crashed instance replaced).
func (h *Host) PIDs() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	pids := make([]int, 0, len(h.procs))
	for p := range h.procs {
		pids = append(pids, p.cmd.Process.Pid)
	}
	return pids
}

// InvokeOnce starts a host for c, runs one invocation and closes the host.
func InvokeOnce(ctx context.Context, c Config, payload []byte) ([]byte, error) {
	h, err := Start(ctx, c)
	if err != nil {
		return nil, err
	}
	defer func() { _ = h.Close() }()
	return h.Invoke(ctx, payload)
}
