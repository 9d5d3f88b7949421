package lambdart

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	runtimePrefix = "/2018-06-01/runtime"
	tailLines     = 20       // output lines kept for init failure errors
	maxLineBytes  = 64 << 10 // longer output lines are split
)

// process is one running bootstrap with its own Runtime API server. All fields but exited
// are guarded by Host.mu once the process is started.
type process struct {
	cmd       *exec.Cmd
	srv       *http.Server
	api       string // host:port, AWS_LAMBDA_RUNTIME_API
	out       *lineWriter
	initTimer *time.Timer
	ready     bool           // has called /next
	dead      bool           // has exited
	initErr   *FunctionError // posted to /init/error
	inflight  map[string]*invocation
	exited    chan struct{} // closed once the process has exited and is cleaned up
}

// spawn starts a process. Called with h.mu held.
func (h *Host) spawn() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("lambdart: %s: listen for the runtime API: %w", h.cfg.Name, err)
	}
	p := &process{
		api: ln.Addr().String(), out: &lineWriter{h: h},
		inflight: map[string]*invocation{}, exited: make(chan struct{}),
	}
	p.srv = &http.Server{Handler: h.routes(p), ReadHeaderTimeout: 10 * time.Second}
	env := maps.Clone(h.env)
	env["AWS_LAMBDA_RUNTIME_API"] = p.api
	p.cmd = exec.Command(h.cfg.Path)
	p.cmd.Dir = env["LAMBDA_TASK_ROOT"]
	for _, k := range slices.Sorted(maps.Keys(env)) {
		p.cmd.Env = append(p.cmd.Env, k+"="+env[k])
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.WaitDelay = time.Second // a child holding the output pipe must not block Wait
	if err := p.cmd.Start(); err != nil {
		_ = ln.Close()
		return fmt.Errorf("lambdart: %s: start bootstrap: %w", h.cfg.Name, err)
	}
	h.procs[p] = struct{}{}
	h.starting++
	p.initTimer = time.AfterFunc(initTimeout, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !p.ready && !p.dead {
			p.initErr = &FunctionError{Type: "Sandbox.Timedout", Message: "init did not finish in " + initTimeout.String()}
			_ = p.cmd.Process.Kill()
		}
	})
	h.wg.Add(2)
	go func() {
		defer h.wg.Done()
		_ = p.srv.Serve(ln)
	}()
	go h.watch(p)
	return nil
}

// watch waits for p to exit, fails what it was running and replaces it if invocations wait.
func (h *Host) watch(p *process) {
	defer h.wg.Done()
	werr := p.cmd.Wait()
	p.out.flush()
	reason := "exit status 0"
	if werr != nil {
		reason = werr.Error()
	}
	h.mu.Lock()
	p.dead = true
	p.initTimer.Stop()
	delete(h.procs, p)
	if !p.ready {
		h.starting--
		if !h.closed {
			fe := p.initErr
			if fe == nil {
				fe = &FunctionError{Type: "Runtime.ExitError", Message: "Error: Runtime exited with error: " + reason}
			}
			h.initFailure(fmt.Errorf("lambdart: %s: init failed: %w; last output:\n%s", h.cfg.Name, fe, p.out.tail()))
		}
	}
	for _, inv := range p.inflight {
		if h.closed {
			h.finish(p, inv, nil, fmt.Errorf("lambdart: %s: request %s: host closed", h.cfg.Name, inv.id))
		} else {
			h.fail(p, inv, "Runtime.ExitError", "RequestId: "+inv.id+" Error: Runtime exited with error: "+reason)
		}
	}
	h.scale()
	h.mu.Unlock()
	close(p.exited)
	_ = p.srv.Close()
}

// routes is the Runtime API of one process.
func (h *Host) routes(p *process) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+runtimePrefix+"/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		h.next(p, w, r)
	})
	mux.HandleFunc("POST "+runtimePrefix+"/invocation/{id}/response", func(w http.ResponseWriter, r *http.Request) {
		h.result(p, w, r, false)
	})
	mux.HandleFunc("POST "+runtimePrefix+"/invocation/{id}/error", func(w http.ResponseWriter, r *http.Request) {
		h.result(p, w, r, true)
	})
	mux.HandleFunc("POST "+runtimePrefix+"/init/error", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxPayloadBytes))
		h.mu.Lock()
		defer h.mu.Unlock()
		if p.ready {
			apiError(w, http.StatusForbidden, "InvalidStateTransition", "init/error after the first /next")
			return
		}
		p.initErr = parseFunctionError(body, r.Header.Get("Lambda-Runtime-Function-Error-Type"))
		_ = p.cmd.Process.Kill() // Lambda ends the sandbox after an init error
		accepted(w)
	})
	// aws-lambda-go's WithEnableSIGTERM registers an extension, then waits on its event/next
	// forever; registering is all Lambda needs to send SIGTERM before SIGKILL.
	mux.HandleFunc("POST /2020-01-01/extension/register", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Lambda-Extension-Identifier", newUUID())
		writeJSON(w, http.StatusOK, map[string]string{
			"functionName": h.cfg.Name, "functionVersion": "$LATEST", "handler": h.env["_HANDLER"],
		})
	})
	mux.HandleFunc("GET /2020-01-01/extension/event/next", func(w http.ResponseWriter, r *http.Request) {
		select { // no events are delivered
		case <-p.exited:
		case <-r.Context().Done():
		}
	})
	return mux
}

// next blocks until an invocation is handed off, then delivers it.
func (h *Host) next(p *process, w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	if p.dead {
		h.mu.Unlock()
		apiError(w, http.StatusGone, "ProcessExited", "the process has exited")
		return
	}
	if !p.ready {
		p.ready = true
		p.initTimer.Stop()
		h.starting--
	}
	h.idle++
	h.mu.Unlock()

	var inv *invocation
	select {
	case inv = <-h.pending:
	case <-p.exited:
	case <-r.Context().Done():
	}
	h.mu.Lock()
	h.idle--
	if inv == nil {
		h.mu.Unlock()
		return
	}
	h.waiting--
	if p.dead {
		h.fail(p, inv, "Runtime.ExitError", "RequestId: "+inv.id+" Error: Runtime exited before the invocation was delivered")
		h.mu.Unlock()
		return
	}
	p.inflight[inv.id] = inv
	inv.timer = time.AfterFunc(h.cfg.Timeout, func() { h.timedOut(p, inv) })
	deadline := time.Now().Add(h.cfg.Timeout)
	h.mu.Unlock()

	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	hd.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(deadline.UnixMilli(), 10))
	hd.Set("Lambda-Runtime-Invoked-Function-Arn", h.arn)
	hd.Set("Lambda-Runtime-Trace-Id", inv.trace)
	hd.Set("Content-Length", strconv.Itoa(len(inv.payload)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.payload) // if this fails the process is gone, and watch fails inv
}

// result takes the response (or, with isErr, the error) of an invocation.
func (h *Host) result(p *process, w http.ResponseWriter, r *http.Request, isErr bool) {
	id := r.PathValue("id")
	h.mu.Lock()
	inv := p.inflight[id]
	h.mu.Unlock()
	if inv == nil {
		apiError(w, http.StatusBadRequest, "InvalidRequestID", "unknown or finished request id "+id)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxPayloadBytes))
	var tooLarge *http.MaxBytesError
	var fe *FunctionError
	switch {
	case errors.As(err, &tooLarge):
		fe = &FunctionError{Type: "Function.ResponseSizeTooLarge", Message: fmt.Sprintf(
			"Response payload size exceeded maximum allowed payload size (%d bytes).", MaxPayloadBytes)}
	case err != nil:
		apiError(w, http.StatusBadRequest, "InvalidRequest", "read body: "+err.Error())
		return // the connection broke: the process is going away and watch fails inv
	case isErr:
		fe = parseFunctionError(body, r.Header.Get("Lambda-Runtime-Function-Error-Type"))
	case r.Trailer.Get("Lambda-Runtime-Function-Error-Type") != "":
		// aws-lambda-go reports an error reading a streamed (io.Reader) response in trailers.
		b, _ := base64.StdEncoding.DecodeString(r.Trailer.Get("Lambda-Runtime-Function-Error-Body"))
		fe = parseFunctionError(b, r.Trailer.Get("Lambda-Runtime-Function-Error-Type"))
	}
	var ok bool
	h.mu.Lock()
	if fe != nil {
		ok = h.fail(p, inv, fe.Type, fe.Message)
	} else {
		ok = h.finish(p, inv, body, nil)
	}
	h.mu.Unlock()
	switch {
	case !ok:
		apiError(w, http.StatusBadRequest, "InvalidRequestID", "unknown or finished request id "+id)
	case tooLarge != nil:
		apiError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fe.Message)
	default:
		accepted(w)
	}
}

// parseFunctionError reads the {errorMessage, errorType} JSON a runtime posts.
func parseFunctionError(body []byte, headerType string) *FunctionError {
	var e struct {
		Message string `json:"errorMessage"`
		Type    string `json:"errorType"`
	}
	if json.Unmarshal(body, &e) != nil {
		e.Message = string(body)
	}
	return &FunctionError{Type: cmp.Or(e.Type, headerType, "Unhandled"), Message: e.Message}
}

func accepted(w http.ResponseWriter) {
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "OK"})
}

func apiError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]string{"errorMessage": msg, "errorType": typ})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never returns an error (crypto/rand docs)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// lineWriter copies a process's output to Config.Log, line by line with the "[Name] "
// prefix, and keeps the last lines for init failure errors. exec calls Write from one
// goroutine (Stdout and Stderr are the same writer); tail is read after Wait.
type lineWriter struct {
	h     *Host
	buf   []byte
	lines []string
}

func (w *lineWriter) Write(b []byte) (int, error) {
	rest := append(w.buf, b...)
	for {
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			w.line(rest[:i])
			rest = rest[i+1:]
		} else if len(rest) >= maxLineBytes {
			w.line(rest[:maxLineBytes])
			rest = rest[maxLineBytes:]
		} else {
			break
		}
	}
	w.buf = append(w.buf[:0], rest...)
	return len(b), nil
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.line(w.buf)
		w.buf = w.buf[:0]
	}
}

func (w *lineWriter) line(l []byte) {
	l = bytes.TrimSuffix(l, []byte("\r"))
	w.lines = append(w.lines, string(l))
	if len(w.lines) > tailLines {
		w.lines = w.lines[1:]
	}
	if w.h.cfg.Lines != nil {
		w.h.cfg.Lines(l)
	}
	out := make([]byte, 0, len(w.h.cfg.Name)+len(l)+4)
	out = append(append(append(append(out, '['), w.h.cfg.Name...), "] "...), l...)
	w.h.logMu.Lock()
	defer w.h.logMu.Unlock()
	_, _ = w.h.cfg.Log.Write(append(out, '\n'))
}

func (w *lineWriter) tail() string {
	if len(w.lines) == 0 {
		return "(no output)"
	}
	return strings.Join(w.lines, "\n")
}
