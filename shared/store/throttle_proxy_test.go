package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/shared/awscfg"
)

// throttleProxy stands in front of DynamoDB Local and enforces a write budget per partition key,
// as DynamoDB enforces one per partition (1,000 WU/s documented; DynamoDB Local enforces none): a
// token bucket per pk, refilled at rate write units a second up to burst, charged by every
// PutItem, UpdateItem and DeleteItem. A write the bucket cannot pay for is answered as DynamoDB
// answers it, HTTP 400 ProvisionedThroughputExceededException, which the SDK retries; it never
// reaches DynamoDB Local. A write costs 1 WU per started KB of its item (PutItem) or 1 WU
// (UpdateItem and DeleteItem, whose items here are small counters and markers). Other calls, and
// every call while no budget is set, pass.
type throttleProxy struct {
	URL string
	now func() time.Time

	mu          sync.Mutex
	rate, burst float64 // WU/s and WU; rate 0: no budget
	buckets     map[string]*tokenBucket
	throttled   map[string]int64 // pk → writes refused
}

type tokenBucket struct {
	tokens float64
	at     time.Time
}

// newThrottleProxy starts a proxy to the DynamoDB endpoint target, with no budget until limit
// sets one, closed when tb ends.
func newThrottleProxy(tb testing.TB, target string) *throttleProxy {
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}
	p := &throttleProxy{now: time.Now, buckets: map[string]*tokenBucket{}, throttled: map[string]int64{}}
	srv := httptest.NewServer(p.handler(rp))
	tb.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *throttleProxy) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if pk, wu, ok := writeOf(r.Header.Get("X-Amz-Target"), body); ok && !p.take(pk, wu) {
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",`+
				`"message":"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."}`)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limit sets the budget of every partition key: rate WU/s, up to burst WU at once.
func (p *throttleProxy) limit(rate, burst float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate, p.burst = rate, burst
	clear(p.buckets)
}

// budget is the write budget of every partition key, in WU/s (0: none).
func (p *throttleProxy) budget() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rate
}

// take charges wu to pk's bucket, or counts a refusal and reports false.
func (p *throttleProxy) take(pk string, wu float64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rate == 0 {
		return true
	}
	now := p.now()
	b := p.buckets[pk]
	if b == nil { // a new key starts with a full bucket
		b = &tokenBucket{tokens: p.burst, at: now}
		p.buckets[pk] = b
	}
	b.tokens = min(p.burst, b.tokens+now.Sub(b.at).Seconds()*p.rate)
	b.at = now
	if b.tokens < wu {
		p.throttled[pk]++
		return false
	}
	b.tokens -= wu
	return true
}

// Throttled is the number of writes refused to the partition keys starting with prefix.
func (p *throttleProxy) Throttled(prefix string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for pk, c := range p.throttled {
		if strings.HasPrefix(pk, prefix) {
			n += c
		}
	}
	return n
}

// writeOf returns the partition key and write units of a DynamoDB write request.
func writeOf(target string, body []byte) (pk string, wu float64, ok bool) {
	_, op, _ := strings.Cut(target, ".")
	var req struct {
		Item map[string]json.RawMessage
		Key  map[string]struct{ S string }
	}
	switch op {
	case "PutItem", "UpdateItem", "DeleteItem":
	default:
		return "", 0, false
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return "", 0, false
	}
	if op != "PutItem" {
		return req.Key["pk"].S, 1, req.Key["pk"].S != ""
	}
	var key struct{ S string }
	if err := json.Unmarshal(req.Item["pk"], &key); err != nil || key.S == "" {
		return "", 0, false
	}
	size := 0
	for name, v := range req.Item {
		size += len(name) + len(v)
	}
	return key.S, math.Ceil(float64(size) / 1024), true
}

// The proxy refuses a key's write past its budget with an error the SDK knows and retries, every
// attempt counted, and lets other keys and a refilled bucket through.
func TestThrottleProxy(t *testing.T) {
	t.Parallel()
	db := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = io.WriteString(w, `{}`)
	}))
	defer db.Close()
	p := newThrottleProxy(t, db.URL)
	clock := time.Unix(1e9, 0)
	p.now = func() time.Time { return clock }
	cfg, err := localConfig(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	var calls, attempts, failures atomic.Int64
	cfg.AWS.APIOptions = append(cfg.AWS.APIOptions, countRequests(&calls, &attempts, &failures))
	st := New(cfg.DynamoDB(), "t", time.Now)
	ctx := t.Context()
	for range 3 {
		if _, err := st.reserve(ctx, "a", 0, 1); err != nil {
			t.Fatalf("a write with no budget set: %v", err)
		}
	}
	p.limit(10, 1)
	if _, err := st.reserve(ctx, "a", 0, 1); err != nil {
		t.Fatalf("the first write of a key: %v", err)
	}
	_, err = st.reserve(ctx, "a", 0, 1)
	var pte *types.ProvisionedThroughputExceededException
	if !errors.As(err, &pte) {
		t.Fatalf("the second write of a key within its budget: %v, want ProvisionedThroughputExceededException", err)
	}
	if got := p.Throttled("WS#a#"); got != awscfg.MaxAttempts || attempts.Load() != 4+awscfg.MaxAttempts {
		t.Fatalf("refused %d, attempts %d; want %d, %d", got, attempts.Load(), awscfg.MaxAttempts, 4+awscfg.MaxAttempts)
	}
	if _, err := st.reserve(ctx, "b", 0, 1); err != nil {
		t.Fatalf("another key's write: %v", err)
	}
	clock = clock.Add(100 * time.Millisecond) // one WU at 10 WU/s
	if _, err := st.reserve(ctx, "a", 0, 1); err != nil {
		t.Fatalf("a write after its bucket refilled: %v", err)
	}
	if pk, wu, ok := writeOf("DynamoDB_20120810.PutItem", []byte(`{"Item":{"pk":{"S":"k"},"body":{"S":"`+strings.Repeat("x", 2100)+`"}}}`)); pk != "k" || wu != 3 || !ok {
		t.Fatalf("a put of 2.1 KB: %q %v %v, want k 3 true", pk, wu, ok)
	}
	if _, _, ok := writeOf("DynamoDB_20120810.Query", []byte(`{"Key":{"pk":{"S":"k"}}}`)); ok {
		t.Fatal("a query charged as a write")
	}
}
