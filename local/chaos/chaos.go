// Package chaos is a fault-injection load suite against the local stack (make chaos): it starts
// its own emulators and stack, posts generic inbound messages from many connections like a real
// sender (a 5xx is sent again with the same body and Idempotency-Key) while it kills bootstraps,
// kills and restarts DynamoDB Local, pauses fauxqs and runs failing peers, then waits until the
// system is quiet and checks from the table, the queues and the receivers that nothing was lost,
// doubled or left stuck.
package chaos

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/hookgate/hookgate/local/emulator"
	"github.com/hookgate/hookgate/local/stack"
	"github.com/hookgate/hookgate/local/template"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/store"
)

const (
	inboundSecret = "chaos-inbound-secret-0123"
	adminKey      = "chaos-admin-api-key-0123456789"
	workspace     = "default"
	agentTimeout  = 2 * time.Second // the chaos agent's timeoutSeconds
)

// Config is one run of the suite.
type Config struct {
	Root        string // repository root (template.yaml, node_modules)
	BinDir      string // host bootstraps, <LogicalId>/bootstrap
	Messages    int
	Connections int
	Faults      Faults
	// Visibility > 0 replaces every queue's visibility timeout (the CI-sized run compresses time);
	// 0 keeps the template's, as on AWS.
	Visibility time.Duration
	// StallAfter is how long messages may be in flight with no invocation of their consumer before
	// it is reported as a stall; 0 means the consumer's function timeout.
	StallAfter time.Duration
	// DeliveryTimeout is the stack's DeliveryTimeoutSeconds; 0 keeps the template's (15 s).
	DeliveryTimeout time.Duration
	// Params are template parameters set over the suite's own (the CI-sized run compresses the
	// delivery's waits: its circuit's cool-down, the least wait after a timeout); nil keeps the
	// template's, as on AWS.
	Params map[string]string
	// PauseFor is how long pause-sqs stops fauxqs; 0 means 12 s (past the SDK's 10 s attempt).
	PauseFor time.Duration
	// ConvergeLimit bounds the wait for quiet after the load; 0 means 30 minutes.
	ConvergeLimit time.Duration
	// SchedulePeriod, when > 0, replaces the period of the template's Schedule events: the retry
	// sweep (each minute on AWS) re-queues the deliveries whose message a fault lost; 0 keeps it.
	SchedulePeriod time.Duration
	// Concurrency is the bootstrap processes per function; 0 means 3.
	Concurrency int
	// DeliveryConcurrency is the delivery function's processes and pollers; 0 means 3×Concurrency.
	// Its invocations mostly wait on endpoints, and Lambda runs up to the event source's
	// MaximumConcurrency (50) of them: with as few as the other functions get, a hanging
	// endpoint holds a third of local delivery and the queue outgrows the drain.
	DeliveryConcurrency int
	Out                 io.Writer    // progress lines; nil discards
	Logger              *slog.Logger // the stack's log; nil discards
	FunctionLog         io.Writer    // bootstrap output; nil discards
}

func (c *Config) defaults() error {
	var errs []error
	if c.Messages <= 0 {
		errs = append(errs, errors.New("messages must be positive"))
	}
	if c.Connections <= 0 {
		errs = append(errs, errors.New("connections must be positive"))
	}
	if c.Root == "" || c.BinDir == "" {
		errs = append(errs, errors.New("root and bin dir are required"))
	}
	if c.PauseFor <= 0 {
		c.PauseFor = 12 * time.Second
	}
	if c.ConvergeLimit <= 0 {
		c.ConvergeLimit = 30 * time.Minute
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 3
	}
	if c.DeliveryConcurrency <= 0 {
		c.DeliveryConcurrency = 3 * c.Concurrency
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Faults == nil {
		c.Faults = Faults{}
	}
	return errors.Join(errs...)
}

// run is the state of one suite run.
type run struct {
	c       Config
	id      string
	stack   *stack.Stack
	store   *store.Store
	sqs     *sqs.Client
	dataDir string

	emuMu  sync.Mutex
	dynamo *emulator.Process
	fauxqs *emulator.Process

	inv *invocations

	faultMu  sync.Mutex
	faultLog []string // what was injected, in order
	progress chan int
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(r.c.Out, "%s  %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (r *run) noteFault(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.faultMu.Lock()
	r.faultLog = append(r.faultLog, s)
	r.faultMu.Unlock()
	r.logf("fault: %s", s)
}

// Run runs the suite once and returns its report. An error means the suite could not run (an
// emulator did not start, the stack failed); what it found is in the report (Report.Failed).
func Run(ctx context.Context, c Config) (*Report, error) {
	if err := c.defaults(); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	tpl, err := template.Load(filepath.Join(c.Root, "template.yaml"))
	if err != nil {
		return nil, err
	}
	r := &run{c: c, id: strconv.FormatInt(time.Now().UnixNano()%1e9, 36), inv: newInvocations()}
	// DynamoDB Local's data must outlive its process, not the machine: on tmpfs when there is one,
	// its SQLite files skip the disk's fsyncs (on ext4 they made each worker invocation seconds slower).
	tmp := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		tmp = "/dev/shm"
	}
	if r.dataDir, err = os.MkdirTemp(tmp, "hookgate-chaos-"); err != nil {
		return nil, err
	}
	defer os.RemoveAll(r.dataDir)

	// DynamoDB Local on disk, so that it can be killed and restarted with its data; fauxqs of our
	// own, so that it can be paused.
	r.logf("starting DynamoDB Local (data in %s) and fauxqs", r.dataDir)
	if r.dynamo, err = emulator.StartDynamo(ctx, emulator.DynamoOptions{Root: c.Root, DataDir: filepath.Join(r.dataDir, "dynamodb")}); err != nil {
		return nil, err
	}
	defer func() { r.emuMu.Lock(); _ = r.dynamo.Stop(); r.emuMu.Unlock() }()
	if r.fauxqs, err = emulator.StartSQS(ctx, emulator.SQSOptions{Root: c.Root}); err != nil {
		return nil, err
	}
	defer func() { _ = r.fauxqs.Signal(syscall.SIGCONT); _ = r.fauxqs.Stop() }()

	deliveryTimeout := c.DeliveryTimeout
	if deliveryTimeout <= 0 {
		deliveryTimeout = 15 * time.Second
	}
	recvAll := newReceiver(c.Faults[ReceiverFaults], deliveryTimeout+time.Second)
	recvRuns := newReceiver(false, 0)
	ag := newAgent(c.Faults[AgentFaults], agentTimeout+time.Second)
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	for _, h := range []http.Handler{recvAll, recvRuns, ag} {
		s, err := serve(h)
		if err != nil {
			return nil, err
		}
		servers = append(servers, s)
	}
	agentSecret := make([]byte, 24)
	_, _ = rand.Read(agentSecret)
	params := map[string]string{
		"InboundSecret": inboundSecret, "AdminApiKey": adminKey, "AllowHttpUrls": "true", "AllowPrivateDestinations": "true",
		"SourceCacheSeconds": "0", "Agent": "chaos",
		// The suite measures the pipeline, not the workspace's admission limits.
		"DailyRunBudget": "0", "InboundMessagesPerMinute": "0",
		"Agents": fmt.Sprintf(`{"chaos":{"type":"webhook","url":%q,"secret":"whsec_%s","timeoutSeconds":%d}}`,
			servers[2].URL+"/agent", base64.StdEncoding.EncodeToString(agentSecret), int(agentTimeout/time.Second)),
	}
	if c.DeliveryTimeout > 0 {
		params["DeliveryTimeoutSeconds"] = strconv.Itoa(int(c.DeliveryTimeout / time.Second))
	}
	maps.Copy(params, c.Params)
	r.logf("starting the stack (%s)", c.BinDir)
	r.stack, err = stack.Start(ctx, stack.Options{
		Root: c.Root, BinDir: c.BinDir, Addr: "127.0.0.1:0",
		DynamoEndpoint: r.dynamo.Endpoint, SQSEndpoint: r.fauxqs.Endpoint,
		Params: params, Prefix: "chaos-", VisibilityTimeout: c.Visibility, Concurrency: c.Concurrency,
		SchedulePeriod:      c.SchedulePeriod,
		FunctionConcurrency: map[string]int{"DeliveryFunction": c.DeliveryConcurrency},
		Logger:              c.Logger, FunctionLog: c.FunctionLog,
		OnInvocation: r.inv.call,
	})
	if err != nil {
		return nil, err
	}
	defer r.stack.Close()
	aws, err := awscfg.Load(ctx, func(k string) string {
		return map[string]string{awscfg.EnvDynamoEndpoint: r.stack.DynamoEndpoint, awscfg.EnvSQSEndpoint: r.stack.SQSEndpoint}[k]
	})
	if err != nil {
		return nil, err
	}
	r.store, r.sqs = store.New(aws.DynamoDB(), r.stack.Tables["Table"], time.Now), aws.SQS()

	subAll, err := r.subscribe(ctx, servers[0].URL+"/all", `["*"]`)
	if err != nil {
		return nil, err
	}
	subRuns, err := r.subscribe(ctx, servers[1].URL+"/runs", `["run.completed","run.failed"]`)
	if err != nil {
		return nil, err
	}
	// Events before the subscriptions were active are not owed to them.
	time.Sleep(time.Second)
	start, err := r.logEnds(ctx)
	if err != nil {
		return nil, err
	}

	msgs := newMessages(r.id, c.Messages, c.Faults[OddBytes])
	r.logf("load: %d messages from %d connections, faults %s", c.Messages, c.Connections, c.Faults)
	watchCtx, stopWatch := context.WithCancel(ctx)
	w := newWatch(r, tpl, c.StallAfter)
	var watchWG sync.WaitGroup
	watchWG.Go(func() { w.run(watchCtx) })

	r.progress = make(chan int, c.Messages)
	var faultWG sync.WaitGroup
	faultWG.Go(func() { r.injectFaults(ctx) })

	snd := &sender{url: r.stack.URL, secret: inboundSecret, giveUp: 3 * time.Minute, status: map[string]int{},
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.Connections, Proxy: nil}}}
	loadStart := time.Now()
	work := make(chan *message)
	var wg sync.WaitGroup
	var done int
	var doneMu sync.Mutex
	for range c.Connections {
		wg.Go(func() {
			for m := range work {
				snd.send(ctx, m)
				doneMu.Lock()
				done++
				n := done
				doneMu.Unlock()
				r.progress <- n
				if n%max(1, c.Messages/10) == 0 {
					r.logf("load: %d/%d answered", n, c.Messages)
				}
			}
		})
	}
	for _, m := range msgs {
		work <- m
	}
	close(work)
	wg.Wait()
	answered := time.Now()
	close(r.progress)
	faultWG.Wait() // the faults still due fire now: the convergence clock starts with a whole system
	loadEnd := time.Now()
	r.logf("load answered in %s, faults over %s later; waiting until quiet (at most %s)",
		answered.Sub(loadStart).Round(time.Millisecond), loadEnd.Sub(answered).Round(time.Millisecond), c.ConvergeLimit)

	subs := []subscription{{id: subAll, name: "all (*)", recv: recvAll, match: func(string) bool { return true }},
		{id: subRuns, name: "runs", recv: recvRuns, match: func(t string) bool { return t == "run.completed" || t == "run.failed" }}}
	quiet := r.waitQuiet(ctx, msgs, subs, start, loadEnd)
	stopWatch()
	watchWG.Wait()

	rep, err := r.check(ctx, msgs, subs, start, quiet)
	if err != nil {
		return nil, err
	}
	rep.Messages, rep.Connections, rep.Faults = c.Messages, c.Connections, c.Faults.String()
	rep.LoadTime, rep.FaultsAfter, rep.Quiet = answered.Sub(loadStart), loadEnd.Sub(answered), quiet
	rep.Converge = max(0, rep.lastDelivery.Sub(loadEnd))
	rep.FiveXX = snd.status
	rep.Stalls = w.stalls()
	r.faultMu.Lock()
	rep.Injected = slices.Clone(r.faultLog)
	r.faultMu.Unlock()
	rep.Receiver = fmt.Sprintf("subscriber (*): %d first attempts failed, %d held past the timeout; agent: %d calls, %d failed, %d held past its timeout",
		recvAll.failed, recvAll.hung, ag.callsN, ag.failed, ag.hung) + "\nfunctions: " + r.inv.summary()
	var lat []time.Duration
	for _, m := range msgs {
		if m.status == http.StatusAccepted {
			lat = append(lat, m.accepted.Sub(m.begun))
		}
	}
	slices.Sort(lat)
	rep.P50, rep.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	rep.judge()
	return rep, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(math.Ceil(p*float64(len(sorted))))-1)]
}

type subscription struct {
	id    string
	name  string
	recv  *receiver
	match func(eventType string) bool
}

// subscribe creates a subscription through the management API.
func (r *run) subscribe(ctx context.Context, url, events string) (string, error) {
	body := fmt.Sprintf(`{"url":%q,"events":%s}`, url, events)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.stack.URL+"/v1/webhooks", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("X-API-Key", adminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("create subscription: %d %s", resp.StatusCode, raw)
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := jsonUnmarshal(raw, &out); err != nil || out.ID == "" {
		return "", fmt.Errorf("create subscription: %s", raw)
	}
	return out.ID, nil
}

// logEnds is the highest cursor of each shard of the log now.
func (r *run) logEnds(ctx context.Context) ([]int64, error) {
	l := newLogView(nil)
	if err := l.read(ctx, r.store); err != nil {
		return nil, err
	}
	return l.ends(), nil
}

// injectFaults fires the chosen faults as the load progresses: each kill a few times (about one
// per 1,000 messages, at least once), DynamoDB and fauxqs about once per 5,000 messages.
func (r *run) injectFaults(ctx context.Context) {
	type due struct {
		at    int // answered messages
		fault string
	}
	var plan []due
	n := r.c.Messages
	times := map[string]int{KillWorker: max(1, n/1000), KillFanout: max(1, n/1000), KillDelivery: max(1, n/1000),
		KillDynamoDB: max(1, n/5000), PauseSQS: max(1, n/5000)}
	offset := map[string]float64{KillWorker: 0.10, KillFanout: 0.16, KillDelivery: 0.22, KillDynamoDB: 0.40, PauseSQS: 0.60}
	for f, k := range times {
		if !r.c.Faults[f] {
			continue
		}
		for j := range k {
			frac := offset[f] + float64(j)*(0.85-offset[f])/float64(k)
			plan = append(plan, due{at: int(frac * float64(n)), fault: f})
		}
	}
	slices.SortFunc(plan, func(a, b due) int { return a.at - b.at })
	for answered := range r.progress {
		for len(plan) > 0 && answered >= plan[0].at && ctx.Err() == nil {
			r.fire(ctx, plan[0].fault)
			plan = plan[1:]
		}
	}
}

var functionOf = map[string]string{KillWorker: "WorkerFunction", KillFanout: "FanoutFunction", KillDelivery: "DeliveryFunction"}

func (r *run) fire(ctx context.Context, fault string) {
	switch fault {
	case KillWorker, KillFanout, KillDelivery:
		fn := functionOf[fault]
		// Mid-invocation when one runs: wait briefly for a busy process.
		deadline := time.Now().Add(5 * time.Second)
		for r.inv.running(fn) == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		pids := r.stack.FunctionPIDs(fn)
		if len(pids) == 0 {
			r.noteFault("%s: no %s process running; skipped", fault, fn)
			return
		}
		pid := pids[mrand.IntN(len(pids))]
		busy := r.inv.running(fn)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			r.noteFault("%s: kill %d: %v", fault, pid, err)
			return
		}
		r.inv.killed(fn)
		r.noteFault("%s: SIGKILL %s pid %d (%d invocations running)", fault, fn, pid, busy)
	case KillDynamoDB:
		r.emuMu.Lock()
		defer r.emuMu.Unlock()
		port, _ := strconv.Atoi(r.dynamo.Endpoint[strings.LastIndex(r.dynamo.Endpoint, ":")+1:])
		if err := r.dynamo.Kill(); err != nil {
			r.noteFault("%s: %v", fault, err)
			return
		}
		r.inv.killed("*")
		began := time.Now()
		time.Sleep(time.Second)
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			var p *emulator.Process
			if p, err = emulator.StartDynamo(ctx, emulator.DynamoOptions{Root: r.c.Root, Port: port, DataDir: filepath.Join(r.dataDir, "dynamodb")}); err == nil {
				r.dynamo = p
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil {
			r.noteFault("%s: restart failed: %v", fault, err)
			return
		}
		r.noteFault("%s: SIGKILL DynamoDB Local, restarted on its data after %s", fault, time.Since(began).Round(100*time.Millisecond))
	case PauseSQS:
		if err := r.fauxqs.Signal(syscall.SIGSTOP); err != nil {
			r.noteFault("%s: %v", fault, err)
			return
		}
		time.Sleep(r.c.PauseFor)
		if err := r.fauxqs.Signal(syscall.SIGCONT); err != nil {
			r.noteFault("%s: resume: %v", fault, err)
			return
		}
		r.noteFault("%s: fauxqs stopped (SIGSTOP) for %s, resumed", fault, r.c.PauseFor)
	}
}
