// Package stack runs the whole stack of template.yaml on this machine with no Docker: emulators, tables
// and queues, the real bootstraps behind a local Runtime API, HTTP routes and event sources.
package stack

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/hookgate/hookgate/local/emf"
	"github.com/hookgate/hookgate/local/emulator"
	"github.com/hookgate/hookgate/local/httpapi"
	"github.com/hookgate/hookgate/local/lambdart"
	"github.com/hookgate/hookgate/local/provision"
	"github.com/hookgate/hookgate/local/sqsesm"
	"github.com/hookgate/hookgate/local/streamesm"
	"github.com/hookgate/hookgate/local/template"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/fanoutdlq"
	"github.com/hookgate/hookgate/shared/ids"
)

// Local stand-ins for what CloudFormation would supply.
const (
	Region    = "us-east-1"
	AccountID = "000000000000"
)

// Options configure a local stack.
type Options struct {
	Root    string // repository root: template.yaml and node_modules
	BinDir  string // holds <LogicalId>/bootstrap for every function
	Addr    string // HTTP API listen address; default 127.0.0.1:3000 ("127.0.0.1:0" picks a port)
	DataDir string // DynamoDB Local keeps its data here; "" keeps it in memory

	// DynamoEndpoint and SQSEndpoint point at emulators that are already running (LocalStack,
	// ElasticMQ, a Docker DynamoDB Local, …); when empty, local mode starts its own.
	DynamoEndpoint, SQSEndpoint string
	DynamoPort, SQSPort         int // ports for the emulators it starts; 0 picks free ones
	// KMSEndpoint points at a running KMS emulator holding KMSKeyID (default emulator.LocalKeyID);
	// when empty, local mode starts local-kms with that key seeded, on KMSPort (0 picks one).
	KMSEndpoint, KMSKeyID string
	KMSPort               int

	Params            map[string]string // template parameter overrides
	Prefix            string            // prepended to table and queue names
	VisibilityTimeout time.Duration     // > 0 replaces every queue's visibility timeout (tests)
	PollWait          time.Duration     // SQS long-poll wait of the event source mappings
	SchedulePeriod    time.Duration     // > 0 replaces every Schedule event's period (tests compress time)
	StreamRetries     int               // > 0 replaces every stream event source's MaximumRetryAttempts (tests give up sooner)
	// StreamPartitions is how many virtual partitions each stream shard's records are dealt to by
	// partition key (streamesm.Config.Partitions): DynamoDB Local has one stream shard per table,
	// AWS a shard per partition of a busy table. 0 takes HOOKGATE_LOCAL_STREAM_PARTITIONS from the
	// environment, else 1 (one batch of a shard at a time).
	StreamPartitions int
	Concurrency      int // processes per function (default 2)
	// FunctionConcurrency overrides Concurrency for the functions it names (processes, and the
	// pollers of their SQS event sources): Lambda scales a queue's pollers up to its
	// MaximumConcurrency, so a function that mostly waits (the delivery function, on endpoints)
	// may need more than the rest to keep its queue drained.
	FunctionConcurrency map[string]int
	FunctionEnv         map[string]string // added to every function's environment
	FunctionLog         io.Writer         // bootstrap output; nil discards it
	Logger              *slog.Logger
	OnInvoke            func(function string) // called before every invocation (the cost meter counts them)
	// OnInvocation, when set, sees every invocation's payload before it runs; the function it
	// returns sees the response and error after (the chaos suite counts the messages in flight).
	OnInvocation func(function string, payload []byte) (done func(out []byte, err error))
}

// Stack is a running local stack.
type Stack struct {
	URL            string
	Params         map[string]string
	Tables         map[string]string              // logical id → table name
	Queues         map[string]provision.QueueInfo // logical id → queue
	Streams        map[string]string              // table logical id → stream ARN, for tables with a stream
	DynamoEndpoint string
	SQSEndpoint    string
	KMSEndpoint    string
	KMSKeyID       string // what !Ref of the template's AWS::KMS::Key resolves to

	metrics   *emf.Aggregator // the metrics of every function's EMF lines, as CloudWatch would extract them
	hosts     map[string]*lambdart.Host
	onInvoke  func(function string)
	onCall    func(function string, payload []byte) func([]byte, error)
	configs   map[string]lambdart.Config // how each function's host was started
	server    *http.Server
	emulators []*emulator.Process
	sqsGuard  *sqsGuard
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Start brings the stack up and returns once it serves requests. Close stops everything it started.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	o = o.withDefaults()
	if o.StreamPartitions == 0 {
		if o.StreamPartitions, err = streamPartitions(os.Getenv(EnvStreamPartitions)); err != nil {
			return nil, err
		}
	}
	tpl, err := template.Load(filepath.Join(o.Root, "template.yaml"))
	if err != nil {
		return nil, err
	}
	// The HTTP API listens first, so that the stack knows its own origin (the web widget's).
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.Addr, err)
	}
	defer func() {
		if err != nil {
			_ = ln.Close()
		}
	}()
	o.Params = withOwnAddress(tpl, o.Params, ln.Addr().String())
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Stack{hosts: map[string]*lambdart.Host{}, configs: map[string]lambdart.Config{}, cancel: cancel, metrics: emf.NewAggregator(), onInvoke: o.OnInvoke, onCall: o.OnInvocation}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	aws, err := s.prepare(ctx, tpl, o)
	if err != nil {
		return nil, err
	}

	var routes []httpapi.Route
	for _, fn := range tpl.Functions() {
		cfg, err := s.functionConfig(tpl, fn, o)
		if err != nil {
			return nil, err
		}
		cfg.Lines = s.metrics.Line
		h, err := lambdart.Start(runCtx, cfg)
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", fn.LogicalID, err)
		}
		s.hosts[fn.LogicalID] = h
		s.configs[fn.LogicalID] = cfg
		for _, r := range fn.Routes {
			routes = append(routes, httpapi.Route{Method: r.Method, Path: r.Path, Function: fn.LogicalID})
		}
	}
	gw, err := httpapi.New(routes, s, httpapi.Options{Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	pollers := sqsesm.NewClient(aws, o.Logger)
	for _, fn := range tpl.Functions() {
		for _, src := range fn.SQSSources {
			if !src.Enabled {
				continue
			}
			q, ok := s.Queues[src.Queue]
			if !ok {
				return nil, fmt.Errorf("function %s: event source %s reads undeclared queue %q", fn.LogicalID, src.Event, src.Queue)
			}
			maxConc, err := s.maximumConcurrency(tpl, src)
			if err != nil {
				return nil, fmt.Errorf("function %s: event source %s: %w", fn.LogicalID, src.Event, err)
			}
			// Like Lambda, several batches of one queue are in flight at once, one poller per
			// function process, at most ScalingConfig.MaximumConcurrency invocations; SQS keeps a
			// FIFO group's later messages back while one is in flight.
			c := sqsesm.Config{
				Function: fn.LogicalID, QueueURL: q.URL, QueueARN: q.ARN, BatchSize: src.BatchSize,
				ReportBatchItemFailures: src.ReportBatchItemFailures, WaitTime: o.PollWait, Logger: o.Logger, Region: Region,
				Pollers: o.concurrency(fn.LogicalID), MaximumConcurrency: maxConc,
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				if err := sqsesm.Run(runCtx, c, pollers, s); err != nil {
					o.Logger.Error("event source mapping stopped", "function", c.Function, "err", err)
				}
			}()
		}
		for _, sch := range fn.Schedules {
			if !sch.Enabled {
				continue
			}
			period := o.SchedulePeriod
			if period <= 0 {
				if period, err = schedulePeriod(sch.Expression); err != nil {
					return nil, fmt.Errorf("function %s: event %s: %w", fn.LogicalID, sch.Event, err)
				}
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.runSchedule(runCtx, fn.LogicalID, sch.Event, period, o.Logger)
			}()
		}
		for _, src := range fn.StreamSources {
			if !src.Enabled {
				continue
			}
			arn, ok := s.Streams[src.Table]
			if !ok {
				return nil, fmt.Errorf("function %s: event source %s reads the stream of %q, which is not a table with a StreamSpecification", fn.LogicalID, src.Event, src.Table)
			}
			c := streamesm.Config{
				Function: fn.LogicalID, StreamARN: arn, BatchSize: src.BatchSize,
				BatchingWindow:   time.Duration(src.MaximumBatchingWindowInSeconds) * time.Second,
				StartingPosition: src.StartingPosition, ReportBatchItemFailures: src.ReportBatchItemFailures,
				BisectBatchOnFunctionError: src.BisectBatchOnFunctionError, MaximumRetryAttempts: src.MaximumRetryAttempts,
				Filters: src.FilterPatterns, Partitions: o.StreamPartitions, Region: Region, Logger: o.Logger,
				OnFailure: s.streamOnFailure(fn.LogicalID, src, arn, aws.SQS(), o.Logger),
			}
			if o.StreamRetries > 0 {
				c.MaximumRetryAttempts = o.StreamRetries
			}
			if err := c.Validate(); err != nil {
				return nil, fmt.Errorf("function %s: event source %s: %w", fn.LogicalID, src.Event, err)
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				if err := streamesm.Run(runCtx, c, streamesm.NewClient(aws), s); err != nil {
					o.Logger.Error("stream event source mapping stopped", "function", c.Function, "err", err)
				}
			}()
		}
	}

	s.URL = "http://" + ln.Addr().String()
	// Local mode's own page beside the API's routes: what CloudWatch would show of the functions'
	// EMF metrics (not a route of template.yaml; it never deploys).
	mux := http.NewServeMux()
	mux.Handle("/", gw)
	mux.HandleFunc("GET "+MetricsPath, s.serveMetrics)
	s.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Logger.Error("http api stopped", "err", err)
		}
	}()
	return s, nil
}

// schedulePeriod is how often a schedule expression fires locally: rate(N unit) exactly; a cron(...)
// expression each minute, EventBridge's finest grain (its days and hours are not followed locally).
func schedulePeriod(expr string) (time.Duration, error) {
	if strings.HasPrefix(expr, "cron(") {
		return time.Minute, nil
	}
	var n int
	var unit string
	if _, err := fmt.Sscanf(strings.TrimSuffix(strings.TrimPrefix(expr, "rate("), ")"), "%d %s", &n, &unit); err != nil || n <= 0 {
		return 0, fmt.Errorf("schedule %q is not rate(N unit) or cron(...)", expr)
	}
	switch strings.TrimSuffix(unit, "s") {
	case "minute":
		return time.Duration(n) * time.Minute, nil
	case "hour":
		return time.Duration(n) * time.Hour, nil
	case "day":
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return 0, fmt.Errorf("schedule %q: unit %q is not minutes, hours or days", expr, unit)
}

// runSchedule invokes a function with an EventBridge Scheduled Event each period until ctx is
// done, as a Schedule event's rule does; each invocation starts a chain of requests of its own.
func (s *Stack) runSchedule(ctx context.Context, function, event string, period time.Duration, log *slog.Logger) {
	t := time.NewTicker(period)
	defer t.Stop()
	rule := "arn:aws:events:" + Region + ":" + AccountID + ":rule/hookgate-local-" + function + event
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			payload, _ := json.Marshal(events.EventBridgeEvent{
				Version: "0", ID: fmt.Sprintf("%d", now.UnixNano()), DetailType: "Scheduled Event", Source: "aws.events",
				AccountID: AccountID, Time: now.UTC().Truncate(time.Second), Region: Region, Resources: []string{rule},
				Detail: json.RawMessage("{}"),
			})
			if _, err := s.Invoke(ctx, function, payload); err != nil && ctx.Err() == nil {
				log.Warn("scheduled invocation failed", "function", function, "event", event, "err", err)
			}
		}
	}
}

// prepare starts the emulators (unless endpoints are given) and creates the declared resources.
func (s *Stack) prepare(ctx context.Context, tpl *template.Template, o Options) (awscfg.Config, error) {
	if err := s.startEmulators(ctx, o, declaresKMSKey(tpl)); err != nil {
		return awscfg.Config{}, err
	}
	aws, err := awscfg.Load(ctx, s.endpointEnv().get)
	if err != nil {
		return awscfg.Config{}, err
	}
	return aws, s.provision(ctx, tpl, o, aws)
}

// InvokeOnce runs one function of the template on one event, as `sam local invoke` does: it
// prepares the declared tables and queues (starting in-memory emulators unless endpoints are
// given), runs the function's bootstrap once and returns its response.
func InvokeOnce(ctx context.Context, o Options, function string, event []byte) ([]byte, error) {
	o = o.withDefaults()
	tpl, err := template.Load(filepath.Join(o.Root, "template.yaml"))
	if err != nil {
		return nil, err
	}
	s := &Stack{cancel: func() {}}
	defer s.Close()
	if _, err := s.prepare(ctx, tpl, o); err != nil {
		return nil, err
	}
	for _, fn := range tpl.Functions() {
		if fn.LogicalID != function {
			continue
		}
		cfg, err := s.functionConfig(tpl, fn, o)
		if err != nil {
			return nil, err
		}
		return lambdart.InvokeOnce(ctx, cfg, event)
	}
	var names []string
	for _, fn := range tpl.Functions() {
		names = append(names, fn.LogicalID)
	}
	return nil, fmt.Errorf("no function %q in template.yaml (functions: %s)", function, strings.Join(names, ", "))
}

// EnvStreamPartitions is the local option that sets Options.StreamPartitions when it is 0.
const EnvStreamPartitions = "HOOKGATE_LOCAL_STREAM_PARTITIONS"

// streamPartitions reads EnvStreamPartitions's value: "" is 1.
func streamPartitions(v string) (int, error) {
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > streamesm.MaxPartitions {
		return 0, fmt.Errorf("%s=%q: want a number of partitions from 1 to %d", EnvStreamPartitions, v, streamesm.MaxPartitions)
	}
	return n, nil
}

func (o Options) withDefaults() Options {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:3000"
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FunctionLog == nil {
		o.FunctionLog = io.Discard
	}
	return o
}

// concurrency is how many processes (and SQS pollers) function gets.
func (o Options) concurrency(function string) int {
	if n := o.FunctionConcurrency[function]; n > 0 {
		return n
	}
	return o.Concurrency
}

// Invoke runs one invocation of a function of the stack (the gateway and the pollers call it).
func (s *Stack) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	return s.InvokeTraced(ctx, function, payload, "")
}

// InvokeTraced runs one invocation of a function of the stack for a request that carried the
// X-Ray trace header trace (the SQS pollers call it with a message's AWSTraceHeader; "" starts a
// new chain).
func (s *Stack) InvokeTraced(ctx context.Context, function string, payload []byte, trace string) ([]byte, error) {
	h, ok := s.hosts[function]
	if !ok {
		return nil, fmt.Errorf("no function %q in the stack", function)
	}
	if s.onInvoke != nil {
		s.onInvoke(function)
	}
	if s.onCall != nil {
		done := s.onCall(function, payload)
		out, err := h.InvokeTraced(ctx, payload, trace)
		done(out, err)
		return out, err
	}
	return h.InvokeTraced(ctx, payload, trace)
}

// Chain reports where an invocation of function for a request with trace header trace stands in
// its chain of requests, and whether Lambda's recursive loop detection stops it.
func (s *Stack) Chain(function, trace string) (int, bool) {
	h, ok := s.hosts[function]
	if !ok {
		return 0, false
	}
	return h.Chain(trace)
}

// FunctionPIDs returns the process ids of a function's running bootstraps.
func (s *Stack) FunctionPIDs(function string) []int {
	if h, ok := s.hosts[function]; ok {
		return h.PIDs()
	}
	return nil
}

// StartFunction starts another host of a function, separate from the stack's, with the same
// configuration and the given number of processes: what further Lambda instances are. Invoke it
// directly; the caller closes it.
func (s *Stack) StartFunction(ctx context.Context, function string, concurrency int) (*lambdart.Host, error) {
	cfg, ok := s.configs[function]
	if !ok {
		return nil, fmt.Errorf("no function %q in the stack", function)
	}
	cfg.Concurrency = concurrency
	return lambdart.Start(ctx, cfg)
}

// Close stops the HTTP API, the pollers, the functions and the emulators it started.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		if s.server != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.server.Shutdown(ctx)
			cancel()
		}
		s.cancel()
		s.wg.Wait()
		for _, h := range s.hosts {
			_ = h.Close()
		}
		if s.sqsGuard != nil {
			_ = s.sqsGuard.Close()
		}
		for _, p := range s.emulators {
			_ = p.Stop()
		}
	})
	return nil
}

// declaresKMSKey reports whether the template has a KMS key, which local mode stands in with local-kms.
func declaresKMSKey(tpl *template.Template) bool {
	for _, r := range tpl.Resources {
		if r.Type == typeKMSKey {
			return true
		}
	}
	return false
}

func (s *Stack) startEmulators(ctx context.Context, o Options, kms bool) error {
	s.DynamoEndpoint, s.SQSEndpoint = o.DynamoEndpoint, o.SQSEndpoint
	if s.DynamoEndpoint == "" {
		opts := emulator.DynamoOptions{Root: o.Root, Port: o.DynamoPort}
		if o.DataDir != "" {
			opts.DataDir = filepath.Join(o.DataDir, "dynamodb")
		}
		p, err := emulator.StartDynamo(ctx, opts)
		if err != nil {
			return err
		}
		s.emulators = append(s.emulators, p)
		s.DynamoEndpoint = p.Endpoint
	}
	if s.SQSEndpoint == "" {
		p, err := emulator.StartSQS(ctx, emulator.SQSOptions{Root: o.Root, Port: o.SQSPort})
		if err != nil {
			return err
		}
		s.emulators = append(s.emulators, p)
		s.SQSEndpoint = p.Endpoint
	}
	s.KMSEndpoint, s.KMSKeyID = o.KMSEndpoint, cmp.Or(o.KMSKeyID, emulator.LocalKeyID)
	if s.KMSEndpoint == "" && kms {
		opts := emulator.KMSOptions{Root: o.Root, Port: o.KMSPort}
		if o.DataDir != "" {
			opts.DataDir = filepath.Join(o.DataDir, "kms")
		}
		p, err := emulator.StartKMS(ctx, opts)
		if err != nil {
			return err
		}
		s.emulators = append(s.emulators, p)
		s.KMSEndpoint = p.Endpoint
	}
	// Every SQS client of the stack goes through the guard: SQS's character rule holds locally
	// whatever the emulator accepts.
	g, err := startSQSGuard(s.SQSEndpoint)
	if err != nil {
		return err
	}
	s.sqsGuard, s.SQSEndpoint = g, g.URL
	return nil
}

type envMap map[string]string

func (e envMap) get(k string) string { return e[k] }

// endpointEnv is what the stack's own SDK clients and every function get to reach the emulators.
func (s *Stack) endpointEnv() envMap {
	return envMap{
		awscfg.EnvDynamoEndpoint: s.DynamoEndpoint,
		awscfg.EnvSQSEndpoint:    s.SQSEndpoint,
		awscfg.EnvKMSEndpoint:    s.KMSEndpoint,
		"AWS_REGION":             Region,
		"AWS_ACCESS_KEY_ID":      "local",
		"AWS_SECRET_ACCESS_KEY":  "local",
	}
}

// provision resolves the parameters and creates the declared tables and queues.
func (s *Stack) provision(ctx context.Context, tpl *template.Template, o Options, aws awscfg.Config) error {
	params, err := ParameterValues(tpl, o.Params)
	if err != nil {
		return err
	}
	s.Params = params
	tables, queues := provision.Specs(tpl, o.Prefix, o.VisibilityTimeout)
	if err := provision.Tables(ctx, aws.DynamoDB(), tables); err != nil {
		return err
	}
	byName, err := provision.Queues(ctx, aws.SQS(), queues)
	if err != nil {
		return err
	}
	s.Tables, s.Queues, s.Streams = map[string]string{}, map[string]provision.QueueInfo{}, map[string]string{}
	for _, t := range tpl.Tables() {
		s.Tables[t.LogicalID] = o.Prefix + t.LogicalID
		if t.StreamViewType != "" {
			arn, err := provision.StreamARN(ctx, aws.DynamoDB(), s.Tables[t.LogicalID])
			if err != nil {
				return err
			}
			s.Streams[t.LogicalID] = arn
		}
	}
	for _, q := range tpl.Queues() {
		s.Queues[q.LogicalID] = byName[provision.QueueName(o.Prefix, q)]
	}
	return nil
}

// ParameterValues resolves the template's parameters: overrides first, then defaults, and for a
// NoEcho parameter without either a development value "dev-<kebab-name>" (dev-inbound-secret).
func ParameterValues(tpl *template.Template, overrides map[string]string) (map[string]string, error) {
	all := map[string]string{}
	for name, p := range tpl.Parameters {
		if p.NoEcho && !p.HasDefault {
			all[name] = DevSecret(name)
		}
	}
	for k, v := range overrides {
		all[k] = v
	}
	return tpl.ParameterValues(all)
}

// DevSecret is the development value of a NoEcho parameter: InboundSecret → dev-inbound-secret.
func DevSecret(param string) string {
	var b strings.Builder
	b.WriteString("dev")
	for _, r := range param {
		if unicode.IsUpper(r) {
			b.WriteByte('-')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// maximumConcurrency resolves an SQS event source's ScalingConfig.MaximumConcurrency; 0 when
// it has none.
func (s *Stack) maximumConcurrency(tpl *template.Template, src template.SQSSource) (int, error) {
	if src.MaximumConcurrency.Kind == template.KindLiteral && src.MaximumConcurrency.Literal == "" {
		return 0, nil
	}
	v, err := template.Resolve(src.MaximumConcurrency, s.resolver(tpl))
	if err != nil {
		return 0, fmt.Errorf("ScalingConfig.MaximumConcurrency: %w", err)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("ScalingConfig.MaximumConcurrency %q is not a number", v)
	}
	return n, nil
}

// resolver answers !Ref and !GetAtt the way CloudFormation would, with local values.
func (s *Stack) resolver(tpl *template.Template) template.Resolver {
	return template.ResolverFuncs{
		RefFunc: func(name string) (string, error) {
			if v, ok := s.Params[name]; ok {
				return v, nil
			}
			if v, ok := s.Tables[name]; ok {
				return v, nil
			}
			if q, ok := s.Queues[name]; ok {
				return q.URL, nil
			}
			switch name {
			case "AWS::Region":
				return Region, nil
			case "AWS::AccountId":
				return AccountID, nil
			case "AWS::Partition":
				return "aws", nil
			case "AWS::URLSuffix":
				return "amazonaws.com", nil
			case "AWS::StackName":
				return "hookgate-local", nil
			}
			if res, ok := tpl.Resources[name]; ok && res.Type == template.TypeHTTPAPI {
				return LocalAPIID, nil
			}
			if res, ok := tpl.Resources[name]; ok && res.Type == typeKMSKey {
				return s.KMSKeyID, nil
			}
			return "", fmt.Errorf("!Ref %s: nothing of that name runs locally", name)
		},
		GetAttFunc: func(res, attr string) (string, error) {
			if q, ok := s.Queues[res]; ok {
				switch attr {
				case "Arn":
					return q.ARN, nil
				case "QueueName":
					return q.Name, nil
				case "QueueUrl":
					return q.URL, nil
				}
			}
			if t, ok := s.Tables[res]; ok && attr == "Arn" {
				return "arn:aws:dynamodb:" + Region + ":" + AccountID + ":table/" + t, nil
			}
			if r, ok := tpl.Resources[res]; ok && r.Type == typeKMSKey && attr == "Arn" {
				return "arn:aws:kms:" + Region + ":" + AccountID + ":key/" + s.KMSKeyID, nil
			}
			if arn, ok := s.Streams[res]; ok && attr == "StreamArn" {
				return arn, nil // DynamoDB Local's own: arn:aws:dynamodb:ddblocal:000000000000:table/<name>/stream/<label>
			}
			return "", fmt.Errorf("!GetAtt %s.%s: not available locally", res, attr)
		},
	}
}

// typeKMSKey is the template's KMS key: local mode stands in local-kms and its seeded key.
const typeKMSKey = "AWS::KMS::Key"

// streamOnFailure is where a stream event source's discarded batches go: the queue of its
// DestinationConfig.OnFailure when that is a queue of the stack, as the record Lambda writes there
// (fanoutdlq.Pointer: the shard and the sequence number range, not the records, which stay in the
// stream for 24 h), else the log. Without a destination it is nil: the mapping logs the discard.
func (s *Stack) streamOnFailure(function string, src template.StreamSource, streamARN string, q *sqs.Client, log *slog.Logger) func(context.Context, streamesm.Discard) {
	if src.OnFailure.Kind == template.KindLiteral && src.OnFailure.Literal == "" {
		return nil
	}
	log = log.With("function", function, "event_source", src.Event, "destination", src.OnFailure.String())
	dest, ok := provision.QueueInfo{}, false
	if src.OnFailure.Kind == template.KindGetAtt && src.OnFailure.GetAtt[1] == "Arn" {
		dest, ok = s.Queues[src.OnFailure.GetAtt[0]]
	}
	if !ok {
		return func(ctx context.Context, d streamesm.Discard) {
			log.Error("discarded stream records: the on-failure destination is not a queue of the stack; records dropped",
				"records", len(d.Records), "first_sequence_number", d.Records[0].Change.SequenceNumber)
		}
	}
	return func(ctx context.Context, d streamesm.Discard) {
		first, last := d.Records[0].Change, d.Records[len(d.Records)-1].Change
		p := fanoutdlq.Pointer{
			RequestContext: fanoutdlq.RequestContext{
				RequestID: ids.New("req", time.Now()), FunctionArn: "arn:aws:lambda:" + Region + ":" + AccountID + ":function:" + d.Function,
				Condition: "RetryAttemptsExhausted", ApproximateInvokeCount: d.Invokes,
			},
			ResponseContext: fanoutdlq.ResponseContext{StatusCode: 200, ExecutedVersion: "$LATEST", FunctionError: "Unhandled"},
			Version:         "1.0",
			Timestamp:       time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
			Batch: fanoutdlq.BatchInfo{
				ShardID: d.Shard, StartSequenceNumber: first.SequenceNumber, EndSequenceNumber: last.SequenceNumber,
				ApproximateArrivalOfFirstRecord: fanoutdlq.Arrival(first.ApproximateCreationDateTime.Time),
				ApproximateArrivalOfLastRecord:  fanoutdlq.Arrival(last.ApproximateCreationDateTime.Time),
				BatchSize:                       len(d.Records), StreamArn: streamARN,
			},
		}
		data, err := json.Marshal(p)
		if err == nil {
			url, body := dest.URL, string(data)
			in := &sqs.SendMessageInput{QueueUrl: &url, MessageBody: &body}
			if strings.HasSuffix(dest.Name, ".fifo") { // Lambda refuses FIFO destinations; be lenient
				group, dedup := function, first.SequenceNumber+"-"+last.SequenceNumber
				in.MessageGroupId, in.MessageDeduplicationId = &group, &dedup
			}
			_, err = q.SendMessage(ctx, in)
		}
		if err != nil {
			log.Error("discarded stream records: sending their pointer to the on-failure queue failed; records dropped", "err", err,
				"records", len(d.Records), "first_sequence_number", first.SequenceNumber)
			return
		}
		log.Warn("discarded stream records named in the on-failure queue", "queue", dest.Name, "shard", d.Shard,
			"records", len(d.Records), "first_sequence_number", first.SequenceNumber, "last_sequence_number", last.SequenceNumber)
	}
}

// functionConfig is how one function of the template runs locally: its bootstrap, its resolved
// environment plus the emulator endpoints, its timeout and memory.
func (s *Stack) functionConfig(tpl *template.Template, fn template.Function, o Options) (lambdart.Config, error) {
	env := map[string]string{"AWS_LAMBDA_LOG_FORMAT": "JSON"}
	for k, v := range s.endpointEnv() {
		env[k] = v
	}
	r := s.resolver(tpl)
	vars := map[string]string{}
	for k, v := range fn.Env {
		val, err := template.Resolve(v, r)
		if err != nil {
			return lambdart.Config{}, fmt.Errorf("function %s: environment %s: %w", fn.LogicalID, k, err)
		}
		env[k], vars[k] = val, val
	}
	// Lambda's 4 KB holds for the template's variables (the local endpoints are local mode's own).
	if err := lambdart.CheckEnvSize(fn.LogicalID, vars); err != nil {
		return lambdart.Config{}, err
	}
	for k, v := range o.FunctionEnv {
		env[k] = v
	}
	return lambdart.Config{
		Name:          fn.LogicalID,
		Path:          filepath.Join(o.BinDir, fn.LogicalID, "bootstrap"),
		Env:           env,
		Timeout:       time.Duration(fn.Timeout) * time.Second,
		MemoryMB:      fn.MemorySize,
		Concurrency:   o.concurrency(fn.LogicalID),
		Log:           o.FunctionLog,
		RecursiveLoop: fn.RecursiveLoop,
	}, nil
}
