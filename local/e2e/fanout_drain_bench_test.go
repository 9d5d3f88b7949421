package e2e_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/local/stack"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// The backlog of BenchmarkFanoutDrain: drainGroups appends of drainGroupSize threadless Spread
// events (store.maxGroupEvents, the most one append takes), each group dealt to a shard by its
// first event's id as the worker's event groups are.
const (
	drainGroups    = 320
	drainGroupSize = 25
)

// fanoutBatchSize is the BatchSize of FanoutFunction's stream event source in template.yaml.
const fanoutBatchSize = 100

// The latency assumed for AWS in-region round trips, added at the proxies in front of the
// emulators to every call while the fan-out drains: DynamoDB (data plane and streams) and SQS.
const (
	dynamoLatency = 8 * time.Millisecond
	sqsLatency    = 15 * time.Millisecond
)

// BenchmarkFanoutDrain measures the stage that log shards change: the fan-out draining one
// workspace's log. A `*` subscription is created through the API of a stack that is then closed;
// a backlog of 8,000 threadless Spread events (drainGroups appends of drainGroupSize) is appended
// to its table; then a stack starts whose FanoutFunction mapping reads the table's stream from
// TRIM_HORIZON (the template's StartingPosition), and the drain is timed from that start until
// every event's delivery is queued on DeliveryQueue (counted at the SQS proxy, one per distinct
// delivery id, then checked against the queue's depth). The delivery consumer is starved (its
// receives on DeliveryQueue answer nothing), so neither the delivery function nor a receiver
// shares the machine. Every DynamoDB call (streams included) waits dynamoLatency and every SQS
// call sqsLatency at a proxy, assumptions standing for AWS in-region round trips, so that the
// stage is latency-bound as on AWS rather than bound by the emulators' CPU (their own time still
// adds to each call). baseline appends with one shard and reads with one stream partition;
// shards-4 appends with store.WithShards(4) and reads with 4 virtual partitions (stack.Options
// StreamPartitions; on AWS a busy log shard's partition key ends up in a stream shard of its own).
// Both stacks run FanoutFunction with 4 processes, as Lambda runs one instance per stream shard.
//
// ns/op is the drain; drain-s, events/s, cpu-% (the whole machine's utilisation over the drain,
// /proc/stat), own-cores (the cores this benchmark's processes used meanwhile) and, for shards-4,
// x-baseline (baseline drain / this drain) are reported. A drain above cpuBound is logged as
// CPU-bound, not a shard result: on a machine shared with other work that may be the neighbours'
// CPU, which own-cores tells apart. The log line also gives the fan-out's batches (how many were
// full) and the emulators' time per operation, which say where a drain's time went: locally the
// 4 partitions share DynamoDB Local's one stream shard, read one GetRecords at a time, and their
// lanes hold at most 4 × BatchSize records together, so a third to a half of shards-4's batches
// are partial (an AWS stream shard per log shard would fill each of its own). In make bench (30
// to 70 s for both); alone:
func BenchmarkFanoutDrain(b *testing.B) {
	var baseline time.Duration
	for _, shards := range []int{1, 4} {
		name := "shards-" + strconv.Itoa(shards)
		if shards == 1 {
			name = "baseline"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				r := fanoutDrain(b, shards)
				b.ReportMetric(float64(r.drain.Nanoseconds()), "ns/op")
				b.ReportMetric(r.drain.Seconds(), "drain-s")
				b.ReportMetric(float64(drainGroups*drainGroupSize)/r.drain.Seconds(), "events/s")
				b.ReportMetric(100*r.cpu, "cpu-%")
				own := 0.0
				for _, c := range r.own {
					own += c
				}
				b.ReportMetric(own, "own-cores")
				if shards == 1 {
					baseline = r.drain
				} else if baseline > 0 {
					b.ReportMetric(baseline.Seconds()/r.drain.Seconds(), "x-baseline")
				}
				label := ""
				if r.cpu > cpuBound {
					label = fmt.Sprintf(": CPU-bound, not a shard result (this benchmark's processes used %.2f cores)", own)
				}
				b.Logf("%d shards: %d events (per shard %v) drained in %.2fs at %.0f%% machine CPU%s; each shard's last delivery queued at %v; "+
					"%d fan-out invocations (%d full, %.0f records on average), at most %d at once; %d messages sent for %d deliveries; "+
					"cores by process %v; emulator time per call (delays excluded) %s",
					shards, drainGroups*drainGroupSize, r.perShard, r.drain.Seconds(), 100*r.cpu, label, r.shardDone,
					r.invokes, r.full, float64(r.records)/float64(max(r.invokes, 1)), r.maxInFlight, r.sends, drainGroups*drainGroupSize, r.own, r.emulators)
			}
		})
	}
}

// drainResult is one drain's measurements.
type drainResult struct {
	drain       time.Duration
	cpu         float64
	perShard    []int           // events appended to each shard
	shardDone   []time.Duration // when each shard's last delivery was queued, after the start
	invokes     int             // FanoutFunction invocations
	maxInFlight int             // FanoutFunction invocations running at once, at most
	records     int             // records in FanoutFunction's batches
	full        int             // batches of BatchSize records
	sends       int             // messages sent to DeliveryQueue, repeats included
	// own is the CPU this benchmark's processes used over the drain, in cores, by command name
	// (the test binary, the functions' bootstraps, DynamoDB Local's java, fauxqs's node).
	own map[string]float64
	// emulators names the operations the emulators spent most time on over the drain.
	emulators string
}

// fanoutDrain appends the backlog to a fresh table in a log of shards shards, then starts the
// stack that drains it, and measures the drain.
func fanoutDrain(b *testing.B, shards int) drainResult {
	ctx := context.Background()
	prefix := fmt.Sprintf("fan%d-", time.Now().UnixNano()%1e9)
	dynamo, sqsEndpoint := emulatortest.OwnDynamo(b), emulatortest.SQS(b)
	px := newAWSLatency(b, dynamo, sqsEndpoint, prefix+"DeliveryQueue")
	root, _ := filepath.Abs("../..")
	var inFlight, maxInFlight, invokes, records, full atomic.Int64
	opts := stack.Options{
		Root: root, BinDir: binDir(b), Addr: "127.0.0.1:0",
		DynamoEndpoint: px.dynamoURL, SQSEndpoint: px.sqsURL, KMSEndpoint: emulatortest.KMS(b),
		Params: map[string]string{
			"InboundSecret": inboundSecret, "AdminApiKey": adminKey,
			"AllowHttpUrls": "true", "AllowPrivateDestinations": "true",
			"EventLogShards": strconv.Itoa(shards),
		},
		Prefix: prefix, VisibilityTimeout: 30 * time.Second, PollWait: time.Second, FunctionLog: io.Discard,
		StreamPartitions:    shards,
		FunctionConcurrency: map[string]int{"FanoutFunction": 4},
		OnInvocation: func(function string, payload []byte) func([]byte, error) {
			if function != "FanoutFunction" {
				return func([]byte, error) {}
			}
			invokes.Add(1)
			batch := int64(bytes.Count(payload, []byte(`"eventID"`))) // the batch's records
			records.Add(batch)
			if batch == fanoutBatchSize {
				full.Add(1)
			}
			running := inFlight.Add(1)
			for m := maxInFlight.Load(); running > m && !maxInFlight.CompareAndSwap(m, running); m = maxInFlight.Load() {
			}
			return func([]byte, error) { inFlight.Add(-1) }
		},
	}

	// The tables, queues and the subscription, through a stack that is closed again before the
	// backlog is appended (its fan-out sees no event).
	s, err := stack.Start(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	ws := s.Params["DefaultWorkspace"]
	table := s.Tables["Table"]
	sub, _ := json.Marshal(map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"*"}})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/webhooks", bytes.NewReader(sub))
	req.Header.Set("content-type", "application/json")
	req.Header.Set("x-api-key", adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_ = s.Close()
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("subscribe: %d %s", resp.StatusCode, raw)
	}

	perShard, shardOf := appendBacklog(b, dynamo, table, ws, shards)
	px.expect(drainGroups*drainGroupSize, shardOf, shards)

	// The drain: the stack whose mapping reads the stream from its start, every call delayed. It
	// is timed from Start's return; the mapping begins just before (Start's last steps).
	invokes.Store(0)
	maxInFlight.Store(0)
	records.Store(0)
	full.Store(0)
	px.on.Store(true)
	s, err = stack.Start(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	px.mu.Lock()
	clear(px.calls) // the stack's start is not the drain
	px.mu.Unlock()
	start, before, ownBefore := time.Now(), readCPU(b), treeCPU(b)
	select {
	case <-px.all:
	case <-time.After(10 * time.Minute):
		b.Fatalf("%d of %d deliveries queued 10 minutes after the fan-out started", px.queuedCount(), drainGroups*drainGroupSize)
	}
	after, ownAfter := readCPU(b), treeCPU(b)
	px.mu.Lock()
	last, sends := px.last, px.sends
	shardDone := make([]time.Duration, shards)
	for i, t := range px.shardLast {
		shardDone[i] = t.Sub(start).Round(10 * time.Millisecond)
	}
	px.mu.Unlock()
	if got := queueDepth(b, sqsEndpoint, s.Queues["DeliveryQueue"].URL); got != drainGroups*drainGroupSize {
		b.Fatalf("DeliveryQueue holds %d messages, want one per event: %d", got, drainGroups*drainGroupSize)
	}
	own := map[string]float64{}
	for name, t := range ownAfter {
		if d := (t - ownBefore[name]) / last.Sub(start).Seconds(); d >= 0.01 {
			own[name] = math.Round(100*d) / 100
		}
	}
	return drainResult{
		drain: last.Sub(start), cpu: after.utilisation(before), perShard: perShard, shardDone: shardDone,
		invokes: int(invokes.Load()), maxInFlight: int(maxInFlight.Load()), sends: sends,
		records: int(records.Load()), full: int(full.Load()), own: own, emulators: px.busiest(4),
	}
}

// treeCPU is the CPU time (user and system, seconds) used so far by this process and every
// process descended from it, by command name. It assumes Linux's usual 100 clock ticks a second.
func treeCPU(b *testing.B) map[string]float64 {
	type proc struct {
		ppid  int
		name  string
		ticks float64
	}
	procs := map[int]proc{}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid … utime stime: fields 14 and 15, counted from 1.
		open, end := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(string(raw[end+1:]))
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		procs[pid] = proc{ppid: ppid, name: string(raw[open+1 : end]), ticks: utime + stime}
	}
	self := os.Getpid()
	out := map[string]float64{}
	for pid, p := range procs {
		for up, seen := pid, 0; up > 0 && seen < 64; up, seen = procs[up].ppid, seen+1 {
			if up == self {
				out[p.name] += p.ticks / 100
				break
			}
		}
	}
	return out
}

// appendBacklog appends the backlog to the workspace's log, eight appends at a time, straight to
// DynamoDB Local. It returns how many events each shard got, and each event's shard by id.
func appendBacklog(b *testing.B, dynamo, table, ws string, shards int) ([]int, map[string]int) {
	cfg, err := awscfg.Load(context.Background(), func(k string) string {
		return map[string]string{awscfg.EnvDynamoEndpoint: dynamo, "AWS_REGION": stack.Region,
			"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}[k]
	})
	if err != nil {
		b.Fatal(err)
	}
	st := store.New(cfg.DynamoDB(), table, time.Now).WithShards(shards)
	perShard, shardOf := make([]int, shards), map[string]int{}
	var mu sync.Mutex
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for g := range drainGroups {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			evs := make([]store.Event, drainGroupSize)
			for i := range evs {
				evs[i] = store.Event{
					ID: fmt.Sprintf("evt_drain%03d_%02d", g, i), Type: "webhook.received", WorkspaceID: ws, Spread: true,
					Data: json.RawMessage(fmt.Sprintf(`{"source":"bench","n":%d,"text":"a webhook of the backlog"}`, g*drainGroupSize+i)),
				}
			}
			out, err := st.AppendEvents(context.Background(), evs)
			if err != nil {
				b.Errorf("append group %d: %v", g, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, e := range out {
				perShard[e.Shard]++
				shardOf[e.ID] = e.Shard
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return perShard, shardOf
}

// queueDepth is how many messages the queue holds, visible or in flight.
func queueDepth(b *testing.B, endpoint, queueURL string) int {
	cfg, err := awscfg.Load(context.Background(), func(k string) string {
		return map[string]string{awscfg.EnvSQSEndpoint: endpoint, "AWS_REGION": stack.Region,
			"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}[k]
	})
	if err != nil {
		b.Fatal(err)
	}
	out, err := cfg.SQS().GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	visible, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
	hidden, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible + hidden
}

// awsLatency stands between a stack and its emulators. While on, it delays every DynamoDB call by
// dynamoLatency and every SQS call by sqsLatency, counts the deliveries sent to the delivery queue,
// and starves that queue's consumer: its receives wait their long poll and get no message.
type awsLatency struct {
	dynamoURL, sqsURL string
	deliveryQueue     string // the queue's name
	on                atomic.Bool

	mu        sync.Mutex
	want      int
	shardOf   map[string]int     // event id → shard
	queued    map[string]bool    // delivery ids sent to the delivery queue
	sends     int                // messages sent to it, repeats included
	last      time.Time          // when the want-th delivery was queued
	shardLast []time.Time        // when each shard's last delivery was queued
	all       chan struct{}      // closed when want deliveries are queued
	calls     map[string]*opTime // by operation (X-Amz-Target): the emulators' time, delay excluded
}

// opTime is how often an operation was called and how long the emulator took over it in all.
type opTime struct {
	n     int
	spent time.Duration
}

func newAWSLatency(b *testing.B, dynamo, sqsEndpoint, deliveryQueue string) *awsLatency {
	p := &awsLatency{deliveryQueue: deliveryQueue, queued: map[string]bool{}, all: make(chan struct{}), calls: map[string]*opTime{}}
	dynamoSrv := httptest.NewServer(p.delayed(b, dynamo, dynamoLatency, nil))
	sqsSrv := httptest.NewServer(p.delayed(b, sqsEndpoint, sqsLatency, p.sqsCall))
	b.Cleanup(func() {
		dynamoSrv.Close()
		sqsSrv.Close()
	})
	p.dynamoURL, p.sqsURL = dynamoSrv.URL, sqsSrv.URL
	return p
}

// expect sets how many deliveries the drain queues, and the shard of each event.
func (p *awsLatency) expect(want int, shardOf map[string]int, shards int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.want, p.shardOf, p.shardLast = want, shardOf, make([]time.Time, shards)
}

func (p *awsLatency) queuedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queued)
}

// delayed proxies to endpoint, waiting delay first while on; call, when set, may answer a request
// itself (handled) and sees every answer.
func (p *awsLatency) delayed(b *testing.B, endpoint string, delay time.Duration,
	call func(w http.ResponseWriter, r *http.Request, body []byte, forward func() *httptest.ResponseRecorder) bool) http.Handler {
	u, err := url.Parse(endpoint)
	if err != nil {
		b.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // calls cancelled by a stack's Close
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.on.Load() {
			rp.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read request", http.StatusBadRequest)
			return
		}
		forward := func() *httptest.ResponseRecorder {
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-r.Context().Done():
			case <-t.C:
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			r.Header.Del("Accept-Encoding")
			rec := httptest.NewRecorder()
			began := time.Now()
			rp.ServeHTTP(rec, r)
			p.spent(r.Header.Get("X-Amz-Target"), time.Since(began))
			return rec
		}
		if call != nil && call(w, r, body, forward) {
			return
		}
		rec := forward()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// spent counts a call of op that took the emulator d.
func (p *awsLatency) spent(op string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.calls[op]
	if t == nil {
		t = &opTime{}
		p.calls[op] = t
	}
	t.n++
	t.spent += d
}

// busiest lists the operations the emulators spent most time on, with their calls and mean time.
func (p *awsLatency) busiest(k int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ops := slices.SortedFunc(maps.Keys(p.calls), func(a, b string) int { return cmp.Compare(p.calls[b].spent, p.calls[a].spent) })
	var out []string
	for _, op := range ops[:min(k, len(ops))] {
		t := p.calls[op]
		_, name, _ := strings.Cut(op, ".")
		out = append(out, fmt.Sprintf("%s %d×%.1fms", name, t.n, float64(t.spent.Microseconds())/1000/float64(t.n)))
	}
	return strings.Join(out, ", ")
}

// sqsCall starves the delivery queue's receives and counts its sends.
func (p *awsLatency) sqsCall(w http.ResponseWriter, r *http.Request, body []byte, forward func() *httptest.ResponseRecorder) bool {
	op, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
	var in struct {
		QueueUrl        string
		WaitTimeSeconds int
		MessageBody     string
		Entries         []struct{ Id, MessageBody string }
	}
	_ = json.Unmarshal(body, &in)
	if !strings.HasSuffix(in.QueueUrl, "/"+p.deliveryQueue) {
		return false
	}
	switch op {
	case "ReceiveMessage":
		t := time.NewTimer(time.Duration(min(in.WaitTimeSeconds, 20))*time.Second + sqsLatency)
		defer t.Stop()
		select {
		case <-r.Context().Done():
		case <-t.C:
		}
		w.Header().Set("content-type", "application/x-amz-json-1.0")
		_, _ = io.WriteString(w, "{}")
		return true
	case "SendMessage", "SendMessageBatch":
		rec := forward()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		if rec.Code != http.StatusOK {
			return true
		}
		bodies := map[string]string{"": in.MessageBody}
		var out struct{ Successful []struct{ Id string } }
		if op == "SendMessageBatch" {
			bodies = map[string]string{}
			for _, e := range in.Entries {
				bodies[e.Id] = e.MessageBody
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &out)
		} else {
			out.Successful = append(out.Successful, struct{ Id string }{""})
		}
		p.queue(bodies, out.Successful)
		return true
	}
	return false
}

// queue counts the messages SQS took.
func (p *awsLatency) queue(bodies map[string]string, sent []struct{ Id string }) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range sent {
		var m queue.Delivery
		_ = json.Unmarshal([]byte(bodies[s.Id]), &m)
		p.sends++
		if m.DeliveryID == "" || p.queued[m.DeliveryID] {
			continue
		}
		p.queued[m.DeliveryID] = true
		if m.New != nil {
			if sh, ok := p.shardOf[m.New.EventID]; ok {
				p.shardLast[sh] = now
			}
		}
		if len(p.queued) == p.want {
			p.last = now
			close(p.all)
		}
	}
}
