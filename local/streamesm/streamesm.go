// Package streamesm runs a DynamoDB Streams event source mapping locally: it reads every shard of
// one table's stream in order and hands batches of records to one function, as Lambda does.
package streamesm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

const (
	// DefaultBatchSize is Lambda's default batch size for DynamoDB streams.
	DefaultBatchSize = 100
	// MaxBatchSize is Lambda's largest batch size for DynamoDB streams.
	MaxBatchSize = 10000
	// MaxPartitions bounds Config.Partitions (a local bound: each lane is a goroutine).
	MaxPartitions = 100
	// DefaultPollInterval is how long a caught-up shard waits before it reads again: Lambda reads a
	// DynamoDB stream's shards 4 times a second.
	DefaultPollInterval = 250 * time.Millisecond
	// idleSlowdown is how much longer than PollInterval an idle shard waits, at most: its wait
	// doubles with each read that found nothing, and goes back to PollInterval once a read finds
	// records. A GetRecords of DynamoDB Local costs it about 30 ms of CPU, so an idle stack polling
	// 4 times a second spent a tenth of a core (the tests run dozens of stacks); the price is that
	// the first record after a quiet second waits up to PollInterval*idleSlowdown to be read.
	idleSlowdown = 4

	maxRetryAttempts  = 10000             // Lambda's largest MaximumRetryAttempts
	maxBatchingWindow = 300 * time.Second // Lambda's largest MaximumBatchingWindowInSeconds
	maxGetRecords     = 1000              // GetRecords' largest Limit
	maxPayloadBytes   = 6 << 20           // Lambda's synchronous payload limit: batches are cut to fit
	maxBackoff        = 5 * time.Second   // longest wait between retries of a batch or an API call
	describeEvery     = 20                // poll intervals between DescribeStream calls
)

// Invoker runs a function synchronously and returns its response payload. Any error is a
// function error. Shards, and the lanes of a shard (Partitions), invoke at once.
type Invoker interface {
	Invoke(ctx context.Context, function string, payload []byte) ([]byte, error)
}

// StreamsAPI is the part of *dynamodbstreams.Client the mapping uses.
type StreamsAPI interface {
	DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// Config describes one event source mapping.
type Config struct {
	// Function is the name the Invoker knows the function by.
	Function string
	// StreamARN is the stream read; it is also the records' eventSourceARN.
	StreamARN string
	// BatchSize is the most records per invocation, 1 to 10000; 0 means DefaultBatchSize.
	// Batches are also cut to fit Lambda's 6 MB payload limit.
	BatchSize int
	// BatchingWindow (MaximumBatchingWindowInSeconds) is how long records may wait for a full
	// batch, at most 300s; 0 invokes as soon as a read returns records.
	BatchingWindow time.Duration
	// StartingPosition is TRIM_HORIZON (every record in the stream; also when "") or LATEST
	// (only records written after the mapping starts). Shards that appear later are always
	// read from their start.
	StartingPosition string
	// ReportBatchItemFailures honours the function's batchItemFailures (FunctionResponseTypes:
	// [ReportBatchItemFailures]): the records before the lowest reported sequence number are
	// done, and the shard goes on from that record.
	ReportBatchItemFailures bool
	// BisectBatchOnFunctionError splits a failed batch in two and retries the halves, which
	// does not count as a retry.
	BisectBatchOnFunctionError bool
	// MaximumRetryAttempts is how often a failed batch is retried before its records are
	// discarded (to OnFailure): 0 to 10000, or -1 to retry for ever. Note that 0, the zero
	// value, means no retries.
	MaximumRetryAttempts int
	// Partitions is how many virtual partitions each shard's records are dealt to, 1 to
	// MaxPartitions; 0 means 1 (a shard's batches one at a time, as Lambda reads a shard with
	// ParallelizationFactor 1). DynamoDB Local has one stream shard per table, whereas on AWS a
	// busy table's partition keys end up in different partitions, hence different stream shards,
	// each with its own batch in flight. With P > 1 a shard's records go to P lanes by their
	// partition key (the stream's HASH key), a key's lane fixed at its first record (the lane with
	// the fewest keys); each lane runs one batch at a time, in order, with its own retries,
	// bisecting, partial batch failures and discards; the lanes hold at most P × BatchSize records.
	Partitions int
	// Filters are Lambda filter patterns (FilterCriteria.Filters[].Pattern), JSON. A record
	// is sent to the function when it matches any of them; the others count as processed.
	Filters []string
	// PollInterval is how long a shard that has no new records waits before it reads again; 0
	// means DefaultPollInterval. A shard that stays idle waits longer, up to 4 times as long
	// (idleSlowdown). Retries back off from it to at most 5s.
	PollInterval time.Duration
	// Region is the records' awsRegion; "" takes it from StreamARN.
	Region string
	// Logger receives the mapping's logs; nil discards.
	Logger *slog.Logger
	// OnFailure, when set, is called with each batch discarded after its last retry, before the
	// shard moves past it (a local stand-in for DestinationConfig.OnFailure).
	OnFailure func(ctx context.Context, d Discard)
}

// Discard is a batch the mapping gave up on: what Lambda names in the on-failure destination's
// record (DDBStreamBatchInfo), with the records themselves.
type Discard struct {
	Shard    string                       // the shard's id
	Records  []events.DynamoDBEventRecord // in order, at least one
	Invokes  int                          // invocations of the batch (approximateInvokeCount)
	Function string                       // Config.Function
}

// Run reads the stream and invokes the function with batches of its records until ctx is
// done, then returns nil. Only an invalid Config is an error. Each shard is read by its own
// goroutines, a parent shard to its end (every record handled) before its children. A shard's
// records go to Partitions lanes by their partition key, and one lane's batches run one at a
// time, so the records of one partition key always arrive in order (with the default of one
// partition, one shard's batches run one at a time). After a function error the batch is retried
// (bisected when BisectBatchOnFunctionError is set) until MaximumRetryAttempts, then discarded
// through OnFailure; the other lanes go on meanwhile. API errors are logged and retried with a
// bounded backoff. Positions are kept in memory only: a new Run starts again from
// StartingPosition.
func Run(ctx context.Context, c Config, api StreamsAPI, inv Invoker) error {
	m, err := newMapping(c, api, inv)
	if err != nil {
		return err
	}
	m.run(ctx)
	return nil
}

type mapping struct {
	c       Config
	api     StreamsAPI
	inv     Invoker
	log     *slog.Logger
	filters []*pattern
	// partitionKey is the stream's HASH key attribute (DescribeStream's KeySchema), which deals
	// records to lanes; only run uses it (readers take a copy).
	partitionKey string
}

// Validate reports what Run would refuse in the Config, so that a caller starting Run in a
// goroutine can fail early.
func (c Config) Validate() error {
	_, _, err := c.resolve()
	return err
}

func newMapping(c Config, api StreamsAPI, inv Invoker) (*mapping, error) {
	switch {
	case api == nil:
		return nil, errors.New("streamesm: nil DynamoDB Streams client")
	case inv == nil:
		return nil, errors.New("streamesm: nil invoker")
	}
	c, filters, err := c.resolve()
	if err != nil {
		return nil, err
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &mapping{c: c, api: api, inv: inv, log: log.With("function", c.Function, "stream", c.StreamARN), filters: filters}, nil
}

// resolve validates the Config and returns it with its defaults applied, and its filters.
func (c Config) resolve() (Config, []*pattern, error) {
	switch {
	case c.Function == "":
		return c, nil, errors.New("streamesm: no function")
	case c.StreamARN == "":
		return c, nil, fmt.Errorf("streamesm %s: no stream ARN", c.Function)
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		return c, nil, fmt.Errorf("streamesm %s: batch size %d is not between 1 and %d", c.Function, c.BatchSize, MaxBatchSize)
	}
	if c.BatchingWindow < 0 || c.BatchingWindow > maxBatchingWindow {
		return c, nil, fmt.Errorf("streamesm %s: batching window %s is not between 0 and %s", c.Function, c.BatchingWindow, maxBatchingWindow)
	}
	switch c.StartingPosition {
	case "":
		c.StartingPosition = string(types.ShardIteratorTypeTrimHorizon)
	case string(types.ShardIteratorTypeTrimHorizon), string(types.ShardIteratorTypeLatest):
	default:
		return c, nil, fmt.Errorf("streamesm %s: starting position %q, want TRIM_HORIZON or LATEST", c.Function, c.StartingPosition)
	}
	if c.MaximumRetryAttempts < -1 || c.MaximumRetryAttempts > maxRetryAttempts {
		return c, nil, fmt.Errorf("streamesm %s: maximum retry attempts %d is not between -1 and %d", c.Function, c.MaximumRetryAttempts, maxRetryAttempts)
	}
	if c.Partitions == 0 {
		c.Partitions = 1
	}
	if c.Partitions < 1 || c.Partitions > MaxPartitions {
		return c, nil, fmt.Errorf("streamesm %s: partitions %d is not between 1 and %d", c.Function, c.Partitions, MaxPartitions)
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.PollInterval < 0 {
		return c, nil, fmt.Errorf("streamesm %s: negative poll interval %s", c.Function, c.PollInterval)
	}
	if c.Region == "" {
		// arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>
		parts := strings.SplitN(c.StreamARN, ":", 6)
		if len(parts) != 6 || parts[0] != "arn" || parts[2] != "dynamodb" || parts[3] == "" {
			return c, nil, fmt.Errorf("streamesm %s: no region given and none in stream ARN %q", c.Function, c.StreamARN)
		}
		c.Region = parts[3]
	}
	filters, err := compileFilters(c.Filters)
	if err != nil {
		return c, nil, fmt.Errorf("streamesm %s: %w", c.Function, err)
	}
	return c, filters, nil
}

// run discovers the stream's shards and runs one reader per shard whose parent is done, until
// ctx is done.
func (m *mapping) run(ctx context.Context) {
	m.log.Info("stream esm polling", "batch_size", m.c.BatchSize, "starting_position", m.c.StartingPosition,
		"report_batch_item_failures", m.c.ReportBatchItemFailures, "bisect", m.c.BisectBatchOnFunctionError,
		"maximum_retry_attempts", m.c.MaximumRetryAttempts, "partitions", m.c.Partitions, "filters", len(m.filters))
	defer m.log.Info("stream esm stopped")
	var wg sync.WaitGroup
	defer wg.Wait()
	finished := make(chan string)
	known := map[string]bool{}   // every shard seen
	done := map[string]bool{}    // read to its end (or skipped by LATEST, or gone)
	running := map[string]bool{} // has a reader
	first, failures := true, 0
	for {
		wait := time.Duration(describeEvery) * m.c.PollInterval
		shards, hashKey, err := m.describe(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			failures++
			wait = m.backoff(failures)
			m.log.Warn("stream esm describe stream failed; retrying", "err", err, "backoff", wait)
		default:
			failures = 0
			if m.partitionKey == "" {
				m.partitionKey = hashKey // readers take it when they start
			}
			for _, sh := range shards {
				id := aws.ToString(sh.ShardId)
				if known[id] {
					continue
				}
				known[id] = true
				if first && m.c.StartingPosition == string(types.ShardIteratorTypeLatest) && closed(sh) {
					done[id] = true // LATEST: only records written from now on, so none of a closed shard
				}
			}
			for _, sh := range shards {
				id, parent := aws.ToString(sh.ShardId), aws.ToString(sh.ParentShardId)
				if done[id] || running[id] || (parent != "" && known[parent] && !done[parent]) {
					continue // a parent that was never listed has been trimmed: its children may go
				}
				start := types.ShardIteratorTypeTrimHorizon
				if first && m.c.StartingPosition == string(types.ShardIteratorTypeLatest) {
					start = types.ShardIteratorTypeLatest // open at start; later shards are read whole
				}
				running[id] = true
				r := newReader(m, id, start)
				wg.Add(1)
				go func() {
					defer wg.Done()
					if r.run(ctx) {
						select {
						case finished <- id:
						case <-ctx.Done():
						}
					}
				}()
			}
			first = false
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case id := <-finished:
			// A finished shard may have children to start now.
			timer.Stop()
			done[id] = true
			delete(running, id)
			m.log.Debug("stream esm shard done", "shard", id)
		case <-timer.C:
		}
	}
}

// describe lists every shard of the stream, following DescribeStream's pages, and names its
// partition (HASH) key attribute ("" if it names none).
func (m *mapping) describe(ctx context.Context) ([]types.Shard, string, error) {
	in := &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(m.c.StreamARN)}
	var shards []types.Shard
	hashKey := ""
	for page := 1; ; page++ {
		out, err := m.api.DescribeStream(ctx, in)
		if err != nil {
			return nil, "", fmt.Errorf("describe stream: %w", err)
		}
		if out.StreamDescription == nil {
			return nil, "", errors.New("describe stream: no stream description")
		}
		for _, k := range out.StreamDescription.KeySchema {
			if k.KeyType == types.KeyTypeHash {
				hashKey = aws.ToString(k.AttributeName)
			}
		}
		shards = append(shards, out.StreamDescription.Shards...)
		last := aws.ToString(out.StreamDescription.LastEvaluatedShardId)
		if last == "" {
			return shards, hashKey, nil
		}
		if page >= 10000 {
			return nil, "", errors.New("describe stream: more than 10000 pages of shards")
		}
		in.ExclusiveStartShardId = aws.String(last)
	}
}

// closed reports whether a shard takes no more records (it has an ending sequence number).
func closed(sh types.Shard) bool {
	return sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil
}

// backoff is the wait before retry n (1, 2, ...): the poll interval, doubling, at most 5s.
func (m *mapping) backoff(n int) time.Duration {
	d := m.c.PollInterval
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
