// Package stack runs the whole stack of template.yaml on this machine with no Docker: emulators, tables
// and queues, the real bootstraps behind a local Runtime API, HTTP routes and event sources.
package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/hookgate/hookgate/local/emulator"
	"github.com/hookgate/hookgate/local/httpapi"
	"github.com/hookgate/hookgate/local/lambdart"
	"github.com/hookgate/hookgate/local/provision"
	"github.com/hookgate/hookgate/local/sqsesm"
	"github.com/hookgate/hookgate/local/streamesm"
	"github.com/hookgate/hookgate/local/template"
	"github.com/hookgate/hookgate/shared/awscfg"
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

	Params            map[string]string // template parameter overrides
	Prefix            string            // prepended to table and queue names
	VisibilityTimeout time.Duration     // > 0 replaces every queue's visibility timeout (tests)
	PollWait          time.Duration     // SQS long-poll wait of the event source mappings
	Concurrency       int               // processes per function (default 2)
	FunctionEnv       map[string]string // added to every function's environment
	FunctionLog       io.Writer         // bootstrap output; nil discards it
	Logger            *slog.Logger
	OnInvoke          func(function string) // called before every invocation (the cost meter counts them)
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

	hosts     map[string]*lambdart.Host
	onInvoke  func(function string)
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
	s := &Stack{hosts: map[string]*lambdart.Host{}, configs: map[string]lambdart.Config{}, cancel: cancel, onInvoke: o.OnInvoke}
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
	for _, fn := range tpl.Functions() {
		for _, src := range fn.SQSSources {
			if !src.Enabled {
				continue
			}
			q, ok := s.Queues[src.Queue]
			if !ok {
				return nil, fmt.Errorf("function %s: event source %s reads undeclared queue %q", fn.LogicalID, src.Event, src.Queue)
			}
			c := sqsesm.Config{
				Function: fn.LogicalID, QueueURL: q.URL, QueueARN: q.ARN, BatchSize: src.BatchSize,
				ReportBatchItemFailures: src.ReportBatchItemFailures, WaitTime: o.PollWait, Logger: o.Logger, Region: Region,
			}
			// Like Lambda, several batches of one queue are in flight at once, one poller per
			// function process; SQS keeps a FIFO group's later messages back while one is in flight.
			for range o.Concurrency {
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					if err := sqsesm.Run(runCtx, c, aws.SQS(), s); err != nil {
						o.Logger.Error("event source mapping stopped", "function", c.Function, "err", err)
					}
				}()
			}
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
				Filters: src.FilterPatterns, Region: Region, Logger: o.Logger,
				OnFailure: s.streamOnFailure(fn.LogicalID, src, aws.SQS(), o.Logger),
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
	s.server = &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Logger.Error("http api stopped", "err", err)
		}
	}()
	return s, nil
}

// prepare starts the emulators (unless endpoints are given) and creates the declared resources.
func (s *Stack) prepare(ctx context.Context, tpl *template.Template, o Options) (awscfg.Config, error) {
	if err := s.startEmulators(ctx, o); err != nil {
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

// Invoke runs one invocation of a function of the stack (the gateway and the pollers call it).
func (s *Stack) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	h, ok := s.hosts[function]
	if !ok {
		return nil, fmt.Errorf("no function %q in the stack", function)
	}
	if s.onInvoke != nil {
		s.onInvoke(function)
	}
	return h.Invoke(ctx, payload)
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

func (s *Stack) startEmulators(ctx context.Context, o Options) error {
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
			if arn, ok := s.Streams[res]; ok && attr == "StreamArn" {
				return arn, nil // DynamoDB Local's own: arn:aws:dynamodb:ddblocal:000000000000:table/<name>/stream/<label>
			}
			return "", fmt.Errorf("!GetAtt %s.%s: not available locally", res, attr)
		},
	}
}

// maxMessageBytes is SQS's largest message.
const maxMessageBytes = 256 << 10

// streamOnFailure is where a stream event source's discarded records go: the queue of its
// DestinationConfig.OnFailure when that is a queue of the stack, as one or more messages whose
// body is a DynamoDB stream event of the records (the event the function failed on, so it can be
// replayed), else the log. Lambda itself sends only the batch's metadata (shard, sequence number
// range), not the records. Without a destination it is nil: the mapping logs the discard.
func (s *Stack) streamOnFailure(function string, src template.StreamSource, q *sqs.Client, log *slog.Logger) func(context.Context, []events.DynamoDBEventRecord) {
	if src.OnFailure.Kind == template.KindLiteral && src.OnFailure.Literal == "" {
		return nil
	}
	log = log.With("function", function, "event_source", src.Event, "destination", src.OnFailure.String())
	dest, ok := provision.QueueInfo{}, false
	if src.OnFailure.Kind == template.KindGetAtt && src.OnFailure.GetAtt[1] == "Arn" {
		dest, ok = s.Queues[src.OnFailure.GetAtt[0]]
	}
	if !ok {
		return func(ctx context.Context, records []events.DynamoDBEventRecord) {
			log.Error("discarded stream records: the on-failure destination is not a queue of the stack; records dropped",
				"records", len(records), "first_sequence_number", records[0].Change.SequenceNumber)
		}
	}
	return func(ctx context.Context, records []events.DynamoDBEventRecord) {
		for _, chunk := range chunkRecords(records, maxMessageBytes) {
			data, err := json.Marshal(events.DynamoDBEvent{Records: chunk})
			if err == nil && len(data) > maxMessageBytes {
				err = fmt.Errorf("record of %d bytes is over the SQS message limit", len(data))
			}
			if err == nil {
				url, body := dest.URL, string(data)
				in := &sqs.SendMessageInput{QueueUrl: &url, MessageBody: &body}
				if strings.HasSuffix(dest.Name, ".fifo") { // Lambda refuses FIFO destinations; be lenient
					group, dedup := function, chunk[0].Change.SequenceNumber+"-"+chunk[len(chunk)-1].Change.SequenceNumber
					in.MessageGroupId, in.MessageDeduplicationId = &group, &dedup
				}
				_, err = q.SendMessage(ctx, in)
			}
			if err != nil {
				log.Error("discarded stream records: sending them to the on-failure queue failed; records dropped", "err", err,
					"records", len(chunk), "first_sequence_number", chunk[0].Change.SequenceNumber)
				continue
			}
			log.Warn("discarded stream records sent to the on-failure queue", "queue", dest.Name,
				"records", len(chunk), "first_sequence_number", chunk[0].Change.SequenceNumber)
		}
	}
}

// chunkRecords splits records into runs whose event JSON stays under limit bytes, roughly (a
// record over the limit is a run of its own).
func chunkRecords(records []events.DynamoDBEventRecord, limit int) [][]events.DynamoDBEventRecord {
	var chunks [][]events.DynamoDBEventRecord
	start, size := 0, 0
	for i, r := range records {
		n := limit // unencodable: alone
		if b, err := json.Marshal(r); err == nil {
			n = len(b) + 1
		}
		if i > start && size+n > limit-64 {
			chunks = append(chunks, records[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(records) {
		chunks = append(chunks, records[start:])
	}
	return chunks
}

// functionConfig is how one function of the template runs locally: its bootstrap, its resolved
// environment plus the emulator endpoints, its timeout and memory.
func (s *Stack) functionConfig(tpl *template.Template, fn template.Function, o Options) (lambdart.Config, error) {
	env := map[string]string{"AWS_LAMBDA_LOG_FORMAT": "JSON"}
	for k, v := range s.endpointEnv() {
		env[k] = v
	}
	r := s.resolver(tpl)
	for k, v := range fn.Env {
		val, err := template.Resolve(v, r)
		if err != nil {
			return lambdart.Config{}, fmt.Errorf("function %s: environment %s: %w", fn.LogicalID, k, err)
		}
		env[k] = val
	}
	for k, v := range o.FunctionEnv {
		env[k] = v
	}
	return lambdart.Config{
		Name:        fn.LogicalID,
		Path:        filepath.Join(o.BinDir, fn.LogicalID, "bootstrap"),
		Env:         env,
		Timeout:     time.Duration(fn.Timeout) * time.Second,
		MemoryMB:    fn.MemorySize,
		Concurrency: o.Concurrency,
		Log:         o.FunctionLog,
	}, nil
}
