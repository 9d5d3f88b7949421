package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// assertStopped checks the process is gone and its port no longer answers.
func assertStopped(t *testing.T, p *Process) {
	t.Helper()
	t0 := time.Now()
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("%s stopped in %s", p.name, time.Since(t0).Round(time.Millisecond))
	if err := p.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if !p.exited() {
		t.Fatal("process still running after Stop")
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process group %d still exists after Stop: %v", p.cmd.Process.Pid, err)
	}
	host := strings.TrimPrefix(p.Endpoint, "http://")
	if c, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Stop", host)
	}
}

func TestStartDynamoInMemory(t *testing.T) {
	t.Parallel()
	var log bytes.Buffer
	t0 := time.Now()
	p, err := StartDynamo(context.Background(), DynamoOptions{Root: repoRoot(t), Log: &lockedWriter{w: &log}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("DynamoDB Local ready at %s in %s", p.Endpoint, time.Since(t0).Round(time.Millisecond))
	if !strings.HasPrefix(p.Endpoint, "http://127.0.0.1:") {
		t.Errorf("Endpoint = %q, want http://127.0.0.1:PORT", p.Endpoint)
	}
	if err := probeDynamo(context.Background(), http.DefaultClient, p.Endpoint); err != nil {
		t.Errorf("ListTables after start: %v", err)
	}
	assertStopped(t, p)
	if !strings.Contains(log.String(), "InMemory:\ttrue") || !strings.Contains(log.String(), "SharedDb:\ttrue") {
		t.Errorf("log does not show an in-memory shared database:\n%s", log.String())
	}
}

func TestStartDynamoDataDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nested", "ddb")
	p, err := StartDynamo(context.Background(), DynamoOptions{Root: repoRoot(t), DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	// A table written through the raw API lands in DataDir.
	req, _ := http.NewRequest(http.MethodPost, p.Endpoint+"/", strings.NewReader(
		`{"TableName":"persisted","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],`+
			`"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}`))
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.CreateTable")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=local/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CreateTable: status %d: %s", resp.StatusCode, body)
	}
	assertStopped(t, p)
	if _, err := os.Stat(filepath.Join(dir, "shared-local-instance.db")); err != nil {
		t.Errorf("no database file in DataDir: %v", err)
	}

	// A second start on the same DataDir sees the table.
	p, err = StartDynamo(context.Background(), DynamoOptions{Root: repoRoot(t), DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	req, _ = http.NewRequest(http.MethodPost, p.Endpoint+"/", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=other/20250101/eu-west-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"persisted"`) {
		t.Errorf("after restart (other key and region), ListTables = %s, want the persisted table", body)
	}
}

func TestStartSQS(t *testing.T) {
	t.Parallel()
	var log bytes.Buffer
	t0 := time.Now()
	p, err := StartSQS(context.Background(), SQSOptions{Root: repoRoot(t), Log: &lockedWriter{w: &log}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fauxqs ready at %s in %s", p.Endpoint, time.Since(t0).Round(time.Millisecond))
	if err := probeSQS(context.Background(), http.DefaultClient, p.Endpoint); err != nil {
		t.Errorf("ListQueues after start: %v", err)
	}
	// Loopback only: the port must not answer on another local address, if the machine has one.
	if ip := nonLoopbackIP(); ip != "" {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, strings.TrimPrefix(p.Endpoint, "http://127.0.0.1:")), time.Second); err == nil {
			c.Close()
			t.Errorf("fauxqs answers on %s, want 127.0.0.1 only", ip)
		}
	}
	assertStopped(t, p)
	if !strings.Contains(log.String(), "incoming request") {
		t.Errorf("with Log set, requests should be logged; got:\n%s", log.String())
	}
}

func nonLoopbackIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

func TestStartOnBusyPort(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = StartSQS(context.Background(), SQSOptions{Root: repoRoot(t), Port: port})
	if err == nil || !strings.Contains(err.Error(), "port "+strconv.Itoa(port)) {
		t.Fatalf("StartSQS on a busy port: err = %v, want a port error", err)
	}
}

func TestStartWithoutNodeModules(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if _, err := StartDynamo(context.Background(), DynamoOptions{Root: root}); err == nil || !strings.Contains(err.Error(), "npm ci") {
		t.Errorf("StartDynamo without node_modules: err = %v, want a hint to run npm ci", err)
	}
	if _, err := StartSQS(context.Background(), SQSOptions{Root: root}); err == nil || !strings.Contains(err.Error(), "npm ci") {
		t.Errorf("StartSQS without node_modules: err = %v, want a hint to run npm ci", err)
	}
}

func TestStartReportsEarlyExit(t *testing.T) {
	t.Parallel()
	// A fake fauxqs that dies at once: the error must carry its output.
	root := t.TempDir()
	dist := filepath.Join(root, "node_modules", "fauxqs", "dist")
	if err := os.MkdirAll(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dist, "app.js"), []byte(`console.error("boom: broken install"); process.exit(3);`), 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	_, err := StartSQS(context.Background(), SQSOptions{Root: root})
	if err == nil || !strings.Contains(err.Error(), "boom: broken install") || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("err = %v, want the early exit with the process output", err)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("early exit took %s to notice", d)
	}
}

func TestStartTimesOut(t *testing.T) {
	t.Parallel()
	// A fake fauxqs that never listens: start gives up at the context deadline and kills it.
	root := t.TempDir()
	dist := filepath.Join(root, "node_modules", "fauxqs", "dist")
	if err := os.MkdirAll(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dist, "app.js"), []byte(`console.log("sleeping"); setInterval(() => {}, 1000);
export function buildApp() { return { listen: () => new Promise(() => {}) }; }`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err := StartSQS(ctx, SQSOptions{Root: root})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "sleeping") {
		t.Fatalf("err = %v, want a deadline error with the output", err)
	}
}

func TestFindRoot(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b", "c")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := FindRoot(deep)
	if err != nil || got != root {
		t.Fatalf("FindRoot = %q, %v; want %q", got, err, root)
	}
}

func TestTailBuffer(t *testing.T) {
	t.Parallel()
	tb := &tailBuffer{max: 8}
	tb.Write([]byte("0123456789"))
	tb.Write([]byte("ab"))
	if got := tb.String(); got != "456789ab" {
		t.Fatalf("tail = %q, want %q", got, "456789ab")
	}
}

// fauxqs takes what SQS takes in a body: characters above U+FFFF (an agent's emoji) come back as
// sent, while those SQS refuses (U+FFFE) are still refused. Without the launcher's fix fauxqs
// refused the emoji (each half of its UTF-16 surrogate pair).
func TestSQSTakesCharactersAboveUFFFF(t *testing.T) {
	t.Parallel()
	p, err := StartSQS(context.Background(), SQSOptions{Root: repoRoot(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	call := func(target string, in map[string]any) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(in)
		req, err := http.NewRequest(http.MethodPost, p.Endpoint+"/", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		req.Header.Set("X-Amz-Target", "AmazonSQS."+target)
		req.Header.Set("X-Amz-Date", "20250101T000000Z")
		req.Header.Set("Authorization", fmt.Sprintf(localAuth, "sqs"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	status, out := call("CreateQueue", map[string]any{"QueueName": "chars"})
	url, _ := out["QueueUrl"].(string)
	if status != http.StatusOK || url == "" {
		t.Fatalf("CreateQueue: %d %v", status, out)
	}
	const body = "{\"text\":\"Done \U0001F600 \U0001F44D \U0010FFFD\"}"
	if status, out := call("SendMessage", map[string]any{"QueueUrl": url, "MessageBody": body}); status != http.StatusOK {
		t.Fatalf("SendMessage of characters above U+FFFF: %d %v", status, out)
	}
	if status, out := call("SendMessage", map[string]any{"QueueUrl": url, "MessageBody": "a\uFFFEb"}); status == http.StatusOK {
		t.Fatalf("SendMessage of U+FFFE taken: %v", out)
	}
	status, out = call("ReceiveMessage", map[string]any{"QueueUrl": url, "MaxNumberOfMessages": 10})
	msgs, _ := out["Messages"].([]any)
	if status != http.StatusOK || len(msgs) != 1 || msgs[0].(map[string]any)["Body"] != body {
		t.Fatalf("ReceiveMessage: %d %v, want the one body %q", status, out, body)
	}
}
