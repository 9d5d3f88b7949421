package limit

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/apierr"
)

func TestMain(m *testing.M) { os.Exit(emulatortest.Run(m)) }

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newLimiter returns a limiter on a fresh table of DynamoDB Local, shaped as template.yaml
// declares it, with its own clock.
func newLimiter(t *testing.T) (*Limiter, *clock, *dynamodb.Client, string) {
	t.Helper()
	db, table := emulatortest.Table(t, "limit")
	c := &clock{t: time.Date(2030, 5, 6, 23, 59, 0, 0, time.UTC)}
	return New(db, table, c.now), c, db, table
}

func take(t *testing.T, l *Limiter, key string, r Rule) Decision {
	t.Helper()
	d, err := l.Take(context.Background(), key, r)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBucketRefillsOnTheClock(t *testing.T) {
	t.Parallel()
	l, c, _, _ := newLimiter(t)
	r := Rule{Burst: 3, Every: time.Second}
	for i := range 3 {
		if d := take(t, l, "k", r); !d.OK {
			t.Fatalf("take %d of a full bucket refused: %+v", i+1, d)
		}
	}
	d := take(t, l, "k", r)
	if d.OK || d.RetryAfter != time.Second {
		t.Fatalf("take from an empty bucket = %+v, want refused for 1s", d)
	}
	c.advance(400 * time.Millisecond)
	if d := take(t, l, "k", r); d.OK || d.RetryAfter != 600*time.Millisecond {
		t.Fatalf("take 0.4 s later = %+v, want refused for 0.6 s", d)
	}
	c.advance(600 * time.Millisecond)
	if d := take(t, l, "k", r); !d.OK {
		t.Fatalf("the refilled token was refused: %+v", d)
	}
	if d := take(t, l, "k", r); d.OK {
		t.Fatal("a second token after one refill")
	}
	// Idle for long: full again, but never above Burst.
	c.advance(time.Hour)
	got := 0
	for range 5 {
		if take(t, l, "k", r).OK {
			got++
		}
	}
	if got != 3 {
		t.Fatalf("an idle bucket gave %d tokens, want its burst of 3", got)
	}
	// Another key has its own bucket, and another limiter (process) sees the same buckets.
	if !take(t, l, "other", r).OK {
		t.Fatal("another key shares the bucket")
	}
	if d := take(t, New(l.db, l.table, c.now), "k", r); d.OK {
		t.Fatal("another process got a token from an empty bucket")
	}
	if !take(t, l, "unlimited", Rule{}).OK {
		t.Fatal("an unlimited rule refused")
	}
}

// Many takers at once, each its own process (its own Limiter, no shared hints), on a clock that
// stands still: exactly Burst succeed.
func TestBucketConcurrentTakersGetExactlyBurst(t *testing.T) {
	t.Parallel()
	_, c, db, table := newLimiter(t)
	const takers, burst = 40, 10
	r := Rule{Burst: burst, Every: time.Minute}
	var ok atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, takers)
	for range takers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := New(db, table, c.now).Take(context.Background(), "flood", r)
			if err != nil {
				errs <- err
				return
			}
			if d.OK {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if ok.Load() != burst {
		t.Fatalf("%d of %d concurrent takes succeeded, want exactly %d", ok.Load(), takers, burst)
	}
}

func TestBucketItemExpires(t *testing.T) {
	t.Parallel()
	l, c, db, table := newLimiter(t)
	take(t, l, "ttl", Rule{Burst: 5, Every: time.Second})
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &table, Key: itemKey("ttl")})
	if err != nil {
		t.Fatal(err)
	}
	// Full again 5 s after now at the latest; gone a minute after that.
	if got, want := attrNum(out.Item, "ttl"), c.now().Add(65*time.Second).Unix(); got != want {
		t.Fatalf("ttl = %d, want %d", got, want)
	}
}

func TestCounterStopsAtMaxAndRefunds(t *testing.T) {
	t.Parallel()
	l, c, _, _ := newLimiter(t)
	ctx := context.Background()
	for i, want := range []bool{true, true, false} {
		if ok, err := l.Count(ctx, "day", 2, c.now().Add(time.Hour)); err != nil || ok != want {
			t.Fatalf("count %d = %v, %v; want %v", i+1, ok, err, want)
		}
	}
	if err := l.Uncount(ctx, "day"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := l.Count(ctx, "day", 2, c.now().Add(time.Hour)); !ok {
		t.Fatal("a refunded unit cannot be counted again")
	}
	// Never below zero.
	if err := l.Uncount(ctx, "empty"); err != nil {
		t.Fatal(err)
	}
}

func TestGateBudgetPerUTCDay(t *testing.T) {
	t.Parallel()
	l, c, _, _ := newLimiter(t)
	ctx := context.Background()
	g := NewGate(l, GateConfig{DailyRuns: 2}, c.now)
	for range 2 {
		if _, err := g.Admit(ctx, "ws", true); err != nil {
			t.Fatal(err)
		}
	}
	// Work that starts no run is not counted.
	if _, err := g.Admit(ctx, "ws", false); err != nil {
		t.Fatal(err)
	}
	_, err := g.Admit(ctx, "ws", true)
	if apierr.CodeOf(err) != apierr.BudgetExhausted || apierr.RetryAfterOf(err) != time.Minute ||
		!strings.Contains(apierr.MessageOf(err), "resets at 2030-05-07T00:00:00Z") {
		t.Fatalf("third run = %v (retry after %s)", err, apierr.RetryAfterOf(err))
	}
	if _, err := g.Admit(ctx, "other", true); err != nil {
		t.Fatalf("another workspace shares the budget: %v", err)
	}
	// A refunded run can be admitted again; the next UTC day starts afresh.
	a, _ := g.Admit(ctx, "refund", true)
	if _, err := g.Admit(ctx, "refund", true); err != nil {
		t.Fatal(err)
	}
	if err := a.Refund(ctx, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Admit(ctx, "refund", true); err != nil {
		t.Fatalf("after a refund: %v", err)
	}
	c.advance(time.Minute)
	if _, err := g.Admit(ctx, "ws", true); err != nil {
		t.Fatalf("a new day: %v", err)
	}
	var nilGate *Gate
	if a, err := nilGate.Admit(ctx, "ws", true); a != nil || err != nil {
		t.Fatal("a nil gate refused")
	}
}

func TestGateRateRefusalSpendsNoBudget(t *testing.T) {
	t.Parallel()
	l, c, _, _ := newLimiter(t)
	ctx := context.Background()
	g := NewGate(l, GateConfig{Events: Rule{Burst: 1, Every: time.Second}, DailyRuns: 2}, c.now)
	if _, err := g.Admit(ctx, "ws", true); err != nil {
		t.Fatal(err)
	}
	_, err := g.Admit(ctx, "ws", true)
	if apierr.CodeOf(err) != apierr.RateLimited || apierr.RetryAfterOf(err) != time.Second {
		t.Fatalf("second at once = %v", err)
	}
	c.advance(time.Second)
	if _, err := g.Admit(ctx, "ws", true); err != nil {
		t.Fatalf("the rate-refused request spent the budget: %v", err)
	}
}

// slowDB answers after a delay, as a loaded table or network does.
type slowDB struct {
	DB
	delay time.Duration
}

func (s slowDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	time.Sleep(s.delay)
	return s.DB.UpdateItem(ctx, in, opts...)
}

// A bucket far from empty never refuses, however many takers race on it with real clocks and an
// interval far below a request's latency (so that it is idle, full, between most takes).
func TestBucketRacingTakersOfAFullBucketAreNotRefused(t *testing.T) {
	t.Parallel()
	_, _, dynamo, table := newLimiter(t)
	db := slowDB{DB: dynamo, delay: 100 * time.Millisecond}
	r := PerMinuteBurst(6000, 2000)
	var refused atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := New(db, table, time.Now)
			for range 10 {
				d, err := l.Take(context.Background(), "busy", r)
				if err != nil || !d.OK {
					refused.Add(1)
				}
				time.Sleep(100 * time.Millisecond) // about the bucket's rate in all
			}
		}()
	}
	wg.Wait()
	if n := refused.Load(); n != 0 {
		t.Fatalf("%d of 200 takes refused by a bucket of 2,000", n)
	}
}

// With a rate and a budget, the day's count is kept on the rate's bucket item and both are taken
// in one write: a run the budget refuses takes no token, a request the rate refuses counts no run,
// a refund gives the unit back, and a new UTC day counts afresh. No other item is written.
func TestGateBudgetOnTheRateBucket(t *testing.T) {
	t.Parallel()
	l, c, db, table := newLimiter(t)
	ctx := context.Background()
	g := NewGate(l, GateConfig{Events: Rule{Burst: 4, Every: time.Second}, DailyRuns: 2}, c.now)
	for i, run := range []bool{true, true, false} {
		if _, err := g.Admit(ctx, "ws", run); err != nil {
			t.Fatalf("admit %d: %v", i, err)
		}
	}
	_, err := g.Admit(ctx, "ws", true)
	if apierr.CodeOf(err) != apierr.BudgetExhausted || apierr.RetryAfterOf(err) != time.Minute ||
		!strings.Contains(apierr.MessageOf(err), "resets at 2030-05-07T00:00:00Z") {
		t.Fatalf("third run = %v (retry after %s)", err, apierr.RetryAfterOf(err))
	}
	// The refused run took no token: the fourth of the burst is still there, and then none.
	if _, err := g.Admit(ctx, "ws", false); err != nil {
		t.Fatalf("the budget-refused run spent a token: %v", err)
	}
	if _, err := g.Admit(ctx, "ws", false); apierr.CodeOf(err) != apierr.RateLimited {
		t.Fatalf("fifth take at once = %v, want rate_limited", err)
	}
	item := func(key string) map[string]types.AttributeValue {
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: itemKey(key), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Item
	}
	if it := item("WS#ws#RUNS#2030-05-06"); it != nil {
		t.Fatalf("a counter item of its own: %v", it)
	}
	bucket := item("WS#ws#INBOUND")
	if attrStr(bucket, "day") != "2030-05-06" || attrNum(bucket, "tally") != 2 {
		t.Fatalf("bucket item %v", bucket)
	}
	// The takes without a run left the item's life at the count's: to the end of the next day.
	if got, want := attrNum(bucket, "ttl"), time.Date(2030, 5, 8, 0, 0, 0, 0, time.UTC).Unix(); got != want {
		t.Fatalf("ttl %d, want %d", got, want)
	}

	// A request the rate refuses counts no run.
	c.advance(time.Second)
	a, err := g.Admit(ctx, "other", true)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, _ = g.Admit(ctx, "other", false)
	}
	if _, err := g.Admit(ctx, "other", true); apierr.CodeOf(err) != apierr.RateLimited {
		t.Fatalf("run over the rate = %v", err)
	}
	if n := attrNum(item("WS#other#INBOUND"), "tally"); n != 1 {
		t.Fatalf("tally %d after a rate-refused run, want 1", n)
	}
	// A refund gives the unit back, never below zero.
	if err := a.Refund(ctx, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if err := a.Refund(ctx, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if n := attrNum(item("WS#other#INBOUND"), "tally"); n != 0 {
		t.Fatalf("tally %d after two refunds of one run, want 0", n)
	}
	// The next UTC day counts afresh; a refund of yesterday's run leaves today's count alone.
	c.advance(time.Minute)
	for range 2 {
		if _, err := g.Admit(ctx, "ws", true); err != nil {
			t.Fatalf("a new day: %v", err)
		}
	}
	yesterday := &Admission{lim: l, key: "WS#ws#INBOUND", day: "2030-05-06"}
	if err := yesterday.Refund(ctx, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Admit(ctx, "ws", true); apierr.CodeOf(err) != apierr.BudgetExhausted {
		t.Fatalf("third run of the new day after yesterday's refund = %v", err)
	}
}

// Racing admissions on one workspace from many instances (each with its own hints) start exactly
// the budget's runs, however their writes interleave.
func TestGateBudgetOnTheRateBucketRacing(t *testing.T) {
	t.Parallel()
	_, c, dynamo, table := newLimiter(t)
	const budget = 7
	var admitted, refused atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := NewGate(New(dynamo, table, c.now), GateConfig{Events: PerMinuteBurst(6000, 2000), DailyRuns: budget}, c.now)
			for range 4 {
				_, err := g.Admit(context.Background(), "ws", true)
				switch {
				case err == nil:
					admitted.Add(1)
				case apierr.CodeOf(err) == apierr.BudgetExhausted:
					refused.Add(1)
				default:
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if admitted.Load() != budget || refused.Load() != 32-budget {
		t.Fatalf("admitted %d, refused %d; want %d and %d", admitted.Load(), refused.Load(), budget, 32-budget)
	}
}

// A request dated just before midnight UTC whose write lands after another instance began the new
// day's count is counted on the new day: the count never goes back a day (which would start it
// afresh, again and again, past both days' budgets).
func TestGateBudgetDayNeverGoesBack(t *testing.T) {
	t.Parallel()
	_, _, db, table := newLimiter(t)
	ctx := context.Background()
	late := &clock{t: time.Date(2030, 5, 6, 23, 59, 59, 900e6, time.UTC)}
	early := &clock{t: time.Date(2030, 5, 7, 0, 0, 1, 0, time.UTC)}
	r := PerMinuteBurst(6000, 2000)
	a := NewGate(New(db, table, late.now), GateConfig{Events: r, DailyRuns: 2}, late.now)
	b := NewGate(New(db, table, early.now), GateConfig{Events: r, DailyRuns: 2}, early.now)
	admitted := func(g *Gate) int {
		n := 0
		for range 3 {
			_, err := g.Admit(ctx, "ws", true)
			switch {
			case err == nil:
				n++
			case apierr.CodeOf(err) != apierr.BudgetExhausted:
				t.Fatal(err)
			}
		}
		return n
	}
	if n := admitted(a); n != 2 {
		t.Fatalf("%d runs on 05-06, want 2", n)
	}
	if n := admitted(b); n != 2 {
		t.Fatalf("%d runs on 05-07, want 2", n)
	}
	// The late instance's requests now count on 05-07, whose budget is spent.
	for range 3 {
		if n := admitted(a) + admitted(b); n != 0 {
			t.Fatalf("%d more runs once both days' budgets are spent", n)
		}
	}
	_, err := a.Admit(ctx, "ws", true)
	if apierr.CodeOf(err) != apierr.BudgetExhausted || !strings.Contains(apierr.MessageOf(err), "resets at 2030-05-08T00:00:00Z") {
		t.Fatalf("late request = %v", err)
	}
}
