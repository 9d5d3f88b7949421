package streamesm

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// The SDK client satisfies the interface.
var _ StreamsAPI = (*dynamodbstreams.Client)(nil)

// seqRange is first..last as record numbers.
func seqRange(first, last int) []int {
	var out []int
	for i := first; i <= last; i++ {
		out = append(out, i)
	}
	return out
}

// byKey groups delivered record numbers by item key, in delivery order.
func byKey(r *recorder) map[string][]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]int{}
	for _, b := range r.batches {
		for _, rec := range b {
			pk := rec.Change.Keys["pk"].String()
			out[pk] = append(out[pk], num(rec))
		}
	}
	return out
}

// TestShardLineage: parents are read to their end before their children; a shard whose parent
// was trimmed (not listed) is read at once; shards appearing later (a rotation) are found and
// read from their start; DescribeStream is paged.
func TestShardLineage(t *testing.T) {
	f := newFakeStream()
	f.pageSize = 2
	f.addShard("p", "", true, recs(1, 5, "a")...)
	f.addShard("r", "", false, recs(101, 103, "b")...)
	f.addShard("c", "p", true, recs(6, 8, "a")...)
	f.addShard("x", "trimmed-away", true, recs(201, 202, "c")...)
	f.addShard("g", "c", false, recs(9, 10, "a")...)
	inv := &recorder{t: t}
	start(t, Config{BatchSize: 2}, f, inv)
	eventually(t, "15 records", func() bool { return len(inv.delivered()) == 15 })

	// A rotation: g closes, its child takes the new writes of item a.
	f.close("g")
	f.addShard("g2", "g", false, recs(11, 12, "a")...)
	f.put("r", rec(104, "b", ""))
	eventually(t, "18 records", func() bool { return len(inv.delivered()) == 18 })
	time.Sleep(20 * time.Millisecond) // nothing more comes
	want := map[string][]int{"a": seqRange(1, 12), "b": seqRange(101, 104), "c": {201, 202}}
	if got := byKey(inv); !reflect.DeepEqual(got, want) {
		t.Errorf("delivered by key %v, want %v", got, want)
	}
	for _, b := range inv.calls() {
		if len(strings.Fields(b)) > 2 {
			t.Errorf("batch %q is over the batch size", b)
		}
	}
	if n := f.callCount("GetShardIterator"); n != 6 {
		t.Errorf("%d GetShardIterator calls, want one per shard (6): %v", n, f.calls)
	}
}

// TestStartingPositionLatest: closed shards are skipped, open ones read from their end; shards
// that appear later are read from their start.
func TestStartingPositionLatest(t *testing.T) {
	f := newFakeStream()
	f.addShard("p", "", true, recs(1, 3, "a")...)
	f.addShard("c", "p", false, recs(4, 5, "a")...)
	inv := &recorder{t: t}
	start(t, Config{StartingPosition: "LATEST"}, f, inv)
	eventually(t, "the LATEST iterator", func() bool { return f.callCount("GetShardIterator c LATEST") == 1 })
	f.put("c", recs(6, 7, "a")...)
	eventually(t, "two records", func() bool { return len(inv.delivered()) == 2 })
	f.close("c")
	f.addShard("d", "c", false, rec(8, "a", ""))
	eventually(t, "three records", func() bool { return len(inv.delivered()) == 3 })
	if got := inv.delivered(); !reflect.DeepEqual(got, []int{6, 7, 8}) {
		t.Errorf("delivered %v, want [6 7 8]", got)
	}
	if f.callCount("GetShardIterator p") != 0 || f.callCount("GetShardIterator d TRIM_HORIZON") != 1 {
		t.Errorf("calls %v", f.calls)
	}
}

// TestPartialBatchFailure: with ReportBatchItemFailures the shard goes on from the failed record
// with the lowest sequence number; the records before it are not sent again.
func TestPartialBatchFailure(t *testing.T) {
	for _, bisect := range []bool{false, true} {
		t.Run(fmt.Sprintf("bisect=%v", bisect), func(t *testing.T) {
			f := newFakeStream()
			f.addShard("s", "", false, recs(1, 10, "a")...)
			inv := &recorder{t: t, respond: func(call int, b []events.DynamoDBEventRecord) ([]byte, error) {
				switch call {
				case 1:
					return failures(7, 4), nil // lowest first or not: 4 counts
				case 2:
					return []byte(`{"batchItemFailures":[]}`), nil
				}
				return nil, nil
			}}
			start(t, Config{BatchSize: 10, ReportBatchItemFailures: true, BisectBatchOnFunctionError: bisect, MaximumRetryAttempts: -1}, f, inv)
			eventually(t, "two calls", func() bool { return len(inv.calls()) == 2 })
			f.put("s", rec(11, "a", ""))
			eventually(t, "three calls", func() bool { return len(inv.calls()) == 3 })
			want := []string{"1 2 3 4 5 6 7 8 9 10", "4 5 6 7 8 9 10", "11"}
			if got := inv.calls(); !reflect.DeepEqual(got, want) {
				t.Errorf("calls %q, want %q", got, want)
			}
		})
	}
}

// TestPartialFailureRetriesThenDiscards: a record that keeps failing is retried from, then its
// batch goes to OnFailure after MaximumRetryAttempts; the shard goes on.
func TestPartialFailureRetriesThenDiscards(t *testing.T) {
	f := newFakeStream()
	f.addShard("s", "", false, recs(1, 6, "a")...)
	var mu sync.Mutex
	var discarded []string
	inv := &recorder{t: t, respond: func(call int, b []events.DynamoDBEventRecord) ([]byte, error) {
		for _, r := range b {
			if num(r) == 4 {
				return failures(4), nil
			}
		}
		return nil, nil
	}}
	start(t, Config{
		BatchSize: 10, ReportBatchItemFailures: true, MaximumRetryAttempts: 2,
		OnFailure: func(ctx context.Context, d Discard) {
			mu.Lock()
			defer mu.Unlock()
			discarded = append(discarded, nums(d.Records))
		},
	}, f, inv)
	eventually(t, "a discard", func() bool { mu.Lock(); defer mu.Unlock(); return len(discarded) == 1 })
	f.put("s", rec(7, "a", ""))
	eventually(t, "record 7", func() bool { return slices.Contains(inv.delivered(), 7) })
	want := []string{"1 2 3 4 5 6", "4 5 6", "4 5 6", "7"}
	if got := inv.calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(discarded, []string{"4 5 6"}) {
		t.Errorf("discarded %q", discarded)
	}
}

// TestBisectIsolatesAPoisonRecord: a failing batch is split in two (not counting as a retry)
// until the failing record is alone; it is retried, then discarded; the rest is delivered once.
func TestBisectIsolatesAPoisonRecord(t *testing.T) {
	f := newFakeStream()
	f.addShard("s", "", false, recs(1, 8, "a")...)
	var mu sync.Mutex
	var discarded []string
	inv := &recorder{t: t, respond: func(call int, b []events.DynamoDBEventRecord) ([]byte, error) {
		for _, r := range b {
			if num(r) == 4 {
				return nil, errors.New("poison")
			}
		}
		return nil, nil
	}}
	start(t, Config{
		BatchSize: 8, BisectBatchOnFunctionError: true, MaximumRetryAttempts: 2,
		OnFailure: func(ctx context.Context, d Discard) {
			mu.Lock()
			defer mu.Unlock()
			discarded = append(discarded, nums(d.Records))
		},
	}, f, inv)
	eventually(t, "the second half", func() bool { c := inv.calls(); return len(c) > 0 && c[len(c)-1] == "5 6 7 8" })
	want := []string{
		"1 2 3 4 5 6 7 8", // fails: bisect
		"1 2 3 4",         // fails: bisect
		"1 2",             // ok
		"3 4",             // fails: bisect
		"3",               // ok
		"4", "4", "4",     // fails: first try and two retries, then discarded
		"5 6 7 8", // the other half of the first split
	}
	if got := inv.calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(discarded, []string{"4"}) {
		t.Errorf("discarded %q", discarded)
	}
}

// TestRetries: without bisect a failed batch is retried whole, MaximumRetryAttempts times (0:
// never, -1: until it works), then discarded without stopping the shard.
func TestRetries(t *testing.T) {
	cases := []struct {
		retries, failCalls int
		want               []string
		discarded          []string
	}{
		{retries: 1, failCalls: 99, want: []string{"1 2 3", "1 2 3", "4 5 6"}, discarded: []string{"1 2 3"}},
		{retries: 0, failCalls: 99, want: []string{"1 2 3", "4 5 6"}, discarded: []string{"1 2 3"}},
		{retries: -1, failCalls: 4, want: []string{"1 2 3", "1 2 3", "1 2 3", "1 2 3", "1 2 3", "4 5 6"}},
		{retries: 10, failCalls: 2, want: []string{"1 2 3", "1 2 3", "1 2 3", "4 5 6"}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("retries=%d", c.retries), func(t *testing.T) {
			f := newFakeStream()
			f.addShard("s", "", true, recs(1, 6, "a")...)
			var mu sync.Mutex
			var discarded []string
			inv := &recorder{t: t, respond: func(call int, b []events.DynamoDBEventRecord) ([]byte, error) {
				if num(b[0]) == 1 && call <= c.failCalls {
					return nil, errors.New("boom")
				}
				return nil, nil
			}}
			start(t, Config{
				BatchSize: 3, MaximumRetryAttempts: c.retries, ReportBatchItemFailures: true,
				OnFailure: func(ctx context.Context, d Discard) {
					mu.Lock()
					defer mu.Unlock()
					discarded = append(discarded, nums(d.Records))
				},
			}, f, inv)
			eventually(t, "record 6", func() bool { return slices.Contains(inv.delivered(), 6) })
			if got := inv.calls(); !reflect.DeepEqual(got, c.want) {
				t.Errorf("calls %q, want %q", got, c.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if !reflect.DeepEqual(discarded, c.discarded) {
				t.Errorf("discarded %q, want %q", discarded, c.discarded)
			}
		})
	}
}

// TestRetryBacksOff: retries of a batch wait longer and longer (poll interval, doubling).
func TestRetryBacksOff(t *testing.T) {
	f := newFakeStream()
	f.addShard("s", "", false, recs(1, 1, "a")...)
	var mu sync.Mutex
	var at []time.Time
	inv := &recorder{t: t, respond: func(call int, b []events.DynamoDBEventRecord) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		at = append(at, time.Now())
		return nil, errors.New("boom")
	}}
	start(t, Config{PollInterval: 20 * time.Millisecond, MaximumRetryAttempts: 3}, f, inv)
	eventually(t, "four calls", func() bool { return len(inv.calls()) == 4 })
	mu.Lock()
	defer mu.Unlock()
	for i, want := range []time.Duration{20, 40, 80} {
		if gap := at[i+1].Sub(at[i]); gap < want*time.Millisecond {
			t.Errorf("retry %d after %s, want at least %dms", i+1, gap, want)
		}
	}
}

// TestFilteredRecordsCountAsProcessed: records the filters drop never reach the function, a batch
// of only dropped records is no invocation, and the shard still ends and hands over to its child.
func TestFilteredRecordsCountAsProcessed(t *testing.T) {
	f := newFakeStream()
	f.addShard("p", "", true, rec(1, "a", "INSERT"), rec(2, "a", "MODIFY"), rec(3, "b", "INSERT"), rec(4, "a", "REMOVE"), rec(5, "b", "MODIFY"))
	f.addShard("c", "p", false, rec(6, "a", "MODIFY"))
	inv := &recorder{t: t}
	start(t, Config{BatchSize: 1, Filters: []string{`{"eventName":["INSERT"]}`}}, f, inv)
	eventually(t, "two records", func() bool { return len(inv.delivered()) == 2 })
	f.put("c", rec(7, "a", "INSERT"))
	eventually(t, "record 7", func() bool { return len(inv.delivered()) == 3 })
	if got := inv.calls(); !reflect.DeepEqual(got, []string{"1", "3", "7"}) {
		t.Errorf("calls %q", got)
	}
}

// TestBatchItemFailureResponses: how a ReportBatchItemFailures response is read.
func TestBatchItemFailureResponses(t *testing.T) {
	batch := []item{
		{rec: events.DynamoDBEventRecord{Change: events.DynamoDBStreamRecord{SequenceNumber: "100"}}},
		{rec: events.DynamoDBEventRecord{Change: events.DynamoDBStreamRecord{SequenceNumber: "200"}}},
		{rec: events.DynamoDBEventRecord{Change: events.DynamoDBStreamRecord{SequenceNumber: "300"}}},
	}
	cases := []struct {
		resp    string
		first   int
		wantErr string
	}{
		{"", -1, ""},
		{" null ", -1, ""},
		{"{}", -1, ""},
		{`{"batchItemFailures":null}`, -1, ""},
		{`{"batchItemFailures":[]}`, -1, ""},
		{`{"batchItemFailures":[{"itemIdentifier":"200"}]}`, 1, ""},
		{`{"batchItemFailures":[{"itemIdentifier":"300"},{"itemIdentifier":"100"}]}`, 0, ""},
		{`{"batchItemFailures":[{"itemIdentifier":""}]}`, 0, "empty itemIdentifier"},
		{`{"batchItemFailures":[{"itemIdentifier":null}]}`, 0, "null itemIdentifier"},
		{`{"batchItemFailures":[{"itemId":"200"}]}`, 0, "has no itemIdentifier"},
		{`{"batchItemFailures":[{"itemIdentifier":"999"}]}`, 0, `"999" is not a sequence number of the batch`},
		{`{"batchItemFailures":[{"itemIdentifier":200}]}`, 0, "is not a string"},
		{`not json`, 0, "decode batch response"},
		{`{"batchItemFailures":"200"}`, 0, "decode batch response"},
	}
	for _, c := range cases {
		first, err := batchItemFailure([]byte(c.resp), batch)
		switch {
		case c.wantErr == "" && (err != nil || first != c.first):
			t.Errorf("%q: got %d, %v; want %d", c.resp, first, err, c.first)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%q: got %d, %v; want an error containing %q", c.resp, first, err, c.wantErr)
		}
	}
}

// TestInvalidResponseFailsTheBatch: an unreadable batch response is a failure of the whole batch
// (bisected when enabled); without ReportBatchItemFailures the response is ignored.
func TestInvalidResponseFailsTheBatch(t *testing.T) {
	for _, rbif := range []bool{true, false} {
		t.Run(fmt.Sprintf("rbif=%v", rbif), func(t *testing.T) {
			f := newFakeStream()
			f.addShard("s", "", true, recs(1, 2, "a")...)
			inv := &recorder{t: t, respond: func(call int, b []events.DynamoDBEventRecord) ([]byte, error) {
				if call == 1 {
					return []byte(`{"batchItemFailures":[{"itemIdentifier":""}]}`), nil
				}
				return failures(), nil
			}}
			start(t, Config{ReportBatchItemFailures: rbif, BisectBatchOnFunctionError: true, MaximumRetryAttempts: -1}, f, inv)
			want := []string{"1 2"}
			if rbif {
				want = []string{"1 2", "1", "2"}
			}
			eventually(t, "every record", func() bool { return len(inv.calls()) == len(want) })
			time.Sleep(20 * time.Millisecond)
			if got := inv.calls(); !reflect.DeepEqual(got, want) {
				t.Errorf("calls %q, want %q", got, want)
			}
		})
	}
}

// TestAPIErrors: failed calls are retried; an expired iterator is replaced from the last record
// read; trimmed records are skipped; a vanished shard is finished with what was read.
func TestAPIErrors(t *testing.T) {
	f := newFakeStream()
	f.addShard("s", "", false, recs(1, 4, "a")...)
	var mu sync.Mutex
	count := map[string]int{}
	f.fail = func(op string, in any) error {
		mu.Lock()
		defer mu.Unlock()
		count[op]++
		switch {
		case op == "DescribeStream" && count[op] <= 2:
			return errors.New("throttled")
		case op == "GetShardIterator" && count[op] == 1:
			return &types.LimitExceededException{Message: aws.String("slow down")}
		case op == "GetRecords" && count[op] == 2:
			return &types.ExpiredIteratorException{Message: aws.String("expired")}
		case op == "GetRecords" && count[op] == 3:
			return errors.New("connection reset")
		}
		return nil
	}
	inv := &recorder{t: t}
	start(t, Config{BatchSize: 2}, f, inv)
	eventually(t, "first batch", func() bool { return len(inv.delivered()) >= 2 })
	eventually(t, "four records", func() bool { return len(inv.delivered()) == 4 })
	f.put("s", recs(5, 6, "a")...)
	eventually(t, "six records", func() bool { return len(inv.delivered()) == 6 })
	if got := inv.delivered(); !reflect.DeepEqual(got, seqRange(1, 6)) {
		t.Errorf("delivered %v", got)
	}
	if f.callCount("GetShardIterator s AFTER_SEQUENCE_NUMBER") == 0 {
		t.Errorf("no new iterator after the expiry: %v", f.calls)
	}

	// Trimmed: the position is gone; reading goes on from the oldest record left.
	f.mu.Lock()
	f.fail = func(op string, in any) error {
		if op == "GetRecords" {
			return &types.ExpiredIteratorException{Message: aws.String("expired")}
		}
		return nil
	}
	f.mu.Unlock()
	f.put("s", recs(7, 10, "a")...)
	f.mu.Lock()
	f.trimmed["s"] = 8 // records 1..8 are gone
	f.fail = nil
	f.mu.Unlock()
	eventually(t, "records 9 and 10", func() bool { return slices.Contains(inv.delivered(), 10) })
	got := inv.delivered()
	if slices.Contains(got, 7) || slices.Contains(got, 8) || !slices.Contains(got, 9) {
		t.Errorf("after the trim: delivered %v, want 9 and 10 but not 7, 8", got)
	}

	// A shard that no longer exists is finished; its child is read.
	f.close("s")
	f.addShard("t", "s", false, rec(11, "a", ""))
	f.mu.Lock()
	f.shards = f.shards[1:] // s vanished
	f.mu.Unlock()
	eventually(t, "record 11", func() bool { return slices.Contains(inv.delivered(), 11) })
}

// TestBatchingWindow: records wait up to the window for a fuller batch; a full batch goes at once.
func TestBatchingWindow(t *testing.T) {
	f := newFakeStream()
	f.addShard("s", "", false, recs(1, 3, "a")...)
	inv := &recorder{t: t}
	began := time.Now()
	start(t, Config{BatchSize: 6, BatchingWindow: 300 * time.Millisecond, PollInterval: 5 * time.Millisecond}, f, inv)
	time.Sleep(50 * time.Millisecond)
	f.put("s", recs(4, 5, "a")...)
	eventually(t, "a batch", func() bool { return len(inv.calls()) == 1 })
	if waited := time.Since(began); waited < 250*time.Millisecond {
		t.Errorf("batch after %s, want about the 300ms window", waited)
	}
	if got := inv.calls(); !reflect.DeepEqual(got, []string{"1 2 3 4 5"}) {
		t.Errorf("calls %q", got)
	}

	// With a long window, a full batch still goes at once.
	f = newFakeStream()
	f.addShard("s", "", false, recs(1, 3, "a")...)
	inv = &recorder{t: t}
	start(t, Config{BatchSize: 6, BatchingWindow: time.Minute, PollInterval: 5 * time.Millisecond}, f, inv)
	time.Sleep(20 * time.Millisecond)
	f.put("s", recs(4, 8, "a")...)
	eventually(t, "a full batch", func() bool { return len(inv.calls()) == 1 })
	if got := inv.calls(); !reflect.DeepEqual(got, []string{"1 2 3 4 5 6"}) {
		t.Errorf("calls %q", got)
	}
}

// TestPayloadLimit: a batch is cut to fit Lambda's 6 MB payload limit.
func TestPayloadLimit(t *testing.T) {
	f := newFakeStream()
	big := strings.Repeat("x", 400_000)
	var rs []types.Record
	for i := 1; i <= 16; i++ {
		r := rec(i, "a", "")
		r.Dynamodb.NewImage["big"] = &types.AttributeValueMemberS{Value: big}
		rs = append(rs, r)
	}
	f.addShard("s", "", true, rs...)
	inv := &sizeInvoker{}
	start(t, Config{BatchSize: 100}, f, inv)
	eventually(t, "16 records", func() bool { inv.mu.Lock(); defer inv.mu.Unlock(); return len(inv.seqs) == 16 })
	inv.mu.Lock()
	defer inv.mu.Unlock()
	for i, s := range inv.seqs {
		if s != seqNum(i+1) {
			t.Fatalf("record %d is %s", i+1, s)
		}
	}
	for i, n := range inv.sizes {
		if n > maxPayloadBytes {
			t.Errorf("payload %d is %d bytes", i, n)
		}
	}
	if len(inv.sizes) < 2 {
		t.Errorf("%d invocation for 6.4 MB of records", len(inv.sizes))
	}
}

// sizeInvoker keeps payload sizes and sequence numbers without decoding big payloads.
type sizeInvoker struct {
	mu    sync.Mutex
	sizes []int
	seqs  []string
}

func (s *sizeInvoker) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sizes = append(s.sizes, len(payload))
	for _, m := range regexp.MustCompile(`"SequenceNumber":"(\d+)"`).FindAllSubmatch(payload, -1) {
		s.seqs = append(s.seqs, string(m[1]))
	}
	return nil, nil
}

// TestStopWhileInvoking: Run returns when ctx is done, also during an invocation.
func TestStopWhileInvoking(t *testing.T) {
	f := newFakeStream()
	f.addShard("s", "", false, recs(1, 1, "a")...)
	entered := make(chan struct{})
	inv := &blockingInvoker{entered: entered}
	stop := start(t, Config{}, f, inv)
	<-entered
	stop() // fails the test if Run does not return
}

type blockingInvoker struct {
	once    sync.Once
	entered chan struct{}
}

func (b *blockingInvoker) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	b.once.Do(func() { close(b.entered) })
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestConfigErrors(t *testing.T) {
	good := Config{Function: "Fn", StreamARN: fakeARN}
	cases := map[string]func(*Config){
		"no function":        func(c *Config) { c.Function = "" },
		"no stream":          func(c *Config) { c.StreamARN = "" },
		"batch too big":      func(c *Config) { c.BatchSize = 10001 },
		"negative batch":     func(c *Config) { c.BatchSize = -1 },
		"window too long":    func(c *Config) { c.BatchingWindow = 301 * time.Second },
		"at timestamp":       func(c *Config) { c.StartingPosition = "AT_TIMESTAMP" },
		"retries below -1":   func(c *Config) { c.MaximumRetryAttempts = -2 },
		"retries over 10000": func(c *Config) { c.MaximumRetryAttempts = 10001 },
		"negative poll":      func(c *Config) { c.PollInterval = -time.Second },
		"no region anywhere": func(c *Config) { c.StreamARN = "table/T/stream/x" },
		"bad filter":         func(c *Config) { c.Filters = []string{"{"} },
	}
	for name, mutate := range cases {
		c := good
		mutate(&c)
		if err := Run(context.Background(), c, newFakeStream(), fakeInvoker{}); err == nil {
			t.Errorf("%s: no error", name)
		}
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate: no error", name)
		}
	}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if err := Run(context.Background(), good, nil, fakeInvoker{}); err == nil {
		t.Error("nil client: no error")
	}
	if err := Run(context.Background(), good, newFakeStream(), nil); err == nil {
		t.Error("nil invoker: no error")
	}
	m, err := newMapping(good, newFakeStream(), fakeInvoker{})
	if err != nil {
		t.Fatal(err)
	}
	if m.c.Region != "us-east-1" || m.c.BatchSize != DefaultBatchSize || m.c.PollInterval != DefaultPollInterval || m.c.StartingPosition != "TRIM_HORIZON" {
		t.Errorf("defaults: %+v", m.c)
	}
}

// A caught-up shard reads 4 times a second at first, then slows down while it stays idle, to once
// a second at most (the reader's run starts over at the poll interval when a read finds records).
func TestIdleShardSlowsDownToAQuarterOfItsPollRate(t *testing.T) {
	poll := DefaultPollInterval
	want := []time.Duration{poll, poll, 2 * poll, 4 * poll, 4 * poll, 4 * poll}
	for idle := range want {
		if got := idleWait(poll, idle); got != want[idle] {
			t.Errorf("idleWait after %d empty reads = %s, want %s", idle, got, want[idle])
		}
	}
	if got := idleWait(poll, 1_000_000); got != time.Second {
		t.Errorf("idleWait of a long idle shard = %s, want 1s", got)
	}
}
