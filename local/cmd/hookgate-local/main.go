// Command hookgate-local runs Hookgate on this machine with no Docker, from template.yaml:
//
//	hookgate-local dev     the whole gateway on 127.0.0.1:3000, emulators included (make dev)
//	hookgate-local invoke  one function on one event, like sam local invoke (make invoke)
//	hookgate-local sizes   each function's arm64 bootstrap size against hello world (make bench)
//	hookgate-local ratios  reads go test -bench output; prints each X/sub against X/baseline
//	hookgate-local vulndb  builds govulncheck's offline database from golang.org/x/vulndb (make vulncheck)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hookgate/hookgate/local/emf"
	"github.com/hookgate/hookgate/local/emulator"
	"github.com/hookgate/hookgate/local/stack"
	"github.com/hookgate/hookgate/local/template"
	"github.com/hookgate/hookgate/local/vulndb"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hookgate-local dev|invoke|sizes|ratios|vulndb [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "dev":
		err = dev(ctx, os.Args[2:])
	case "invoke":
		err = invoke(ctx, os.Args[2:])
	case "sizes":
		err = sizes(ctx)
	case "ratios":
		err = ratios(os.Stdin, os.Stdout)
	case "vulndb":
		err = vulnDB(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (dev, invoke, sizes, ratios, vulndb)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hookgate-local:", err)
		os.Exit(1)
	}
}

// paramFlags collects -param Name=Value; HOOKGATE_PARAM_<Name> in the environment works too.
type paramFlags map[string]string

func (p paramFlags) String() string { return "" }
func (p paramFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want Name=Value, got %q", v)
	}
	p[k] = val
	return nil
}

func commonOptions(fs *flag.FlagSet) (*stack.Options, paramFlags) {
	o := &stack.Options{
		DynamoEndpoint: os.Getenv("HOOKGATE_DYNAMODB_ENDPOINT"),
		SQSEndpoint:    os.Getenv("HOOKGATE_SQS_ENDPOINT"),
		KMSEndpoint:    os.Getenv("HOOKGATE_KMS_ENDPOINT"),
		KMSKeyID:       os.Getenv("HOOKGATE_KMS_KEY_ID"),
	}
	params := paramFlags{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "HOOKGATE_PARAM_") {
			params[strings.TrimPrefix(k, "HOOKGATE_PARAM_")] = v
		}
	}
	fs.StringVar(&o.BinDir, "bin", ".build/"+hostArch(), "folder with <LogicalId>/bootstrap")
	fs.Var(params, "param", "template parameter override Name=Value (repeatable)")
	return o, params
}

func dev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ExitOnError)
	o, params := commonOptions(fs)
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:3000", "HTTP API address")
	fs.StringVar(&o.DataDir, "data", ".hookgate", "folder for emulator data (git-ignored)")
	fs.IntVar(&o.DynamoPort, "dynamodb-port", 8000, "port for DynamoDB Local")
	fs.IntVar(&o.SQSPort, "sqs-port", 9324, "port for fauxqs")
	fs.IntVar(&o.KMSPort, "kms-port", 0, "port for local-kms (0 picks a free one)")
	fs.IntVar(&o.Concurrency, "concurrency", 4, "processes per function (each waiting stream reader holds one)")
	quiet := fs.Bool("quiet", false, "do not print function logs")
	every := fs.Duration("metrics-every", 10*time.Second, "print the functions' EMF metrics this often when they changed (0: never; always at "+stack.MetricsPath+")")
	_ = fs.Parse(args)
	root, err := emulator.FindRoot(".")
	if err != nil {
		return err
	}
	// Locally, subscribers are on this machine: allow http:// URLs and loopback destinations
	// unless told otherwise.
	for _, k := range []string{"AllowHttpUrls", "AllowPrivateDestinations"} {
		if _, ok := params[k]; !ok {
			params[k] = "true"
		}
	}
	if _, ok := params["TelegramSecretToken"]; !ok {
		params["TelegramSecretToken"] = stack.DevSecret("TelegramSecretToken") // empty on AWS: Telegram off
	}
	if _, ok := params["Adapters"]; !ok {
		params["Adapters"] = `[{"name":"default","replyHosts":["127.0.0.1","localhost"],"readAllRuns":true}]` // callbacks to this machine; polls the demo's inbound runs
	}
	o.Root, o.Params = root, params
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if !*quiet {
		o.FunctionLog = os.Stderr
	}
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "starting the emulators, creating the tables and queues of template.yaml…")
	s, err := stack.Start(ctx, *o)
	if err != nil {
		return err
	}
	defer s.Close()
	banner(os.Stdout, s)
	liveBanner(os.Stdout, s)
	if *every > 0 {
		go printMetrics(ctx, os.Stderr, s, *every)
	}
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "\nstopping…")
	return nil
}

// printMetrics prints one summary line of the functions' metrics every period in which they changed.
func printMetrics(ctx context.Context, w io.Writer, s *stack.Stack, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if line := emf.Summary(s.Metrics().Metrics); line != last && line != "" {
			fmt.Fprintf(w, "metrics (since start; %s): %s\n", stack.MetricsPath, line)
			last = line
		}
	}
}

func banner(w io.Writer, s *stack.Stack) {
	fmt.Fprintf(w, `
Hookgate is running at %[1]s
  DynamoDB Local  %[2]s   (table %[3]s)
  SQS (fauxqs)    %[4]s
  KMS (local-kms) %[9]s   (key %[10]s seals the stored secrets)
  inbound secret  %[5]s   (development value; set HOOKGATE_PARAM_InboundSecret to change it)
  adapter secret  %[6]s
  admin API key   %[7]s   (management routes: X-API-Key or Authorization: Bearer)

Talk to the agent (echo) through the default webhook adapter, waiting for its reply:
  curl -s %[1]s/webhook/default -H 'Authorization: Bearer %[6]s' \
    -d '{"text":"hello, agent","user":"ada","sync":true}'
  # follow up: POST %[1]s/webhook/default/threads/<threadId>/messages

Send an inbound message, then read the run it returns (thread_id, run_id):
  curl -s %[1]s/v1/inbound/generic \
    -H 'content-type: application/json' \
    -H 'X-Hookgate-Inbound-Secret: %[5]s' \
    -d '{"channel":"demo","external_id":"user-1","text":"hello, agent"}'
  curl -s -H 'Authorization: Bearer %[6]s' %[1]s/webhook/default/threads/<thread_id>/runs/<run_id>

Let a SaaS post signed webhooks (a source per sender; its secret is shown once):
  curl -s %[1]s/v1/sources -H 'X-API-Key: %[7]s' -d '{"name":"github","scheme":"github"}'
  # then point it at %[1]s/v1/webhooks/generic/default?source=github
  # Telegram: %[1]s/v1/inbound/telegram with secret token %[8]s

Subscribe a webhook endpoint to every event (the secret is shown once):
  curl -s %[1]s/v1/webhooks -H 'X-API-Key: %[7]s' \
    -d '{"url":"http://127.0.0.1:8080/hook","events":["*"]}'

Ctrl-C stops everything.
`, s.URL, s.DynamoEndpoint, s.Tables["Table"], s.SQSEndpoint, s.Params["InboundSecret"], s.Params["AdapterSecret"], s.Params["AdminApiKey"], s.Params["TelegramSecretToken"], s.KMSEndpoint, s.KMSKeyID)
}

func invoke(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("invoke", flag.ExitOnError)
	o, params := commonOptions(fs)
	fn := fs.String("fn", "", "function logical id, e.g. InboundGenericFunction")
	eventPath := fs.String("event", "", "event JSON file, e.g. events/inbound-generic.json")
	_ = fs.Parse(args)
	if *fn == "" || *eventPath == "" {
		return fmt.Errorf("usage: invoke -fn <LogicalId> -event <file>")
	}
	event, err := os.ReadFile(*eventPath)
	if err != nil {
		return err
	}
	root, err := emulator.FindRoot(".")
	if err != nil {
		return err
	}
	o.Root, o.Params, o.FunctionLog = root, params, os.Stderr
	out, err := stack.InvokeOnce(ctx, *o, *fn, event)
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

// sizes builds every function of the template for linux/arm64 with the Makefile's own recipe, and a
// hello-world aws-lambda-go function with the same flags, and prints each size as a ratio.
func sizes(ctx context.Context) error {
	root, err := emulator.FindRoot(".")
	if err != nil {
		return err
	}
	tpl, err := template.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "hookgate-sizes")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	hello := filepath.Join(dir, "hello")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-tags", "lambda.norpc", "-o", hello, "./local/cmd/hookgate-local/testdata/hello")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build hello world: %v\n%s", err, out)
	}
	base, err := size(hello)
	if err != nil {
		return err
	}
	fmt.Printf("%-26s %12s %8s\n", "linux/arm64 bootstrap", "bytes", "ratio")
	fmt.Printf("%-26s %12d %8s\n", "hello world (baseline)", base, "1.00x")
	worst := 0.0
	for _, fn := range tpl.Functions() {
		art := filepath.Join(dir, fn.LogicalID)
		mk := exec.CommandContext(ctx, "make", "-s", "build-"+fn.LogicalID, "GOARCH=arm64", "ARTIFACTS_DIR="+art)
		mk.Dir = root
		if out, err := mk.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", fn.LogicalID, err, out)
		}
		n, err := size(filepath.Join(art, "bootstrap"))
		if err != nil {
			return err
		}
		r := float64(n) / float64(base)
		worst = max(worst, r)
		fmt.Printf("%-26s %12d %7.2fx\n", fn.LogicalID, n, r)
	}
	fmt.Printf("largest ratio %.2fx (target ≤ 1.60x)\n", worst)
	return nil
}

func size(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func hostArch() string {
	out, err := exec.Command("go", "env", "GOARCH").Output()
	if err != nil {
		return "amd64"
	}
	return strings.TrimSpace(string(out))
}

// vulnDB makes -out the govulncheck database of golang.org/x/vulndb at -version, downloaded through
// the Go module proxy; a database already built for that version is kept.
func vulnDB(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("vulndb", flag.ContinueOnError)
	version := fs.String("version", "latest", "version of "+vulndb.Module+" (or a query such as latest)")
	out := fs.String("out", ".build/vulndb", "folder of the database (govulncheck -db file://<abs path>)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	v, built, err := vulndb.Update(ctx, *version, *out)
	if err != nil {
		return err
	}
	what := "cached"
	if built {
		what = "built"
	}
	fmt.Fprintf(os.Stderr, "vulnerability database %s@%s (%s) in %s\n", vulndb.Module, v, what, *out)
	return nil
}
