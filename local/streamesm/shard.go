package streamesm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/hookgate/hookgate/shared/streamrec"
)

// reader reads one shard and invokes the function with its records, one batch at a time.
type reader struct {
	m   *mapping
	id  string
	log *slog.Logger

	start    types.ShardIteratorType // where a reader without position begins
	iterator *string                 // nil: get one (from lastRead, else from start)
	lastRead string                  // sequence number of the last record read
	ended    bool                    // the shard is closed and read to its end

	pending      []item    // read, matching the filters, not yet done
	pendingSince time.Time // when pending last became non-empty
	segments     []int     // sizes of the next batches, after a bisect
	attempts     int       // failed invocations of the batch at pending[0]
	apiErrors    int       // consecutive failed API calls
	idle         int       // consecutive reads that found no records
}

// item is a record as the function gets it, and its JSON, encoded once.
type item struct {
	rec  events.DynamoDBEventRecord
	data []byte
}

func (it item) seq() string { return it.rec.Change.SequenceNumber }

func newReader(m *mapping, id string, start types.ShardIteratorType) *reader {
	return &reader{m: m, id: id, start: start, log: m.log.With("shard", id)}
}

// run reads the shard until it is read to its end and every record is handled (true) or ctx is
// done (false).
func (r *reader) run(ctx context.Context) bool {
	c := r.m.c
	for ctx.Err() == nil {
		if len(r.pending) < c.BatchSize && !r.ended {
			n, err := r.read(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return false
				}
				r.apiErrors++
				wait := r.m.backoff(r.apiErrors)
				r.log.Warn("stream esm read failed; retrying", "err", err, "backoff", wait)
				sleep(ctx, wait)
				continue
			}
			r.apiErrors = 0
			if n > 0 {
				r.idle = 0
			} else {
				r.idle++
			}
			if len(r.pending) == 0 && !r.ended {
				if n == 0 {
					sleep(ctx, idleWait(c.PollInterval, r.idle)) // caught up
				}
				continue // else every record read was filtered out: read on
			}
			if wait := r.batchWait(); wait > 0 {
				if n == 0 {
					sleep(ctx, min(wait, c.PollInterval))
				}
				continue
			}
		}
		if len(r.pending) == 0 {
			return true // ended, and everything handled
		}
		sleep(ctx, r.invoke(ctx))
	}
	return false
}

// idleWait is how long a caught-up shard waits after its idle-th read in a row found nothing:
// poll, doubling from the second such read on, at most poll*idleSlowdown.
func idleWait(poll time.Duration, idle int) time.Duration {
	d := poll
	for i := 1; i < idle && d < poll*idleSlowdown; i++ {
		d *= 2
	}
	return min(d, poll*idleSlowdown)
}

// batchWait is how much longer the pending records may wait for a fuller batch: zero when the
// batch is full, the shard ended, the batch is a retry, or the batching window is over.
func (r *reader) batchWait() time.Duration {
	c := r.m.c
	if len(r.pending) >= c.BatchSize || r.ended || r.attempts > 0 || len(r.segments) > 0 || c.BatchingWindow == 0 {
		return 0
	}
	return max(0, c.BatchingWindow-time.Since(r.pendingSince))
}

// read gets the next records of the shard into pending and returns how many records it read,
// including those the filters dropped. Shard-level conditions (an expired iterator, trimmed
// records, a shard that no longer exists) are handled here; the errors it returns are worth a
// retry after a backoff.
func (r *reader) read(ctx context.Context) (int, error) {
	c := r.m.c
	if r.iterator == nil {
		in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(c.StreamARN), ShardId: aws.String(r.id), ShardIteratorType: r.start}
		if r.lastRead != "" {
			in.ShardIteratorType, in.SequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(r.lastRead)
		}
		out, err := r.m.api.GetShardIterator(ctx, in)
		switch {
		case err != nil && r.shardCondition(err):
			return 0, nil
		case err != nil:
			return 0, fmt.Errorf("get shard iterator (%s): %w", in.ShardIteratorType, err)
		case out.ShardIterator == nil:
			r.ended = true // a closed shard with nothing after the position
			return 0, nil
		}
		r.iterator = out.ShardIterator
	}
	limit := min(c.BatchSize-len(r.pending), maxGetRecords)
	out, err := r.m.api.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: r.iterator, Limit: aws.Int32(int32(limit))})
	if err != nil {
		if r.shardCondition(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("get records: %w", err)
	}
	for _, rec := range out.Records {
		if rec.Dynamodb != nil && aws.ToString(rec.Dynamodb.SequenceNumber) != "" {
			r.lastRead = aws.ToString(rec.Dynamodb.SequenceNumber)
		}
		it, err := newItem(rec, c.StreamARN, c.Region)
		if err != nil {
			r.log.Error("stream esm skips a record it cannot convert", "event_id", aws.ToString(rec.EventID), "err", err)
			continue
		}
		if !r.m.matches(it) {
			continue // filtered out: done without an invocation, as Lambda does
		}
		if len(r.pending) == 0 {
			r.pendingSince = time.Now()
		}
		r.pending = append(r.pending, it)
	}
	r.iterator = out.NextShardIterator
	if r.iterator == nil {
		r.ended = true
		r.log.Debug("stream esm read the shard to its end", "pending", len(r.pending))
	}
	return len(out.Records), nil
}

// newItem converts a stream record and encodes it.
func newItem(rec types.Record, streamARN, region string) (item, error) {
	ev, err := streamrec.Record(rec, streamARN, region)
	if err != nil {
		return item{}, err
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return item{}, fmt.Errorf("record %s: encode: %w", ev.Change.SequenceNumber, err)
	}
	return item{rec: ev, data: data}, nil
}

// shardCondition handles the errors that are about the shard or the position rather than the
// call, and reports whether err was one.
func (r *reader) shardCondition(err error) bool {
	var expired *types.ExpiredIteratorException
	var trimmed *types.TrimmedDataAccessException
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &expired):
		// Iterators live 15 minutes; get a new one from the last record read.
		r.log.Debug("stream esm iterator expired; getting a new one", "after", r.lastRead)
		r.iterator = nil
	case errors.As(err, &trimmed):
		r.log.Warn("stream esm position is past the stream's retention; records were lost, reading from the oldest one left",
			"after", r.lastRead, "err", err)
		r.iterator, r.lastRead, r.start = nil, "", types.ShardIteratorTypeTrimHorizon
	case errors.As(err, &notFound):
		r.log.Warn("stream esm shard no longer exists; its unread records are lost", "pending", len(r.pending), "err", err)
		r.iterator, r.ended = nil, true
	default:
		return false
	}
	return true
}

// invoke runs one batch from the head of pending and returns how long to wait before the next
// attempt (zero unless the batch is to be retried).
func (r *reader) invoke(ctx context.Context) time.Duration {
	c := r.m.c
	n := min(len(r.pending), c.BatchSize)
	if len(r.segments) > 0 {
		n = min(n, r.segments[0])
	}
	payload, n := r.payload(n)
	batch := r.pending[:n]
	log := r.log.With("first_sequence_number", batch[0].seq(), "records", n)
	log.Debug("stream esm invoking", "bytes", len(payload))
	out, err := r.m.inv.Invoke(ctx, c.Function, payload)
	if ctx.Err() != nil {
		return 0 // shutting down: the batch's outcome no longer matters
	}
	if err != nil {
		log.Warn("stream esm function error", "err", err, "attempt", r.attempts+1)
		return r.failed(ctx, batch, true, err)
	}
	if !c.ReportBatchItemFailures {
		r.advance(n)
		return 0
	}
	first, err := batchItemFailure(out, batch)
	switch {
	case err != nil:
		log.Warn("stream esm invalid batch response; the whole batch failed", "err", err, "attempt", r.attempts+1)
		return r.failed(ctx, batch, true, err)
	case first < 0:
		r.advance(n)
		return 0
	}
	seq := batch[first].seq()
	log.Info("stream esm partial batch failure; going on from the failed record", "failed_sequence_number", seq, "done", first)
	if first > 0 {
		r.advance(first) // the records before the lowest failure are done
		if c.BisectBatchOnFunctionError && len(r.segments) == 0 {
			r.segments = []int{n - first} // retry only the remaining records
		}
	}
	return r.failed(ctx, r.pending[:n-first], false, fmt.Errorf("the function reported record %s as failed", seq))
}

// payload is the function's event (events.DynamoDBEvent's JSON) for the first n pending
// records, or for fewer when they are over Lambda's payload limit (never fewer than one). It
// returns the number of records it holds.
func (r *reader) payload(n int) ([]byte, int) {
	const head, tail = `{"Records":[`, `]}`
	size := len(head) + len(tail)
	for i, it := range r.pending[:n] {
		if i > 0 && size+1+len(it.data) > maxPayloadBytes {
			n = i
			break
		}
		size += len(it.data) + min(i, 1)
	}
	buf := make([]byte, 0, size)
	buf = append(buf, head...)
	for i, it := range r.pending[:n] {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, it.data...)
	}
	return append(buf, tail...), n
}

// failed handles a failed batch: it bisects the batch when allowed and enabled, else counts a
// retry, and after the last retry discards the batch. It returns the wait before the retry.
func (r *reader) failed(ctx context.Context, batch []item, bisectable bool, cause error) time.Duration {
	c := r.m.c
	if bisectable && c.BisectBatchOnFunctionError && len(batch) > 1 {
		half := (len(batch) + 1) / 2
		rest := []int(nil)
		if len(r.segments) > 0 {
			rest = r.segments[1:]
		}
		r.segments = append([]int{half, len(batch) - half}, rest...)
		r.log.Info("stream esm bisecting the failed batch", "records", len(batch), "halves", r.segments[:2])
		return 0 // splitting does not count as a retry
	}
	r.attempts++
	if c.MaximumRetryAttempts >= 0 && r.attempts > c.MaximumRetryAttempts {
		r.discard(ctx, batch, cause)
		return 0
	}
	return r.m.backoff(r.attempts)
}

// discard drops a batch that used up its retries: OnFailure gets it, then the shard moves on.
func (r *reader) discard(ctx context.Context, batch []item, cause error) {
	r.log.Warn("stream esm discards records after their last retry",
		"records", len(batch), "first_sequence_number", batch[0].seq(),
		"last_sequence_number", batch[len(batch)-1].seq(), "attempts", r.attempts, "err", cause)
	if r.m.c.OnFailure != nil {
		records := make([]events.DynamoDBEventRecord, len(batch))
		for i, it := range batch {
			records[i] = it.rec
		}
		r.m.c.OnFailure(ctx, Discard{Shard: r.id, Records: records, Invokes: r.attempts, Function: r.m.c.Function})
	}
	r.advance(len(batch))
}

// advance marks the first k pending records done.
func (r *reader) advance(k int) {
	r.pending = r.pending[k:]
	if len(r.pending) == 0 {
		r.pending = nil // let the batch's records go
	}
	r.attempts = 0
	if len(r.segments) > 0 {
		if r.segments[0] -= k; r.segments[0] <= 0 {
			r.segments = r.segments[1:]
		}
	}
}

// batchItemFailure reads a ReportBatchItemFailures response as Lambda does and returns the index
// in batch of the failed record with the lowest sequence number, or -1 when the whole batch
// succeeded: an empty or null response, or no or an empty batchItemFailures. Invalid JSON, an
// item without a non-empty string itemIdentifier, or an identifier that is not a sequence number
// of the batch is an error: the whole batch failed.
func batchItemFailure(out []byte, batch []item) (int, error) {
	out = []byte(strings.TrimSpace(string(out)))
	if len(out) == 0 || string(out) == "null" {
		return -1, nil
	}
	var resp struct {
		BatchItemFailures []map[string]json.RawMessage `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return 0, fmt.Errorf("decode batch response: %w", err)
	}
	index := make(map[string]int, len(batch))
	for i, it := range batch {
		index[it.seq()] = i
	}
	first := -1
	for i, item := range resp.BatchItemFailures {
		raw, ok := item["itemIdentifier"]
		if !ok {
			return 0, fmt.Errorf("batch item failure %d has no itemIdentifier", i)
		}
		if string(raw) == "null" {
			return 0, fmt.Errorf("batch item failure %d: null itemIdentifier", i)
		}
		var id string
		if err := json.Unmarshal(raw, &id); err != nil {
			return 0, fmt.Errorf("batch item failure %d: itemIdentifier %s is not a string", i, raw)
		}
		if id == "" {
			return 0, fmt.Errorf("batch item failure %d: empty itemIdentifier", i)
		}
		at, ok := index[id]
		if !ok {
			return 0, fmt.Errorf("batch item failure %d: %q is not a sequence number of the batch", i, id)
		}
		if first < 0 || at < first {
			first = at
		}
	}
	return first, nil
}
