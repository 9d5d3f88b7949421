package streamesm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/hookgate/hookgate/shared/streamrec"
)

// reader reads one shard and hands its records to the shard's lanes, which invoke the function.
//
// With Partitions P the shard has P lanes (virtual partitions), and each record goes to the lane
// of its partition key, fixed at the key's first record (laneFor). A lane keeps its records in
// stream order and runs one batch at a time, with all that a shard did before it had lanes: its own
// batch size, batching window and 6 MB cut, retries, bisecting, partial batch responses and
// discards. Lanes do not wait for each other: a lane retrying a batch holds back only the records
// of its own keys.
//
// The position. The shard is read once, in order, by whichever lane needs records (one lane at a
// time, see read), and every record read goes to its lane. Reading runs ahead of a slow or failing
// lane, so the other lanes go on, but the lanes hold at most P × BatchSize records between them
// (with P = 1, the batch the lane waits for, as before lanes); then reading waits until a lane is
// done with some. A lane stuck on a record for good (MaximumRetryAttempts -1) thus holds back the
// whole shard once that many records wait. Positions are kept in memory only (a new Run starts from
// StartingPosition): a new iterator (after one expires) starts after the last record read, and
// every record up to that one is done or waits in its lane. The shard is done, and its children may
// start, only once it is read to its end and every lane is empty.
type reader struct {
	m     *mapping
	id    string
	log   *slog.Logger
	lanes []*lane
	// partitionKey is the attribute that deals records to lanes ("": the stream names none).
	partitionKey string

	mu        sync.Mutex     // guards the lanes' pending and pendingSince, and the fields up to start
	ended     bool           // the shard is closed and read to its end
	reading   bool           // a lane is reading: the read position below is its own until it is done
	apiErrors int            // consecutive failed reads
	idle      int            // consecutive reads that found no records
	idleBy    *lane          // the lane whose read last found nothing new or failed,
	idleUntil time.Time      // and until when the other lanes do not read
	keyLane   map[string]int // each partition key's lane, by its JSON
	laneKeys  []int          // how many keys each lane has

	start    types.ShardIteratorType // where a reader without position begins
	iterator *string                 // nil: get one (from lastRead, else from start)
	lastRead string                  // sequence number of the last record read
}

// lane is one of a shard's Partitions lanes: the records of the partition keys dealt to it, in
// stream order, and the state of its next batch.
type lane struct {
	r    *reader
	log  *slog.Logger
	wake chan struct{} // another lane read records for this one

	pending      []item    // read, matching the filters, not yet done (r.mu)
	pendingSince time.Time // when pending last became non-empty (r.mu)
	segments     []int     // sizes of the next batches, after a bisect
	attempts     int       // failed invocations of the batch at pending[0]
}

// item is a record as the function gets it, and its JSON, encoded once.
type item struct {
	rec  events.DynamoDBEventRecord
	data []byte
}

func (it item) seq() string { return it.rec.Change.SequenceNumber }

func newReader(m *mapping, id string, start types.ShardIteratorType) *reader {
	r := &reader{m: m, id: id, start: start, log: m.log.With("shard", id), partitionKey: m.partitionKey,
		keyLane: map[string]int{}, laneKeys: make([]int, m.c.Partitions)}
	if m.c.Partitions > 1 && r.partitionKey == "" {
		r.log.Warn("stream esm: the stream names no partition key; the shard's records go to one lane", "partitions", m.c.Partitions)
	}
	for i := range m.c.Partitions {
		l := &lane{r: r, log: r.log, wake: make(chan struct{}, 1)}
		if m.c.Partitions > 1 {
			l.log = r.log.With("lane", i)
		}
		r.lanes = append(r.lanes, l)
	}
	return r
}

// laneFor is the lane of a record: that of its partition key (the stream's HASH key attribute),
// given at the key's first record to the lane with the fewest keys (the first of those). So each
// key's records are in one lane, in order, as on AWS once a table's partitions have split apart;
// the keys of a lane wait for each other, as the keys of a partition do. A record without the
// partition key (the stream named none) goes to the first lane. Called with r.mu held.
func (r *reader) laneFor(rec events.DynamoDBEventRecord) *lane {
	if len(r.lanes) == 1 {
		return r.lanes[0]
	}
	v, ok := rec.Change.Keys[r.partitionKey]
	if !ok {
		return r.lanes[0]
	}
	key, _ := json.Marshal(v) // its type and value
	l, ok := r.keyLane[string(key)]
	if !ok {
		for i, n := range r.laneKeys {
			if n < r.laneKeys[l] {
				l = i
			}
		}
		r.keyLane[string(key)] = l
		r.laneKeys[l]++
	}
	return r.lanes[l]
}

// run reads the shard until it is read to its end and every lane has handled its records (true)
// or ctx is done (false). Each lane runs in a goroutine of its own.
func (r *reader) run(ctx context.Context) bool {
	var wg sync.WaitGroup
	var stopped atomic.Bool
	for _, l := range r.lanes {
		wg.Go(func() {
			if !l.run(ctx) {
				stopped.Store(true)
			}
		})
	}
	wg.Wait()
	return !stopped.Load()
}

// run reads the shard and invokes the function with the lane's records, one batch at a time,
// until the shard is read to its end and every record of the lane is handled (true) or ctx is
// done (false). With one lane, it is how a shard was read before lanes.
func (l *lane) run(ctx context.Context) bool {
	c := l.r.m.c
	for ctx.Err() == nil {
		if size, ended := l.state(); size < c.BatchSize && !ended {
			n, wait, err := l.r.read(ctx, l)
			if err != nil {
				if ctx.Err() != nil {
					return false
				}
				l.log.Warn("stream esm read failed; retrying", "err", err, "backoff", wait)
				sleep(ctx, wait)
				continue
			}
			if size, ended := l.state(); size == 0 && !ended {
				if n == 0 {
					l.await(ctx, idleWait(c.PollInterval, l.r.idleReads())) // caught up (or another lane reads)
				}
				continue // else every record read was filtered out or another lane's: read on
			}
			if wait := l.batchWait(); wait > 0 {
				if n == 0 {
					l.await(ctx, min(wait, c.PollInterval))
				}
				continue
			}
		}
		if size, _ := l.state(); size == 0 {
			return true // ended, and everything handled
		}
		sleep(ctx, l.invoke(ctx))
	}
	return false
}

// await waits d, until ctx is done, or until another lane read records for this one.
func (l *lane) await(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-l.wake:
	}
}

// state is how many records the lane holds and whether the shard is read to its end.
func (l *lane) state() (int, bool) {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	return len(l.pending), l.r.ended
}

// idleReads is how many reads of the shard in a row found no records.
func (r *reader) idleReads() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.idle
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
func (l *lane) batchWait() time.Duration {
	c := l.r.m.c
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	if len(l.pending) >= c.BatchSize || l.r.ended || l.attempts > 0 || len(l.segments) > 0 || c.BatchingWindow == 0 {
		return 0
	}
	return max(0, c.BatchingWindow-time.Since(l.pendingSince))
}

// read reads the next records of the shard into their lanes for lane l. It returns how many
// records it read, including those the filters dropped, and after an error the wait before the
// next try. It reads nothing (0) once the shard ended, while another lane reads, while the lanes
// hold Partitions × BatchSize records, and, for the other lanes, within the idle wait of a read
// that found nothing new (or the backoff of one that failed), so that idle lanes do not poll the
// shard in turn. None of these stops a shard's only lane, which reads when it holds fewer than
// BatchSize records, as a shard did before lanes.
func (r *reader) read(ctx context.Context, l *lane) (int, time.Duration, error) {
	c := r.m.c
	r.mu.Lock()
	room := len(r.lanes) * c.BatchSize
	for _, o := range r.lanes {
		room -= len(o.pending)
	}
	if r.ended || r.reading || room <= 0 || (l != r.idleBy && time.Now().Before(r.idleUntil)) {
		r.mu.Unlock()
		return 0, 0, nil
	}
	r.reading = true
	r.mu.Unlock()

	items, n, ended, err := r.fetch(ctx, min(room, maxGetRecords))

	r.mu.Lock()
	defer r.mu.Unlock()
	r.reading = false
	now := time.Now()
	for _, it := range items {
		dst := r.laneFor(it.rec)
		if len(dst.pending) == 0 {
			dst.pendingSince = now
		}
		dst.pending = append(dst.pending, it)
		if dst != l {
			select {
			case dst.wake <- struct{}{}:
			default:
			}
		}
	}
	if ended {
		r.ended = true
		r.log.Debug("stream esm read the shard to its end")
	}
	var wait time.Duration
	switch {
	case err != nil:
		r.apiErrors++
		wait = r.m.backoff(r.apiErrors)
		r.idleBy, r.idleUntil = l, now.Add(wait)
	case n == 0:
		r.apiErrors = 0
		r.idle++
		r.idleBy, r.idleUntil = l, now.Add(idleWait(c.PollInterval, r.idle))
	default:
		r.apiErrors, r.idle = 0, 0
	}
	return n, wait, err
}

// fetch gets at most limit next records of the shard. It returns those matching the filters, how
// many it read (the dropped ones included), and whether the shard is read to its end. Shard-level
// conditions (an expired iterator, trimmed records, a shard that no longer exists) are handled
// here; the errors it returns are worth a retry after a backoff. Only the lane reading (r.reading)
// calls it.
func (r *reader) fetch(ctx context.Context, limit int) (items []item, n int, ended bool, err error) {
	c := r.m.c
	if r.iterator == nil {
		in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(c.StreamARN), ShardId: aws.String(r.id), ShardIteratorType: r.start}
		if r.lastRead != "" {
			in.ShardIteratorType, in.SequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(r.lastRead)
		}
		out, err := r.m.api.GetShardIterator(ctx, in)
		switch {
		case err != nil:
			if handled, gone := r.shardCondition(err); handled {
				return nil, 0, gone, nil
			}
			return nil, 0, false, fmt.Errorf("get shard iterator (%s): %w", in.ShardIteratorType, err)
		case out.ShardIterator == nil:
			return nil, 0, true, nil // a closed shard with nothing after the position
		}
		r.iterator = out.ShardIterator
	}
	out, err := r.m.api.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: r.iterator, Limit: aws.Int32(int32(limit))})
	if err != nil {
		if handled, gone := r.shardCondition(err); handled {
			return nil, 0, gone, nil
		}
		return nil, 0, false, fmt.Errorf("get records: %w", err)
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
		items = append(items, it)
	}
	r.iterator = out.NextShardIterator
	return items, len(out.Records), r.iterator == nil, nil
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
// call, and reports whether err was one, and whether the shard is gone (nothing more to read).
func (r *reader) shardCondition(err error) (handled, gone bool) {
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
		r.log.Warn("stream esm shard no longer exists; its unread records are lost (the lanes still handle those read)", "err", err)
		r.iterator = nil
		return true, true
	default:
		return false, false
	}
	return true, false
}

// invoke runs one batch from the head of the lane and returns how long to wait before the next
// attempt (zero unless the batch is to be retried).
func (l *lane) invoke(ctx context.Context) time.Duration {
	c := l.r.m.c
	l.r.mu.Lock()
	batch := l.pending[:min(len(l.pending), c.BatchSize)] // reads append after it, never in it
	l.r.mu.Unlock()
	if len(l.segments) > 0 {
		batch = batch[:min(len(batch), l.segments[0])]
	}
	payload, n := payload(batch)
	batch = batch[:n]
	log := l.log.With("first_sequence_number", batch[0].seq(), "records", n)
	log.Debug("stream esm invoking", "bytes", len(payload))
	out, err := l.r.m.inv.Invoke(ctx, c.Function, payload)
	if ctx.Err() != nil {
		return 0 // shutting down: the batch's outcome no longer matters
	}
	if err != nil {
		log.Warn("stream esm function error", "err", err, "attempt", l.attempts+1)
		return l.failed(ctx, batch, true, err)
	}
	if !c.ReportBatchItemFailures {
		l.advance(n)
		return 0
	}
	first, err := batchItemFailure(out, batch)
	switch {
	case err != nil:
		log.Warn("stream esm invalid batch response; the whole batch failed", "err", err, "attempt", l.attempts+1)
		return l.failed(ctx, batch, true, err)
	case first < 0:
		l.advance(n)
		return 0
	}
	seq := batch[first].seq()
	log.Info("stream esm partial batch failure; going on from the failed record", "failed_sequence_number", seq, "done", first)
	if first > 0 {
		l.advance(first) // the records before the lowest failure are done
		if c.BisectBatchOnFunctionError && len(l.segments) == 0 {
			l.segments = []int{n - first} // retry only the remaining records
		}
	}
	return l.failed(ctx, batch[first:], false, fmt.Errorf("the function reported record %s as failed", seq))
}

// payload is the function's event (events.DynamoDBEvent's JSON) for the records, or for the
// first of them when they are over Lambda's payload limit (never fewer than one). It returns the
// number of records it holds.
func payload(records []item) ([]byte, int) {
	const head, tail = `{"Records":[`, `]}`
	n := len(records)
	size := len(head) + len(tail)
	for i, it := range records {
		if i > 0 && size+1+len(it.data) > maxPayloadBytes {
			n = i
			break
		}
		size += len(it.data) + min(i, 1)
	}
	buf := make([]byte, 0, size)
	buf = append(buf, head...)
	for i, it := range records[:n] {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, it.data...)
	}
	return append(buf, tail...), n
}

// failed handles a failed batch: it bisects the batch when allowed and enabled, else counts a
// retry, and after the last retry discards the batch. It returns the wait before the retry.
func (l *lane) failed(ctx context.Context, batch []item, bisectable bool, cause error) time.Duration {
	c := l.r.m.c
	if bisectable && c.BisectBatchOnFunctionError && len(batch) > 1 {
		half := (len(batch) + 1) / 2
		rest := []int(nil)
		if len(l.segments) > 0 {
			rest = l.segments[1:]
		}
		l.segments = append([]int{half, len(batch) - half}, rest...)
		l.log.Info("stream esm bisecting the failed batch", "records", len(batch), "halves", l.segments[:2])
		return 0 // splitting does not count as a retry
	}
	l.attempts++
	if c.MaximumRetryAttempts >= 0 && l.attempts > c.MaximumRetryAttempts {
		l.discard(ctx, batch, cause)
		return 0
	}
	return l.r.m.backoff(l.attempts)
}

// discard drops a batch that used up its retries: OnFailure gets it, then the lane moves on.
func (l *lane) discard(ctx context.Context, batch []item, cause error) {
	l.log.Warn("stream esm discards records after their last retry",
		"records", len(batch), "first_sequence_number", batch[0].seq(),
		"last_sequence_number", batch[len(batch)-1].seq(), "attempts", l.attempts, "err", cause)
	if l.r.m.c.OnFailure != nil {
		records := make([]events.DynamoDBEventRecord, len(batch))
		for i, it := range batch {
			records[i] = it.rec
		}
		l.r.m.c.OnFailure(ctx, Discard{Shard: l.r.id, Records: records, Invokes: l.attempts, Function: l.r.m.c.Function})
	}
	l.advance(len(batch))
}

// advance marks the first k pending records of the lane done.
func (l *lane) advance(k int) {
	l.r.mu.Lock()
	l.pending = l.pending[k:]
	if len(l.pending) == 0 {
		l.pending = nil // let the batch's records go
	}
	l.r.mu.Unlock()
	l.attempts = 0
	if len(l.segments) > 0 {
		if l.segments[0] -= k; l.segments[0] <= 0 {
			l.segments = l.segments[1:]
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
