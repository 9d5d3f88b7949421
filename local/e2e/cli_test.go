package e2e_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-github/v93/github"
	"github.com/slack-go/slack"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stripe/stripe-go/v85/webhook"
)

// The hookgate command line (cmd/hookgate), tested as users run it: the real binary, built once,
// against the live stack. Every request it makes goes through cliProxy, which sends it on with
// apiClient's validating transport, so the command line cannot drift from openapi.yaml either.

// TestCLI builds the binary into its TempDir once; its subtests run side by side.
func TestCLI(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "hookgate")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/hookgate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/hookgate: %v\n%s", err, out)
	}
	e := liveStack(t)
	t.Run("ListenForwardsEveryEventOnceAcrossDrops", func(t *testing.T) { t.Parallel(); cliListen(t, e, bin) })
	t.Run("SendIsAcceptedForEveryScheme", func(t *testing.T) { t.Parallel(); cliSend(t, e, bin) })
	t.Run("SendGeneric", func(t *testing.T) { inLane(t, laneLive); cliSendGeneric(t, e, bin) })
	t.Run("SignVerifiesWithTheProvidersLibraries", func(t *testing.T) { t.Parallel(); cliSign(t, bin) })
	t.Run("EveryCommandsJSONParses", func(t *testing.T) { t.Parallel(); cliJSON(t, e, bin) })
}

// cliProxy stands between the command line and the stack: it sends every request on through the
// validating client, and cuts stream windows in the middle of an event when asked.
type cliProxy struct {
	target string
	client *http.Client
	srv    *httptest.Server
	cuts   atomic.Int32 // stream windows still to cut
	cut    atomic.Int32 // windows cut
}

func newCLIProxy(t *testing.T, target string) *cliProxy {
	p := &cliProxy{target: target, client: apiClient(t)}
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *cliProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	if len(body) == 0 {
		out.Body = nil
	}
	out.Header = r.Header.Clone()
	resp, err := p.client.Do(out)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(resp.StatusCode)
	raw, _ := io.ReadAll(resp.Body)
	if r.URL.Path == "/v1/events/stream" && p.cuts.Load() > 0 {
		// Cut inside the window's last event: the events before it arrive whole, it does not.
		if i := bytes.LastIndex(raw, []byte("\ndata: ")); i > 0 && p.cuts.Add(-1) >= 0 {
			p.cut.Add(1)
			w.Write(raw[:i+10])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the connection drops mid-response
		}
	}
	w.Write(raw)
}

// cliEnv runs the binary against a proxy of the stack with one API key.
type cliEnv struct {
	bin   string
	proxy *cliProxy
	env   []string
}

func newCLIEnv(t *testing.T, e *liveEnv, bin, key string, extra ...string) *cliEnv {
	return &cliEnv{bin: bin, proxy: newCLIProxy(t, e.stack.URL),
		env: append([]string{"HOOKGATE_API_KEY=" + key, "HOME=" + t.TempDir()}, extra...)}
}

func (c *cliEnv) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	if c.proxy != nil { // sign and verify need no API
		cmd.Env = append(cmd.Env, "HOOKGATE_API="+c.proxy.srv.URL)
	}
	return cmd
}

// run runs the binary to its end: exit code, stdout, stderr.
func (c *cliEnv) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := c.cmd(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("hookgate %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// json runs the binary with --json, wants exit 0, and decodes each line of its output.
func (c *cliEnv) json(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	code, out, errs := c.run(t, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("hookgate %s --json: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return jsonLines(t, strings.Join(args, " "), out)
}

func jsonLines(t *testing.T, what, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("hookgate %s --json: %q is not a JSON object: %v", what, line, err)
		}
		objs = append(objs, m)
	}
	return objs
}

// syncBuffer is a bytes.Buffer a running command writes while the test reads.
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

// forwarded is one request listen made to the local endpoint.
type forwarded struct {
	header http.Header
	body   []byte
}

// localEndpoint is the developer's local server listen forwards to; it keeps every request.
type localEndpoint struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []forwarded
}

func newLocalEndpoint(t *testing.T) *localEndpoint {
	l := &localEndpoint{}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		l.mu.Lock()
		l.got = append(l.got, forwarded{r.Header.Clone(), body})
		l.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *localEndpoint) requests() []forwarded {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]forwarded(nil), l.got...)
}

// listen forwards every event of a 100-message run to a local endpoint exactly once, signed
// under both schemes with the secret it prints, while the proxy cuts the stream in the middle of
// an event three times; Ctrl-C stops it and it prints the cursor to resume from.
func cliListen(t *testing.T, e *liveEnv, bin string) {
	ws := uniqueWS("cli-listen")
	c := newCLIEnv(t, e, bin, apiKey(t, e, ws))
	src := c.json(t, "sources", "create", "--name", "trigger", "--scheme", "bearer")[0]
	secret, _ := src["secret"].(string)

	local := newLocalEndpoint(t)
	listen := c.cmd("listen", "--forward-to", local.srv.URL+"/hook", "--since", "0")
	var stdout, stderr syncBuffer
	listen.Stdout, listen.Stderr = &stdout, &stderr
	if err := listen.Start(); err != nil {
		t.Fatal(err)
	}
	defer listen.Process.Kill()
	waitFor(t, "listen's signing secret", time.Minute, func() bool { return strings.Contains(stderr.String(), "Signing secret: ") })
	signing := regexp.MustCompile(`Signing secret: (whsec_\S+)`).FindStringSubmatch(stderr.String())[1]

	const messages = 100
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range messages {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := do(t, http.MethodPost, e.stack.URL+"/v1/integrations/trigger?workspace_id="+ws,
				map[string]string{"authorization": "Bearer " + secret, "content-type": "application/json"},
				fmt.Sprintf(`{"channel":"cli","external_id":"u-%d","text":"message %d"}`, i, i))
			if r.status != 202 {
				t.Errorf("trigger %d: %d %s", i, r.status, r.raw)
			}
		}()
		if i == 10 || i == 50 || i == 90 {
			c.proxy.cuts.Add(1) // the next window with an event is cut
		}
	}
	wg.Wait()
	want := 4 * messages // message.received, run.created, message.sent, run.completed
	waitFor(t, fmt.Sprintf("%d events forwarded", want), 5*time.Minute, func() bool { return len(local.requests()) >= want })
	time.Sleep(time.Second) // a (wrong) extra forward would arrive now

	if err := listen.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := listen.Wait(); err != nil {
		t.Fatalf("listen after Ctrl-C: %v\n%s", err, stderr.String())
	}
	log := logOf(t, e.env, ws)
	if len(log) != want {
		t.Fatalf("the workspace's log has %d events, want %d", len(log), want)
	}
	if n := c.proxy.cut.Load(); n < 3 {
		t.Fatalf("the stream was cut %d times, want 3", n)
	}
	if !strings.Contains(stderr.String(), "stream interrupted") {
		t.Fatalf("listen did not report the drops:\n%s", stderr.String())
	}
	last := log[len(log)-1].Cursor
	resume := fmt.Sprintf("Resume with: hookgate listen --forward-to %s/hook --since %d", local.srv.URL, last)
	if !strings.Contains(stderr.String(), resume) {
		t.Fatalf("listen's last words lack %q:\n%s", resume, stderr.String())
	}

	// Every event of the log exactly once, in log order, as a subscription delivers it.
	got := local.requests()
	if len(got) != len(log) {
		t.Fatalf("%d requests forwarded, want %d (one per event)", len(got), len(log))
	}
	for i, f := range got {
		ev := log[i]
		var env envelope
		if err := json.Unmarshal(f.body, &env); err != nil {
			t.Fatalf("request %d: body %q", i, f.body)
		}
		id, ts := f.header.Get("webhook-id"), f.header.Get("webhook-timestamp")
		switch {
		case env.ID != ev.ID || env.Type != ev.Type || env.WorkspaceID != ws || id != ev.ID:
			t.Fatalf("request %d is %s %s (webhook-id %s), the log's event %d is %s %s", i, env.ID, env.Type, id, ev.Cursor, ev.ID, ev.Type)
		case !verifyStandard(signing, id, ts, f.header.Get("webhook-signature"), f.body):
			t.Fatalf("request %d: the Standard Webhooks signature does not verify", i)
		case !verifySHA256(signing, f.header.Get("X-Webhook-Signature"), f.body):
			t.Fatalf("request %d: X-Webhook-Signature does not verify", i)
		case f.header.Get("Content-Type") != "application/json" || !strings.HasPrefix(f.header.Get("User-Agent"), "Hookgate/"):
			t.Fatalf("request %d: headers %v", i, f.header)
		}
	}
	if lines := strings.Count(stdout.String(), "[204]"); lines != want {
		t.Fatalf("listen printed %d event lines with the local answer, want %d:\n%s", lines, want, stdout.String())
	}
}

// send posts webhooks each source of the workspace accepts (202), signed for its scheme; signed
// with another secret it is refused (401, exit 1, the API's code) and nothing is recorded.
func cliSend(t *testing.T, e *liveEnv, bin string) {
	ws := uniqueWS("cli-send")
	c := newCLIEnv(t, e, bin, apiKey(t, e, ws), "HOOKGATE_WORKSPACE="+ws)
	schemes := []string{"standard_webhooks", "stripe", "github", "slack", "hmac_sha256", "shared_secret", "bearer"}
	for _, scheme := range schemes {
		name := strings.ReplaceAll(scheme, "_", "-")
		secret := secretFor(scheme)
		if scheme == "stripe" {
			secret = "whsec_cli_stripe_secret_0123456789"
		}
		c.json(t, "sources", "create", "--name", name, "--scheme", scheme, "--secret", secret)
		for range 2 { // each send is a new delivery (its sample has fresh ids), not a duplicate
			r := c.json(t, "send", "webhook", "--source", name, "--scheme", scheme, "--secret", secret)[0]
			if r["accepted"] != true {
				t.Fatalf("send webhook %s: %v", scheme, r)
			}
		}
		wrong := "whsec_" + base64.StdEncoding.EncodeToString([]byte("not the source's secret, no"))
		code, out, errs := c.run(t, "send", "webhook", "--source", name, "--scheme", scheme, "--secret", wrong)
		if code != 1 || out != "" || !strings.Contains(errs, "Error: unauthorized: invalid signature (HTTP 401)") {
			t.Fatalf("send webhook %s with another secret: exit %d %q %q", scheme, code, out, errs)
		}
	}
	// The Zapier/Make door, through the workspace's trigger source (HMAC).
	c.json(t, "sources", "create", "--name", "trigger", "--scheme", "hmac_sha256", "--secret", "cli-trigger-secret-0123")
	r := c.json(t, "send", "trigger", "--text", "from the cli", "--secret", "cli-trigger-secret-0123")[0]
	if r["run_id"] == nil {
		t.Fatalf("send trigger: %v", r)
	}
	if code, _, errs := c.run(t, "send", "trigger", "--text", "forged", "--secret", "another-secret-0123456"); code != 1 || !strings.Contains(errs, "unauthorized") {
		t.Fatalf("send trigger with another secret: exit %d %q", code, errs)
	}
	waitFor(t, "the trigger's run", time.Minute, func() bool { return countType(logOf(t, e.env, ws), "run.completed") == 1 })
	log := logOf(t, e.env, ws)
	webhooks := 0
	for _, ev := range log {
		if strings.HasPrefix(ev.Type, "webhook.") {
			webhooks++
		}
	}
	if webhooks != 2*len(schemes) || countType(log, "message.received") != 1 {
		t.Fatalf("the log holds %d webhook events and %d messages, want %d and 1 (refused sends record nothing)",
			webhooks, countType(log, "message.received"), 2*len(schemes))
	}
}

// send generic posts to the default workspace with the stack's inbound secret.
func cliSendGeneric(t *testing.T, e *liveEnv, bin string) {
	c := newCLIEnv(t, e, bin, adminKey, "HOOKGATE_INBOUND_SECRET="+inboundSecret)
	for _, args := range [][]string{{}, {"--sign"}} {
		r := c.json(t, append([]string{"send", "generic", "--text", "hello from the cli", "--channel", "cli-generic"}, args...)...)[0]
		if r["thread_id"] == nil || r["run_id"] == nil {
			t.Fatalf("send generic %v: %v", args, r)
		}
		waitRun(t, e.env, r["thread_id"].(string), r["run_id"].(string))
	}
	if code, _, errs := c.run(t, "send", "generic", "--text", "forged", "--secret", "not-the-inbound-secret"); code != 1 || !strings.Contains(errs, "unauthorized") {
		t.Fatalf("send generic with another secret: exit %d %q", code, errs)
	}
}

// sign writes headers the providers' own libraries accept (they are test dependencies already),
// and the test's own HMAC code for Hookgate's scheme; verify says yes to them and no to a
// changed body.
func cliSign(t *testing.T, bin string) {
	c := &cliEnv{bin: bin}
	body := `{"id":"evt_1","type":"invoice.paid","data":{"amount":42}}`
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	headers := map[string]map[string]string{}
	for _, scheme := range []string{"standard_webhooks", "stripe", "github", "slack", "hmac_sha256", "shared_secret", "bearer", "telegram"} {
		signed := c.json(t, "sign", "--scheme", scheme, "--secret", secret, "--data", body)[0]
		h := map[string]string{}
		for k, v := range signed["headers"].(map[string]any) {
			h[k] = v.(string)
		}
		headers[scheme] = h
		var args []string
		for k, v := range h {
			args = append(args, "-H", k+": "+v)
		}
		base := append([]string{"verify", "--scheme", scheme, "--secret", secret}, args...)
		if code, out, _ := c.run(t, append(base, "--data", body)...); code != 0 || !strings.HasPrefix(out, "yes: a valid "+scheme+" signature") {
			t.Fatalf("verify %s: exit %d %q", scheme, code, out)
		}
		v := c.json(t, append(base, "--data", body)...)[0]
		if v["valid"] != true {
			t.Fatalf("verify --json %s: %v", scheme, v)
		}
		if scheme == "shared_secret" || scheme == "bearer" || scheme == "telegram" {
			continue // the body is not signed
		}
		code, out, _ := c.run(t, append(base, "--data", body+" ")...)
		if code != 1 || !strings.HasPrefix(out, "no: invalid signature: no matching signature") {
			t.Fatalf("verify %s of a changed body: exit %d %q", scheme, code, out)
		}
	}
	if err := webhook.ValidatePayload([]byte(body), headers["stripe"]["Stripe-Signature"], secret); err != nil {
		t.Errorf("stripe-go: %v", err)
	}
	if err := github.ValidateSignature(headers["github"]["X-Hub-Signature-256"], []byte(body), []byte(secret)); err != nil {
		t.Errorf("go-github: %v", err)
	}
	sh := http.Header{}
	for k, v := range headers["slack"] {
		sh.Set(k, v)
	}
	sv, err := slack.NewSecretsVerifier(sh, secret)
	if err == nil {
		sv.Write([]byte(body))
		err = sv.Ensure()
	}
	if err != nil {
		t.Errorf("slack-go: %v", err)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	swh := http.Header{}
	for k, v := range headers["standard_webhooks"] {
		swh.Set(k, v)
	}
	if err := wh.Verify([]byte(body), swh); err != nil {
		t.Errorf("standard-webhooks: %v", err)
	}
	if !verifySHA256(secret, headers["hmac_sha256"]["X-Hookgate-Signature"], []byte(body)) {
		t.Errorf("hmac_sha256: %v", headers["hmac_sha256"])
	}
	if headers["shared_secret"]["X-Hookgate-Inbound-Secret"] != secret || headers["bearer"]["Authorization"] != "Bearer "+secret ||
		headers["telegram"]["X-Telegram-Bot-Api-Secret-Token"] != secret {
		t.Errorf("token schemes: %v", headers)
	}
}

// Every command's --json output is JSON, one object per line, and every request the commands
// make is one openapi.yaml describes (the proxy validates them); an API error exits 1 with the
// API's code.
func cliJSON(t *testing.T, e *liveEnv, bin string) {
	ws := uniqueWS("cli-json")
	c := newCLIEnv(t, e, bin, apiKey(t, e, ws))
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	defer failing.Close()

	// Subscriptions, and the deliveries of one that fails.
	sub := c.json(t, "webhooks", "create", "--url", failing.URL+"/hook", "--events", "webhook.test,run.*", "--description", "cli")[0]
	id, _ := sub["id"].(string)
	if !strings.HasPrefix(fmt.Sprint(sub["secret"]), "whsec_") {
		t.Fatalf("webhooks create: %v", sub)
	}
	c.json(t, "webhooks", "list")
	c.json(t, "webhooks", "list", "--limit", "5")
	c.json(t, "webhooks", "show", id)
	if u := c.json(t, "webhooks", "update", id, "--description", "changed")[0]; u["description"] != "changed" {
		t.Fatalf("webhooks update: %v", u)
	}
	if r := c.json(t, "webhooks", "rotate", id, "--overlap-seconds", "60")[0]; r["secret"] == nil {
		t.Fatalf("webhooks rotate: %v", r)
	}
	c.json(t, "webhooks", "test", id)
	var delivery string
	waitFor(t, "a failed delivery", time.Minute, func() bool {
		page := c.json(t, "deliveries", "list", "--webhook", id, "--status", "failed", "--since", "1h")[0]
		data, _ := page["data"].([]any)
		if len(data) > 0 {
			delivery, _ = data[0].(map[string]any)["id"].(string)
		}
		return delivery != ""
	})
	c.json(t, "deliveries", "show", delivery)
	c.json(t, "deliveries", "retry", delivery)
	waitFor(t, "the retried delivery to fail again", time.Minute, func() bool {
		return c.json(t, "deliveries", "show", delivery)[0]["status"] == "failed"
	})
	if r := c.json(t, "replay", "--webhook", id, "--since", "1h")[0]; r["replayed"] != float64(1) || r["failed_in_range"] != float64(1) {
		t.Fatalf("replay: %v", r)
	}
	c.json(t, "webhooks", "delete", id)
	code, out, errs := c.run(t, "webhooks", "show", id, "--json")
	if code != 1 || out != "" || !strings.Contains(errs, "Error: not_found: ") {
		t.Fatalf("webhooks show of a deleted one: exit %d %q %q", code, out, errs)
	}

	// Sources, keys, agents and adapters.
	c.json(t, "sources", "create", "--name", "gh", "--scheme", "github")
	c.json(t, "sources", "list")
	c.json(t, "sources", "show", "gh")
	c.json(t, "sources", "rotate", "gh", "--overlap-seconds", "0")
	c.json(t, "sources", "retire", "gh")
	c.json(t, "sources", "delete", "gh")
	key := c.json(t, "keys", "create", "--name", "ci")[0]
	c.json(t, "keys", "list")
	c.json(t, "keys", "delete", key["id"].(string))
	c.json(t, "agents", "create", "--name", "helper", "--type", "webhook", "--url", "https://agent.example.com/hook")
	c.json(t, "agents", "list")
	c.json(t, "agents", "show", "helper")
	c.json(t, "agents", "update", "helper", "--timeout-seconds", "10")
	c.json(t, "agents", "rotate", "helper")
	adapter := strings.ReplaceAll(ws, "cli-json-", "cli")
	c.json(t, "adapters", "create", "--name", adapter, "--agent", "helper", "--reply-hosts", "hooks.example.com", "--max-in-flight", "4")
	c.json(t, "adapters", "list")
	c.json(t, "adapters", "show", adapter)
	c.json(t, "adapters", "update", adapter, "--read-all-runs")
	c.json(t, "adapters", "rotate", adapter, "--overlap-seconds", "0")
	c.json(t, "adapters", "delete", adapter)
	c.json(t, "agents", "delete", "helper")

	// tail and listen: the log's first event (the test delivery's delivery.exhausted), one JSON
	// object per line.
	for _, args := range [][]string{{"tail"}, {"listen", "--forward-to", newLocalEndpoint(t).srv.URL}} {
		cmd := c.cmd(append(args, "--json", "--since", "0")...)
		var stdout, stderr syncBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, args[0]+"'s first line", time.Minute, func() bool { return strings.Count(stdout.String(), "\n") >= 1 })
		cmd.Process.Signal(syscall.SIGINT)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%s after Ctrl-C: %v\n%s", args[0], err, stderr.String())
		}
		lines := jsonLines(t, args[0], stdout.String())
		if ev, _ := lines[0]["event"].(map[string]any); args[0] == "tail" && (ev["type"] != "delivery.exhausted" || lines[0]["cursor"] != "1") {
			t.Fatalf("tail --json: %v", lines[0])
		}
		if args[0] == "listen" && (lines[0]["type"] != "delivery.exhausted" || lines[0]["status"] != float64(204)) {
			t.Fatalf("listen --json: %v", lines[0])
		}
	}
}
