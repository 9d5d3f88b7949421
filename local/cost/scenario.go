package cost

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookgate/hookgate/local/emulator"
	"github.com/hookgate/hookgate/local/ssetest"
	"github.com/hookgate/hookgate/local/stack"
	"github.com/hookgate/hookgate/local/template"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/store"
)

// Options configure a metered run.
type Options struct {
	Root, BinDir string
	Webhooks     int // per scenario (default 2); the figures are per webhook
	Logger       *slog.Logger
	// Shards, when above 1, runs only scenario (a), as "a<Shards>", on a stack whose
	// EventLogShards is Shards, with each thread in the last shard (none in shard 0, whose keys are
	// the log's before shards).
	Shards int
}

// Result is one scenario's count, for all its webhooks.
type Result struct {
	Name, Title string
	Webhooks    int
	Usage       *Usage
	Storage     Storage // table bytes added by the scenario
	// ShardEvents counts the event items the scenario added to the log, by shard.
	ShardEvents map[int]int
}

// Storage is what the scenario left in the table and its index, billed size (items + 100 bytes
// each), and the part that expires by TTL.
type Storage struct{ Bytes, TTLBytes int64 }

// The development secrets of the metered stack.
const (
	inboundSecret = "cost-inbound-secret-0123456789"
	adapterSecret = "cost-adapter-secret-0123456789"
	adminKey      = "cost-admin-key-0123456789abcdef"
	widgetKey     = "cost-widget-signing-key-0123456789"
	shopSecret    = "cost-shop-secret-0123456789"
	origin        = "https://shop.example"
	idKey         = "cost-id-derivation-key-0123456789"
)

// quiet is how long nothing billable must happen before a webhook counts as done: twice the
// longest wait of the stack's pollers (an idle stream shard's, 1 s; SQS long polls return as a
// message comes).
const quiet = 2 * time.Second

// Run starts emulators, the meter's proxies and the stack, and runs every scenario.
func Run(ctx context.Context, o Options) (_ []Result, err error) {
	if o.Webhooks <= 0 {
		o.Webhooks = 2
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ddb, err := emulator.StartDynamo(ctx, emulator.DynamoOptions{Root: o.Root})
	if err != nil {
		return nil, err
	}
	defer func() { _ = ddb.Stop() }()
	q, err := emulator.StartSQS(ctx, emulator.SQSOptions{Root: o.Root})
	if err != nil {
		return nil, err
	}
	defer func() { _ = q.Stop() }()
	m, err := New(ddb.Endpoint)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	dp, err := m.DynamoProxy()
	if err != nil {
		return nil, err
	}
	sp, err := m.SQSProxy(q.Endpoint)
	if err != nil {
		return nil, err
	}
	tpl, err := template.Load(o.Root + "/template.yaml")
	if err != nil {
		return nil, err
	}
	s, err := stack.Start(ctx, stack.Options{
		Root: o.Root, BinDir: o.BinDir, Addr: "127.0.0.1:0",
		DynamoEndpoint: dp, SQSEndpoint: sp,
		Params: map[string]string{
			"InboundSecret": inboundSecret, "AdapterSecret": adapterSecret, "AdminApiKey": adminKey,
			"AllowHttpUrls": "true", "AllowPrivateDestinations": "true",
			"WidgetSigningKey": widgetKey, "WidgetAllowedOrigins": origin,
			"Adapters": `[{"name":"default"}]`,
			// The scenarios' echo turns end within the template's 250 ms hold on AWS; on a loaded
			// machine the local one may not, and would count the two groups of a slow turn.
			"OpeningHoldMilliseconds": "5000",
			"IdDerivationKey":         idKey,
			"EventLogShards":          strconv.Itoa(max(o.Shards, 1)),
		},
		Prefix: "cost-", PollWait: time.Second, Concurrency: 2,
		// The retry sweep's schedule is a cost per stack (about 43,200 small invocations a month),
		// not per webhook: it does not run while the scenarios are metered.
		SchedulePeriod: 24 * time.Hour,
		OnInvoke:       m.Invoked, FunctionLog: m.LogWriter(), Logger: o.Logger,
	})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	r := &runner{m: m, url: s.URL, table: s.Tables["Table"], n: o.Webhooks, fns: tpl.Functions(), shards: max(o.Shards, 1)}
	if err := r.warmUp(ctx); err != nil {
		return nil, fmt.Errorf("warm up: %w", err)
	}
	scenarios := r.scenarios()
	if r.shards > 1 {
		scenarios = scenarios[:1]
		scenarios[0].name = fmt.Sprintf("a%d", r.shards)
		scenarios[0].title += fmt.Sprintf(", %d shards, its thread in shard %d", r.shards, r.shards-1)
	}
	var out []Result
	for _, sc := range scenarios {
		res, err := r.run(ctx, sc)
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %w", sc.name, err)
		}
		out = append(out, res)
	}
	return out, nil
}

// Memory is each function's memory size in MB, from the template.
func Memory(root string) (map[string]int, error) {
	tpl, err := template.Load(root + "/template.yaml")
	if err != nil {
		return nil, err
	}
	mem := map[string]int{}
	for _, fn := range tpl.Functions() {
		mem[fn.LogicalID] = fn.MemorySize
	}
	return mem, nil
}

type runner struct {
	m      *Meter
	url    string
	table  string
	n      int
	fns    []template.Function
	seq    int
	shards int // the stack's EventLogShards
}

type scenario struct {
	name, title string
	setup       func(ctx context.Context) (done func(i int) bool, cleanup func(), err error)
	webhook     func(ctx context.Context, i int) error
}

func (r *runner) run(ctx context.Context, sc scenario) (Result, error) {
	done, cleanup, err := sc.setup(ctx)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	r.settle(ctx, func() bool { return true })
	before, err := r.scan(ctx)
	if err != nil {
		return Result{}, err
	}
	r.m.Reset()
	for i := range r.n {
		if err := sc.webhook(ctx, i); err != nil {
			return Result{}, err
		}
		if !r.settle(ctx, func() bool { return done(i) }) {
			return Result{}, fmt.Errorf("webhook %d did not finish", i)
		}
	}
	u := r.m.Reset()
	after, err := r.scan(ctx)
	if err != nil {
		return Result{}, err
	}
	var st Storage
	shards := map[int]int{}
	for k, sz := range after {
		if _, ok := before[k]; ok {
			continue
		}
		var it item
		if json.Unmarshal([]byte(k), &it) == nil {
			if _, sh, ok := store.ParseEventPK(strAttr(it, "pk")); ok {
				shards[sh]++
			}
		}
		st.Bytes += sz.bytes
		if sz.ttl {
			st.TTLBytes += sz.bytes
		}
	}
	return Result{Name: sc.name, Title: sc.title, Webhooks: r.n, Usage: u, Storage: st, ShardEvents: shards}, nil
}

// settle waits for done, then until nothing billable happened for quiet.
func (r *runner) settle(ctx context.Context, done func() bool) bool {
	deadline := time.Now().Add(90 * time.Second)
	for !done() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	for time.Since(r.m.LastBillable()) < quiet {
		time.Sleep(200 * time.Millisecond)
	}
	return true
}

type stored struct {
	bytes int64
	ttl   bool
}

// scan reads the whole table (directly, not counted): each item's billed size and its index copies.
func (r *runner) scan(ctx context.Context) (map[string]stored, error) {
	t := r.m.table(ctx, r.table)
	out := map[string]stored{}
	var start item
	for {
		in := map[string]any{"TableName": r.table}
		if start != nil {
			in["ExclusiveStartKey"] = start
		}
		var page struct {
			Items            []item
			LastEvaluatedKey item
		}
		if err := r.m.call(ctx, "Scan", in, &page); err != nil {
			return nil, err
		}
		for _, it := range page.Items {
			b, _ := json.Marshal(it) // the whole item: a changed item counts again
			n := int64(itemSize(it) + 100)
			for _, g := range t.gsis {
				if p := project(t, g, it); p != nil {
					n += int64(itemSize(p) + 100)
				}
			}
			_, ttl := it["ttl"]
			out[string(b)] = stored{bytes: n, ttl: ttl}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		start = page.LastEvaluatedKey
	}
}

// do sends one HTTP API request (counted) and decodes a JSON answer into out.
func (r *runner) do(ctx context.Context, method, path string, headers map[string]string, body string, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, r.url+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	r.m.HTTPRequest()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func admin() map[string]string {
	return map[string]string{"x-api-key": adminKey, "content-type": "application/json"}
}

// receiver is a subscriber: it counts deliveries by event type.
type receiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	types map[string]int
}

func newReceiver() *receiver {
	rc := &receiver{types: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var env struct{ Type string }
		_ = json.NewDecoder(req.Body).Decode(&env)
		rc.mu.Lock()
		rc.types[env.Type]++
		rc.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	return rc
}

func (rc *receiver) count(typ string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.types[typ]
}

// subscribe creates n subscribers of events and returns them and a cleanup that deletes them.
func (r *runner) subscribe(ctx context.Context, n int, events string) ([]*receiver, func(), error) {
	var rcs []*receiver
	var ids []string
	cleanup := func() {
		for _, id := range ids {
			_ = r.do(context.Background(), http.MethodDelete, "/v1/webhooks/"+id, admin(), "", http.StatusNoContent, nil)
		}
		for _, rc := range rcs {
			rc.srv.Close()
		}
	}
	for range n {
		rc := newReceiver()
		rcs = append(rcs, rc)
		var out struct{ ID string }
		if err := r.do(ctx, http.MethodPost, "/v1/webhooks", admin(), fmt.Sprintf(`{"url":%q,"events":%s}`, rc.srv.URL+"/hook", events), http.StatusCreated, &out); err != nil {
			cleanup()
			return nil, nil, err
		}
		ids = append(ids, out.ID)
	}
	return rcs, cleanup, nil
}

// warmUp sends one generic message and one sync adapter call before anything is metered: a cold
// worker seeds the stack's agents and a cold adapter function its adapters, once per stack and
// not per webhook.
func (r *runner) warmUp(ctx context.Context) error {
	if err := r.generic(ctx, -1); err != nil {
		return err
	}
	var out struct{ Status string }
	if err := r.do(ctx, http.MethodPost, "/webhook/default", map[string]string{"authorization": "Bearer " + adapterSecret, "content-type": "application/json"},
		`{"text":"warm up","user":"ada","sync":true,"timeoutMs":20000}`, http.StatusOK, &out); err != nil {
		return err
	}
	r.settle(ctx, func() bool { return true })
	return nil
}

func (r *runner) generic(ctx context.Context, i int) error {
	r.seq++
	for r.shards > 1 && store.HashShard(ids.NewKeyed(idKey).Thread("default", "cost", fmt.Sprintf("user-%d", r.seq)), r.shards) != r.shards-1 {
		r.seq++
	}
	body := fmt.Sprintf(`{"channel":"cost","external_id":"user-%d","text":"hello, agent","user":"ada"}`, r.seq)
	return r.do(ctx, http.MethodPost, "/v1/inbound/generic",
		map[string]string{"content-type": "application/json", "x-hookgate-inbound-secret": inboundSecret}, body, http.StatusAccepted, nil)
}

func (r *runner) scenarios() []scenario {
	return []scenario{
		{name: "a", title: "generic inbound → echo run → 1 subscriber of run.completed",
			setup: func(ctx context.Context) (func(int) bool, func(), error) {
				rcs, cleanup, err := r.subscribe(ctx, 1, `["run.completed"]`)
				if err != nil {
					return nil, nil, err
				}
				return func(i int) bool { return rcs[0].count("run.completed") >= i+1 }, cleanup, nil
			},
			webhook: r.generic},
		{name: "b", title: "generic inbound → echo run → 5 subscribers of *",
			setup: func(ctx context.Context) (func(int) bool, func(), error) {
				rcs, cleanup, err := r.subscribe(ctx, 5, `["*"]`)
				if err != nil {
					return nil, nil, err
				}
				return func(i int) bool {
					for _, rc := range rcs {
						if rc.count("run.completed") < i+1 {
							return false
						}
					}
					return true
				}, cleanup, nil
			},
			webhook: r.generic},
		{name: "c", title: "SaaS webhook recorded as an event (no run) → 1 subscriber",
			setup: func(ctx context.Context) (func(int) bool, func(), error) {
				if err := r.do(ctx, http.MethodPost, "/v1/sources", admin(), fmt.Sprintf(`{"name":"shop","scheme":"hmac_sha256","secret":%q}`, shopSecret), http.StatusCreated, nil); err != nil {
					return nil, nil, err
				}
				rcs, cleanup, err := r.subscribe(ctx, 1, `["webhook.shop.*"]`)
				if err != nil {
					return nil, nil, err
				}
				return func(i int) bool { return rcs[0].count("webhook.shop.order_paid") >= i+1 }, cleanup, nil
			},
			webhook: func(ctx context.Context, i int) error {
				r.seq++
				body := fmt.Sprintf(`{"type":"order.paid","id":"ord_%06d","data":{"amount":4200,"currency":"eur","customer":"cus_%06d"}}`, r.seq, r.seq)
				mac := hmac.New(sha256.New, []byte(shopSecret))
				mac.Write([]byte(body))
				return r.do(ctx, http.MethodPost, "/v1/webhooks/generic/default?source=shop", map[string]string{
					"content-type": "application/json", "x-webhook-id": fmt.Sprintf("evt-%06d", r.seq),
					"x-hookgate-signature": "sha256=" + hex.EncodeToString(mac.Sum(nil)),
				}, body, http.StatusAccepted, nil)
			}},
		{name: "d", title: "sync adapter call (no subscriber)",
			setup: func(ctx context.Context) (func(int) bool, func(), error) {
				return func(int) bool { return true }, func() {}, nil
			},
			webhook: func(ctx context.Context, i int) error {
				var out struct{ Status string }
				if err := r.do(ctx, http.MethodPost, "/webhook/default", map[string]string{"authorization": "Bearer " + adapterSecret, "content-type": "application/json"},
					`{"text":"hello, agent","user":"ada","sync":true,"timeoutMs":20000}`, http.StatusOK, &out); err != nil {
					return err
				}
				if out.Status != "completed" {
					return fmt.Errorf("sync call: run %s", out.Status)
				}
				return nil
			}},
		r.widgetScenario(),
	}
}

// widgetScenario: a widget session (setup), then per webhook a stream reader that stays connected
// (reconnecting after each window, as an EventSource does) from before the message is sent until
// the run completed.
func (r *runner) widgetScenario() scenario {
	var token, last string
	var mu sync.Mutex
	completed := map[int]bool{}
	return scenario{name: "e", title: "widget message with an open stream reader for the run's duration",
		setup: func(ctx context.Context) (func(int) bool, func(), error) {
			var out struct{ Token string }
			if err := r.do(ctx, http.MethodPost, "/v1/web/session", map[string]string{"origin": origin, "content-type": "application/json"}, "{}", http.StatusCreated, &out); err != nil {
				return nil, nil, err
			}
			token = out.Token
			return func(i int) bool {
				mu.Lock()
				defer mu.Unlock()
				return completed[i]
			}, func() {}, nil
		},
		webhook: func(ctx context.Context, i int) error {
			var runID string
			errc := make(chan error, 1)
			started := make(chan struct{})
			go func() {
				close(started)
				errc <- r.follow(ctx, token, &last, func(ev ssetest.Event) bool {
					var d struct {
						RunID  string `json:"run_id"`
						Status string `json:"status"`
					}
					_ = json.Unmarshal([]byte(ev.Data), &d)
					mu.Lock()
					defer mu.Unlock()
					return ev.Name == "run" && d.RunID == runID && d.Status == "completed"
				})
			}()
			<-started
			var out struct {
				RunID string `json:"run_id"`
			}
			r.seq++
			mu.Lock()
			err := r.do(ctx, http.MethodPost, "/v1/web/messages", map[string]string{"origin": origin, "authorization": "Bearer " + token, "content-type": "application/json"},
				fmt.Sprintf(`{"text":"hello, widget","client_id":"c-%d"}`, r.seq), http.StatusAccepted, &out)
			runID = out.RunID
			mu.Unlock()
			if err != nil {
				return err
			}
			if err := <-errc; err != nil {
				return err
			}
			mu.Lock()
			completed[i] = true
			mu.Unlock()
			return nil
		}}
}

// follow reads the widget stream window after window from *last until stop says so.
func (r *runner) follow(ctx context.Context, token string, last *string, stop func(ssetest.Event) bool) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		u := r.url + "/v1/web/stream?token=" + url.QueryEscape(token)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		req.Header.Set("origin", origin)
		if *last != "" {
			req.Header.Set("last-event-id", *last)
		}
		r.m.HTTPRequest()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("stream: %d %s", resp.StatusCode, raw)
		}
		rd := ssetest.NewReader(bytes.NewReader(raw), *last)
		for {
			ev, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if stop(ev) {
				*last = rd.LastEventID
				return nil
			}
		}
		*last = rd.LastEventID
	}
	return errors.New("stream: the run did not complete")
}
