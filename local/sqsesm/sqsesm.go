// Package sqsesm runs an SQS event source mapping locally: it polls one queue and hands batches of
// messages to one function, deleting what the function handled, as Lambda does.
package sqsesm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/hookgate/hookgate/shared/awscfg"
)

const (
	// DefaultBatchSize is Lambda's default batch size for SQS.
	DefaultBatchSize = 10
	// DefaultWaitTime is the default long-poll wait.
	DefaultWaitTime = 2 * time.Second

	maxWaitTime    = 20 * time.Second // SQS's longest long poll
	minBackoff     = 100 * time.Millisecond
	maxBackoff     = 5 * time.Second
	deleteTimeout  = 10 * time.Second // bounds a batch's deletes, even after ctx is cancelled
	deleteAttempts = 3
)

// receiveAttemptTimeout bounds one request of a mapping's SQS client: far past any long poll, so
// that a receive is never given up on while the queue still holds it (see NewClient).
const receiveAttemptTimeout = 5 * time.Minute

// NewClient is the SQS client a mapping polls with: cfg's, but each attempt may wait
// receiveAttemptTimeout instead of awscfg.AttemptTimeout (10 s). A receive the client gives up on
// is not undone: the queue still answers it (fauxqs when it resumes after a pause, SQS when a
// response is lost on the way), and its messages then stay invisible for the whole visibility
// timeout (the delivery queue's 6 minutes) with no invocation and no error (issue 17's stall). So
// the poller waits for its receive as long as the queue holds it. A receive cut short by the
// mapping's own shutdown still loses its batch until the visibility timeout, as on AWS.
//
// Every receive attempt that fails on the wire is logged (log), also those the SDK then sends again
// by itself: a batch the queue answered to an attempt whose answer was lost stays invisible until
// its visibility timeout, and the log says when that happened. Request bodies are handed to the
// transport as copies (awscfg.OwnBodies): a body the SDK closed under net/http cut answers off.
func NewClient(cfg awscfg.Config, log *slog.Logger) *sqs.Client {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return sqs.NewFromConfig(cfg.AWS, func(o *sqs.Options) {
		if cfg.SQSEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.SQSEndpoint)
		}
		o.HTTPClient = receiveAttempts{next: awscfg.OwnBodies(awshttp.NewBuildableClient().WithTimeout(receiveAttemptTimeout).
			WithTransportOptions(func(t *http.Transport) { t.MaxIdleConnsPerHost = 64 })), log: log}
	})
}

// receiveAttempts logs the ReceiveMessage attempts that fail on the wire: no answer, a 5xx, or an
// answer cut off while read.
type receiveAttempts struct {
	next aws.HTTPClient
	log  *slog.Logger
}

func (c receiveAttempts) Do(r *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(r)
	if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".ReceiveMessage") {
		return resp, err
	}
	const lost = "sqs receive attempt failed; a batch the queue answered to it waits out its visibility timeout"
	switch {
	case err != nil:
		c.log.Warn(lost, "err", err)
	case resp.StatusCode >= 500:
		c.log.Warn(lost, "status", resp.StatusCode)
	default:
		resp.Body = &readLogged{ReadCloser: resp.Body, log: c.log, msg: lost, length: resp.ContentLength}
	}
	return resp, err
}

// readLogged logs an error other than EOF while an answer is read, with how much of it had come.
type readLogged struct {
	io.ReadCloser
	log    *slog.Logger
	msg    string
	length int64 // the answer's Content-Length, -1 if unknown
	read   int64
}

func (r *readLogged) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.read += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		r.log.Warn(r.msg, "err", err, "while", "reading the answer", "read_bytes", r.read, "content_length", r.length)
	}
	return n, err
}

// Invoker runs a function synchronously and returns its response payload. Any error is a
// function error.
type Invoker interface {
	// InvokeTraced invokes function on payload for a request that carried the X-Ray trace header
	// trace, the AWSTraceHeader of a message of the batch.
	InvokeTraced(ctx context.Context, function string, payload []byte, trace string) ([]byte, error)
	// Chain returns the place in its chain of requests of an invocation of function caused by a
	// message with trace header trace, and whether Lambda's recursive loop detection stops it.
	Chain(function, trace string) (count int, stopped bool)
}

// SQSAPI is the part of *sqs.Client the mapping uses.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

// Config describes one event source mapping.
type Config struct {
	// Function is the name the Invoker knows the function by.
	Function string
	// QueueURL is polled; QueueARN is the records' eventSourceARN.
	QueueURL, QueueARN string
	// BatchSize is the most messages per invocation, 1 to 10; 0 means DefaultBatchSize.
	BatchSize int
	// ReportBatchItemFailures honours the function's batchItemFailures (FunctionResponseTypes:
	// [ReportBatchItemFailures]).
	ReportBatchItemFailures bool
	// WaitTime is the long-poll wait, at most 20s; 0 means DefaultWaitTime. Empty receives are
	// paced to one per WaitTime, so a wait under a second (a short poll) does not spin.
	WaitTime time.Duration
	// Logger receives the mapping's logs; nil discards.
	Logger *slog.Logger
	// Region is the records' awsRegion; "" takes it from QueueARN.
	Region string
	// Pollers is how many batches may be received and handled at once, like Lambda's pollers
	// scaling out; 0 means 1.
	Pollers int
	// MaximumConcurrency is ScalingConfig.MaximumConcurrency: at most this many invocations at
	// once, whatever Pollers is (2 to 1000, as Lambda accepts); 0 means no cap. A poller waiting
	// for a slot receives nothing meanwhile, so messages stay in the queue, as on AWS.
	MaximumConcurrency int
}

// Run polls the queue and invokes the function with each batch until ctx is done, then returns
// nil. Only an invalid Config is an error. Each of Pollers handles one batch at a time (SQS keeps
// a FIFO group's later messages back while one is in flight, so a FIFO queue's order is kept), and
// no more than MaximumConcurrency invocations run at once. After a successful invocation every message is deleted except those the function
// reported as failed (with ReportBatchItemFailures); after a function error none is, so the
// messages come back after their visibility timeout and the queue's redrive policy eventually
// moves them to its dead-letter queue. SQS errors are logged and retried with a bounded backoff.
func Run(ctx context.Context, c Config, q SQSAPI, inv Invoker) error {
	m, err := newMapping(c, q, inv)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for range m.c.Pollers {
		wg.Go(func() { m.run(ctx) })
	}
	wg.Wait()
	return nil
}

type mapping struct {
	c           Config
	q           SQSAPI
	inv         Invoker
	log         *slog.Logger
	waitSeconds int32
	slots       chan struct{} // one per invocation allowed at once; nil: no cap
}

func newMapping(c Config, q SQSAPI, inv Invoker) (*mapping, error) {
	switch {
	case q == nil:
		return nil, errors.New("sqsesm: nil SQS client")
	case inv == nil:
		return nil, errors.New("sqsesm: nil invoker")
	case c.Function == "":
		return nil, errors.New("sqsesm: no function")
	case c.QueueURL == "":
		return nil, fmt.Errorf("sqsesm %s: no queue URL", c.Function)
	case c.QueueARN == "":
		return nil, fmt.Errorf("sqsesm %s: no queue ARN", c.Function)
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchSize < 1 || c.BatchSize > 10 {
		return nil, fmt.Errorf("sqsesm %s: batch size %d is not between 1 and 10", c.Function, c.BatchSize)
	}
	if c.WaitTime == 0 {
		c.WaitTime = DefaultWaitTime
	}
	if c.WaitTime < 0 || c.WaitTime > maxWaitTime {
		return nil, fmt.Errorf("sqsesm %s: wait time %s is not between 0 and %s", c.Function, c.WaitTime, maxWaitTime)
	}
	if c.Pollers == 0 {
		c.Pollers = 1
	}
	if c.Pollers < 0 {
		return nil, fmt.Errorf("sqsesm %s: %d pollers", c.Function, c.Pollers)
	}
	if c.MaximumConcurrency != 0 && (c.MaximumConcurrency < 2 || c.MaximumConcurrency > 1000) {
		return nil, fmt.Errorf("sqsesm %s: maximum concurrency %d is not between 2 and 1000", c.Function, c.MaximumConcurrency)
	}
	if c.Region == "" {
		// arn:aws:sqs:<region>:<account>:<queue>
		parts := strings.Split(c.QueueARN, ":")
		if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sqs" || parts[3] == "" {
			return nil, fmt.Errorf("sqsesm %s: no region given and none in queue ARN %q", c.Function, c.QueueARN)
		}
		c.Region = parts[3]
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &mapping{
		c:           c,
		q:           q,
		inv:         inv,
		log:         log.With("function", c.Function, "queue", c.QueueURL),
		waitSeconds: int32(c.WaitTime / time.Second),
	}
	if c.MaximumConcurrency > 0 {
		m.slots = make(chan struct{}, c.MaximumConcurrency)
	}
	return m, nil
}

// systemAttributes are the message system attributes Lambda puts in a record's attributes.
func systemAttributes() []types.MessageSystemAttributeName {
	return []types.MessageSystemAttributeName{
		types.MessageSystemAttributeNameApproximateReceiveCount,
		types.MessageSystemAttributeNameSentTimestamp,
		types.MessageSystemAttributeNameSenderId,
		types.MessageSystemAttributeNameApproximateFirstReceiveTimestamp,
		types.MessageSystemAttributeNameMessageGroupId,
		types.MessageSystemAttributeNameMessageDeduplicationId,
		types.MessageSystemAttributeNameSequenceNumber,
		types.MessageSystemAttributeNameAWSTraceHeader,
	}
}

func (m *mapping) receiveInput() *sqs.ReceiveMessageInput {
	sys := systemAttributes()
	legacy := make([]types.QueueAttributeName, len(sys))
	for i, a := range sys {
		legacy[i] = types.QueueAttributeName(a)
	}
	return &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(m.c.QueueURL),
		MaxNumberOfMessages:         int32(m.c.BatchSize),
		WaitTimeSeconds:             m.waitSeconds,
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: sys,
		// Emulators that predate MessageSystemAttributeNames only read AttributeNames; SQS
		// accepts both.
		AttributeNames: legacy, //nolint:staticcheck // deprecated, kept for emulators
	}
}

func (m *mapping) run(ctx context.Context) {
	m.log.Info("esm polling", "batch_size", m.c.BatchSize, "wait", m.c.WaitTime, "report_batch_item_failures", m.c.ReportBatchItemFailures,
		"maximum_concurrency", m.c.MaximumConcurrency)
	defer m.log.Info("esm stopped")
	in := m.receiveInput()
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		if !m.acquire(ctx) {
			return
		}
		pause := m.poll(ctx, in, &backoff)
		m.release()
		sleep(ctx, pause)
	}
}

// acquire takes an invocation slot, waiting while MaximumConcurrency invocations run; false when
// ctx ended first.
func (m *mapping) acquire(ctx context.Context) bool {
	if m.slots == nil {
		return true
	}
	select {
	case m.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (m *mapping) release() {
	if m.slots != nil {
		<-m.slots
	}
}

// poll receives one batch and handles it. It returns how long to pause before the next receive
// (after an error or an empty receive); the pause is taken without holding a slot.
func (m *mapping) poll(ctx context.Context, in *sqs.ReceiveMessageInput, backoff *time.Duration) time.Duration {
	began := time.Now()
	out, err := m.q.ReceiveMessage(ctx, in)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		*backoff = min(max(2**backoff, minBackoff), maxBackoff)
		m.log.Warn("esm receive failed; retrying", "err", err, "backoff", *backoff)
		return *backoff
	}
	*backoff = 0
	if len(out.Messages) == 0 {
		// A short WaitTime, or an emulator that does not long poll, returns at once: pace the
		// polls to one per WaitTime.
		return m.c.WaitTime - time.Since(began)
	}
	if ctx.Err() != nil {
		// Shutting down: leave the batch; it comes back after its visibility timeout.
		return 0
	}
	m.handle(ctx, out.Messages)
	return 0
}

// handle invokes the function with one batch and deletes what it handled. A message whose chain
// of requests Lambda's recursive loop detection stops is left out and not deleted, as Lambda
// does: it returns after its visibility timeout, and the queue's redrive policy eventually moves
// it to the dead-letter queue. The invocation continues the longest chain of the batch (Lambda
// gives an invocation one trace; taking the longest keeps local mode at least as strict).
func (m *mapping) handle(ctx context.Context, msgs []types.Message) {
	trace, longest := "", 0
	kept := msgs[:0:0]
	for _, msg := range msgs {
		t := msg.Attributes[string(types.MessageSystemAttributeNameAWSTraceHeader)]
		count, stopped := m.inv.Chain(m.c.Function, t)
		if stopped {
			m.log.Warn("esm recursive loop detected: Lambda stops this message's chain of requests; it returns after its visibility timeout and goes to the dead-letter queue",
				"message_id", aws.ToString(msg.MessageId), "chain", count)
			continue
		}
		if count > longest {
			trace, longest = t, count
		}
		kept = append(kept, msg)
	}
	if len(kept) == 0 {
		return
	}
	msgs = kept
	ids := make([]string, len(msgs))
	for i, msg := range msgs {
		ids[i] = aws.ToString(msg.MessageId)
	}
	log := m.log.With("message_ids", ids)
	payload, err := json.Marshal(m.event(msgs))
	if err != nil {
		log.Error("esm encode event", "err", err)
		return
	}
	out, err := m.inv.InvokeTraced(ctx, m.c.Function, payload, trace)
	if err != nil {
		log.Warn("esm function error; batch returns after its visibility timeout", "err", err)
		return
	}
	done := msgs
	if m.c.ReportBatchItemFailures {
		failed, err := batchItemFailures(out, ids)
		if err != nil {
			log.Warn("esm invalid batch response; whole batch returns after its visibility timeout", "err", err)
			return
		}
		if len(failed) > 0 {
			log.Info("esm partial batch failure", "failed", len(failed))
			done = make([]types.Message, 0, len(msgs)-len(failed))
			for _, msg := range msgs {
				if !failed[aws.ToString(msg.MessageId)] {
					done = append(done, msg)
				}
			}
		}
	}
	// The batch was handled: delete it even if ctx was cancelled meanwhile, within a bound.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
	defer cancel()
	m.delete(dctx, log, done)
}

// event builds the records Lambda would send for msgs.
func (m *mapping) event(msgs []types.Message) *events.SQSEvent {
	ev := &events.SQSEvent{Records: make([]events.SQSMessage, len(msgs))}
	for i, msg := range msgs {
		attrs := msg.Attributes
		if attrs == nil {
			attrs = map[string]string{}
		}
		mattrs := make(map[string]events.SQSMessageAttribute, len(msg.MessageAttributes))
		for name, v := range msg.MessageAttributes {
			a := events.SQSMessageAttribute{
				StringValue:      v.StringValue,
				BinaryValue:      v.BinaryValue,
				StringListValues: v.StringListValues,
				BinaryListValues: v.BinaryListValues,
				DataType:         aws.ToString(v.DataType),
			}
			if a.StringListValues == nil {
				a.StringListValues = []string{}
			}
			if a.BinaryListValues == nil {
				a.BinaryListValues = [][]byte{}
			}
			mattrs[name] = a
		}
		ev.Records[i] = events.SQSMessage{
			MessageId:              aws.ToString(msg.MessageId),
			ReceiptHandle:          aws.ToString(msg.ReceiptHandle),
			Body:                   aws.ToString(msg.Body),
			Md5OfBody:              aws.ToString(msg.MD5OfBody),
			Md5OfMessageAttributes: aws.ToString(msg.MD5OfMessageAttributes),
			Attributes:             attrs,
			MessageAttributes:      mattrs,
			EventSourceARN:         m.c.QueueARN,
			EventSource:            "aws:sqs",
			AWSRegion:              m.c.Region,
		}
	}
	return ev
}

// batchItemFailures reads a ReportBatchItemFailures response as Lambda does and returns the
// failed message ids. An empty or null response, or no or an empty batchItemFailures, is full
// success. Invalid JSON, an item without a non-empty string itemIdentifier, or an identifier
// that is not in the batch is an error: the whole batch failed.
func batchItemFailures(out []byte, ids []string) (map[string]bool, error) {
	out = []byte(strings.TrimSpace(string(out)))
	if len(out) == 0 || string(out) == "null" {
		return nil, nil
	}
	var resp struct {
		BatchItemFailures []map[string]json.RawMessage `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("decode batch response: %w", err)
	}
	inBatch := make(map[string]bool, len(ids))
	for _, id := range ids {
		inBatch[id] = true
	}
	failed := map[string]bool{}
	for i, item := range resp.BatchItemFailures {
		raw, ok := item["itemIdentifier"]
		if !ok {
			return nil, fmt.Errorf("batch item failure %d has no itemIdentifier", i)
		}
		var id string
		if err := json.Unmarshal(raw, &id); err != nil {
			return nil, fmt.Errorf("batch item failure %d: itemIdentifier %s is not a string", i, raw)
		}
		if id == "" {
			return nil, fmt.Errorf("batch item failure %d: empty itemIdentifier", i)
		}
		if !inBatch[id] {
			return nil, fmt.Errorf("batch item failure %d: %q is not in the batch", i, id)
		}
		failed[id] = true
	}
	return failed, nil
}

// delete deletes msgs, ten at a time, retrying failed calls a few times. What cannot be
// deleted is logged; it comes back after its visibility timeout (at-least-once, as on AWS).
func (m *mapping) delete(ctx context.Context, log *slog.Logger, msgs []types.Message) {
	for start := 0; start < len(msgs); start += 10 {
		chunk := msgs[start:min(start+10, len(msgs))]
		entries := make([]types.DeleteMessageBatchRequestEntry, len(chunk))
		for i, msg := range chunk {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: msg.ReceiptHandle}
		}
		in := &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(m.c.QueueURL), Entries: entries}
		var out *sqs.DeleteMessageBatchOutput
		var err error
		for attempt := 1; attempt <= deleteAttempts; attempt++ {
			if out, err = m.q.DeleteMessageBatch(ctx, in); err == nil || ctx.Err() != nil {
				break
			}
			if attempt < deleteAttempts {
				sleep(ctx, time.Duration(attempt)*minBackoff)
			}
		}
		if err != nil {
			log.Warn("esm delete failed; messages return after their visibility timeout", "err", err, "count", len(chunk))
			continue
		}
		for _, f := range out.Failed {
			i, _ := strconv.Atoi(aws.ToString(f.Id))
			if i < 0 || i >= len(chunk) {
				i = 0
			}
			log.Warn("esm delete failed for a message", "message_id", aws.ToString(chunk[i].MessageId),
				"code", aws.ToString(f.Code), "reason", aws.ToString(f.Message))
		}
	}
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
