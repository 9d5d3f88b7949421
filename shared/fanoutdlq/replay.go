package fanoutdlq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/streamrec"
)

// Queue is the part of the SQS client the replay uses on FanoutDLQ.
type Queue interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	queue.VisibilityAPI
}

// Stream is the part of the DynamoDB Streams client the replay uses.
type Stream interface {
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// Fanout is the fan-out's handler (shared/fanout), idempotent: a delivery's id derives from its
// event and subscription, so records fanned out before are found, not doubled.
type Fanout interface {
	Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error)
}

// EventLog finds the events a workspace appended in a time window (store.EventsBetween).
type EventLog interface {
	EventsBetween(ctx context.Context, ws string, from, to time.Time, limit int) ([]store.Event, bool, error)
}

// Options says what one replay call does.
type Options struct {
	// MaxMessages is the most messages it takes: 0 means DefaultMessages, at most MaxMessages.
	MaxMessages int
	// Workspaces are the event logs a batch the stream no longer holds is rebuilt from (the table
	// has no index of events by time across workspaces); without them such a batch stays queued.
	Workspaces []string
}

// Limits of one replay call, so that it fits the management function's 15 s.
const (
	DefaultMessages = 10               // messages replayed per call unless asked for fewer
	MaxMessages     = 50               // the most one call takes
	visibility      = 60               // seconds a received message stays hidden while it is replayed
	reserve         = 5 * time.Second  // no new message is started this close to the deadline
	maxReads        = 20               // GetRecords calls per message
	readLimit       = 1000             // GetRecords' largest page
	callTimeout     = 10 * time.Second // a call without a deadline stops taking messages after this
	MaxWorkspaces   = 20               // workspaces one call may rebuild from
	maxRebuilt      = 1000             // events one message may rebuild, over its workspaces
	// A record's approximate arrival is its append time cut to the second, by another clock than
	// the one that timed the event: the window is widened by this on each side.
	arrivalSlack = 2 * time.Second
)

// Result is what one replay call did. Messages it could not replay stay in the queue (Replay says
// when the expired and unreadable ones are visible again).
type Result struct {
	Replayed   int `json:"replayed"`   // messages whose records were fanned out again, then deleted
	Records    int `json:"records"`    // stream records read back for them
	Failed     int `json:"failed"`     // the fan-out failed again: the message returns after 60 s
	Rebuilt    int `json:"rebuilt"`    // of those replayed: rebuilt from the named workspaces' event logs
	Expired    int `json:"expired"`    // the stream no longer holds the records (24 h) and no workspace was named
	Unreadable int `json:"unreadable"` // not a pointer into this table's stream
	Remaining  int `json:"remaining"`  // messages left in FanoutDLQ (approximate), in flight included; uncounted: those the call left, at least 1 unless it found the queue empty
}

// Replayer replays FanoutDLQ's messages from the table's stream.
type Replayer struct {
	queue     Queue
	queueURL  string
	stream    Stream
	streamARN string
	fanout    Fanout
	events    EventLog
	log       *slog.Logger
}

// WithEventLog lets the replay rebuild a batch the stream no longer holds from the event logs of
// the workspaces a call names.
func (r *Replayer) WithEventLog(l EventLog) *Replayer {
	r.events = l
	return r
}

// New returns a Replayer of the queue at queueURL for the stream streamARN (a pointer into another
// stream is left alone).
func New(q Queue, queueURL string, st Stream, streamARN string, f Fanout, log *slog.Logger) *Replayer {
	return &Replayer{queue: q, queueURL: queueURL, stream: st, streamARN: streamARN, fanout: f, log: log}
}

// errExpired: the stream no longer holds the batch's records.
var errExpired = errors.New("the stream no longer holds these records")

// Replay takes up to o.MaxMessages messages, and for each reads its records back from the stream
// (or, past the stream's 24 h, rebuilds its events from the event logs of o.Workspaces appended in
// the batch's arrival window), runs the fan-out on them and deletes the message once the fan-out
// succeeded. It stops taking messages close to ctx's deadline. Only a failure to read the queue is
// an error.
//
// A message it had to leave for want of workspaces to rebuild from (or that is no pointer) is hidden
// for the visibility timeout, so that the next call reaches the messages behind it. A call that
// found the queue empty before its limit and its time ran out hands those back at its end instead:
// the next call, say one that names the workspaces, finds them at once. A message whose fan-out
// failed again stays hidden (a back-off). A call that took messages but could not count the queue
// afterwards reports what it did, with Remaining estimated (see there).
func (r *Replayer) Replay(ctx context.Context, o Options) (Result, error) {
	limit := o.MaxMessages
	if limit <= 0 {
		limit = DefaultMessages
	}
	limit = min(limit, MaxMessages)
	stop := time.Now().Add(callTimeout)
	if d, ok := ctx.Deadline(); ok {
		stop = d.Add(-reserve)
	}
	var res Result
	var left []string // receipt handles of the messages to hand back if the queue is found empty
	drained := false
	// A short poll samples some of SQS's servers and may come back empty while a few messages
	// are queued: an empty one is confirmed by a long poll of a second (which asks them all).
	wait := int32(0)
	for taken := 0; taken < limit && time.Now().Before(stop); {
		out, err := r.queue.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: &r.queueURL, MaxNumberOfMessages: int32(min(10, limit-taken)),
			VisibilityTimeout: visibility, WaitTimeSeconds: wait,
		})
		if err != nil {
			return res, fmt.Errorf("receive from FanoutDLQ: %w", err)
		}
		if len(out.Messages) == 0 {
			if wait == 0 {
				wait = 1
				continue
			}
			drained = true
			break
		}
		wait = 0
		for _, m := range out.Messages {
			taken++
			if !time.Now().Before(stop) {
				break // not started: it returns to the queue after its visibility timeout
			}
			if r.one(ctx, m, o.Workspaces, &res) {
				left = append(left, aws.ToString(m.ReceiptHandle))
			}
		}
	}
	if drained && len(left) > 0 {
		if err := queue.NewPostponer(r.queue, r.queueURL).Postpone(ctx, left, 0); err != nil {
			r.log.WarnContext(ctx, "FanoutDLQ messages left may stay hidden until their visibility timeout", "messages", len(left), "err", err)
		}
	}
	n, err := r.remaining(ctx)
	if err != nil {
		if res.Replayed+res.Failed+res.Expired+res.Unreadable == 0 {
			return res, err // nothing done: the queue could not be read
		}
		// What the call did stands (the replayed messages are deleted), though a long fan-out left
		// it no time to count the queue: it reports the messages it knows are left, and at least
		// one unless it found the queue empty, so that a caller's loop calls again.
		r.log.WarnContext(ctx, "FanoutDLQ not counted after the replay; remaining is an estimate", "err", err)
		n = len(left)
		if !drained {
			n = max(n, 1)
		}
	}
	res.Remaining = n
	return res, nil
}

// one replays one message and counts its outcome. It reports handBack for a message left because it
// is unreadable or its records are gone: nothing of it was fanned out (Replay may hand those back
// at once). A message replayed, or whose fan-out or delete failed, is not handed back.
func (r *Replayer) one(ctx context.Context, m sqstypes.Message, workspaces []string, res *Result) (handBack bool) {
	log := r.log.With("message_id", aws.ToString(m.MessageId))
	p, err := Parse([]byte(aws.ToString(m.Body)))
	if err == nil && p.Batch.StreamArn != r.streamARN {
		err = fmt.Errorf("names the stream %s, not the table's", p.Batch.StreamArn)
	}
	if err != nil {
		res.Unreadable++
		log.WarnContext(ctx, "FanoutDLQ message left in the queue: unreadable", "err", err)
		return true
	}
	b := p.Batch
	log = log.With("shard", b.ShardID, "start_sequence_number", b.StartSequenceNumber, "end_sequence_number", b.EndSequenceNumber)
	recs, err := r.records(ctx, b)
	rebuilt := false
	if errors.Is(err, errExpired) && r.events != nil && len(workspaces) > 0 {
		log.WarnContext(ctx, "FanoutDLQ message: its records are gone from the stream; rebuilding from the event logs", "err", err,
			"workspaces", len(workspaces))
		recs, err = r.rebuild(ctx, b, workspaces)
		rebuilt = true
		if err == nil && len(recs) < b.BatchSize {
			// The batch held BatchSize event inserts (the stream filter selects only those): some
			// are in a workspace not named. Deleting the message would lose them.
			err = fmt.Errorf("%w: %d of the batch's %d events found in the workspaces named", errExpired, len(recs), b.BatchSize)
		}
	}
	if errors.Is(err, errExpired) {
		res.Expired++
		log.ErrorContext(ctx, "FanoutDLQ message left in the queue: its records are gone from the stream", "err", err,
			"first_arrival", b.ApproximateArrivalOfFirstRecord, "last_arrival", b.ApproximateArrivalOfLastRecord)
		return true
	}
	if err == nil {
		err = r.fan(ctx, recs)
	}
	if err != nil {
		res.Failed++
		log.ErrorContext(ctx, "FanoutDLQ replay failed; the message stays for another try", "err", err)
		return false
	}
	if _, err := r.queue.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &r.queueURL, ReceiptHandle: m.ReceiptHandle}); err != nil {
		// Fanned out but still queued: a later replay finds the deliveries made (idempotent).
		res.Failed++
		log.ErrorContext(ctx, "FanoutDLQ replay done but the message could not be deleted", "err", err)
		return false
	}
	res.Replayed++
	res.Records += len(recs)
	if rebuilt {
		res.Rebuilt++
	}
	log.InfoContext(ctx, "FanoutDLQ message replayed", "records", len(recs), "rebuilt", rebuilt)
	return false
}

// fan runs the fan-out on the records and reports whether every one of them was handled.
func (r *Replayer) fan(ctx context.Context, recs []events.DynamoDBEventRecord) error {
	if len(recs) == 0 {
		return nil
	}
	resp, err := r.fanout.Handle(ctx, events.DynamoDBEvent{Records: recs})
	if err != nil {
		return fmt.Errorf("fan-out: %w", err)
	}
	if len(resp.BatchItemFailures) > 0 {
		return fmt.Errorf("fan-out failed from record %s", resp.BatchItemFailures[0].ItemIdentifier)
	}
	return nil
}

// records reads the batch's records back: from its start sequence number on the shard to its end
// one, both included.
func (r *Replayer) records(ctx context.Context, b BatchInfo) ([]events.DynamoDBEventRecord, error) {
	it, err := r.stream.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
		StreamArn: &b.StreamArn, ShardId: &b.ShardID,
		ShardIteratorType: streamtypes.ShardIteratorTypeAtSequenceNumber, SequenceNumber: &b.StartSequenceNumber,
	})
	if err != nil {
		return nil, gone(fmt.Errorf("get shard iterator: %w", err))
	}
	region := regionOf(b.StreamArn)
	var recs []events.DynamoDBEventRecord
	iter := it.ShardIterator
	for range maxReads {
		if iter == nil {
			return recs, nil // a closed shard read to its end
		}
		out, err := r.stream.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(readLimit)})
		if err != nil {
			return nil, gone(fmt.Errorf("get records: %w", err))
		}
		for _, rec := range out.Records {
			seq := ""
			if rec.Dynamodb != nil {
				seq = aws.ToString(rec.Dynamodb.SequenceNumber)
			}
			if CompareSeq(seq, b.EndSequenceNumber) > 0 {
				return recs, nil
			}
			ev, err := streamrec.Record(rec, b.StreamArn, region)
			if err != nil {
				return nil, fmt.Errorf("record %s: %w", seq, err)
			}
			recs = append(recs, ev)
			if seq == b.EndSequenceNumber {
				return recs, nil
			}
		}
		iter = out.NextShardIterator
	}
	return nil, fmt.Errorf("end sequence number %s not reached after %d reads", b.EndSequenceNumber, maxReads)
}

// rebuild returns the events the workspaces appended in the batch's arrival window, widened by
// arrivalSlack (and back by store.MaxWriteLag), as the stream records of their inserts. Events outside the batch may come too: the
// fan-out finds their deliveries made and makes no others.
func (r *Replayer) rebuild(ctx context.Context, b BatchInfo, workspaces []string) ([]events.DynamoDBEventRecord, error) {
	first, err1 := time.Parse(time.RFC3339, b.ApproximateArrivalOfFirstRecord)
	last, err2 := time.Parse(time.RFC3339, b.ApproximateArrivalOfLastRecord)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("arrival window: %w", err)
	}
	// Arrivals are cut to the second; DynamoDB Local cuts them to the minute: two whole minutes
	// are read as such (on AWS that only widens the window, which costs reads, not deliveries).
	grain := time.Second
	if first.Second() == 0 && last.Second() == 0 {
		grain = time.Minute
	}
	// An event's created_at is taken before its cursor is reserved: its item arrives up to
	// store.MaxWriteLag later (seconds, under load), so the window reaches back that far.
	from, to := first.Add(-store.MaxWriteLag-arrivalSlack), last.Add(grain+arrivalSlack)
	var recs []events.DynamoDBEventRecord
	for _, ws := range workspaces {
		evs, more, err := r.events.EventsBetween(ctx, ws, from, to, maxRebuilt-len(recs))
		if err != nil {
			return nil, err
		}
		if more {
			return nil, fmt.Errorf("more than %d events in the window %s..%s", maxRebuilt, from.Format(time.RFC3339), to.Format(time.RFC3339))
		}
		cursors := make([]int64, len(evs))
		for i, e := range evs {
			recs = append(recs, insertRecord(e))
			cursors[i] = e.Cursor
		}
		r.log.InfoContext(ctx, "FanoutDLQ batch rebuilt from the event log", "workspace_id", ws,
			"from", from.Format(time.RFC3339Nano), "to", to.Format(time.RFC3339Nano), "cursors", cursors)
	}
	return recs, nil
}

// insertRecord is the stream record of an event's insert into its log, as the fan-out reads it:
// the item's attributes (store.AppendEvents writes them) in its new image.
func insertRecord(e store.Event) events.DynamoDBEventRecord {
	pk, sk := store.EventPK(e.WorkspaceID, e.Shard), fmt.Sprintf("%019d", e.Cursor)
	img := map[string]events.DynamoDBAttributeValue{
		"pk": events.NewStringAttribute(pk), "sk": events.NewStringAttribute(sk),
		"kind": events.NewStringAttribute(store.KindEvent), "event_id": events.NewStringAttribute(e.ID),
		"type": events.NewStringAttribute(e.Type), "created_at": events.NewStringAttribute(e.CreatedAt.UTC().Format(time.RFC3339Nano)),
		"data": events.NewStringAttribute(string(e.Data)),
	}
	if e.Trace != "" {
		img["trace"] = events.NewStringAttribute(e.Trace)
	}
	return events.DynamoDBEventRecord{
		EventName: "INSERT", EventSource: "aws:dynamodb",
		Change: events.DynamoDBStreamRecord{
			Keys:           map[string]events.DynamoDBAttributeValue{"pk": img["pk"], "sk": img["sk"]},
			NewImage:       img,
			SequenceNumber: "log:" + e.WorkspaceID + ":" + sk, // no stream position: named for the fan-out's logs
		},
	}
}

// gone marks the errors that mean the records are no longer in the stream: trimmed (past 24 h),
// or a shard that no longer exists.
func gone(err error) error {
	var trimmed *streamtypes.TrimmedDataAccessException
	var notFound *streamtypes.ResourceNotFoundException
	if errors.As(err, &trimmed) || errors.As(err, &notFound) {
		return fmt.Errorf("%w: %w", errExpired, err)
	}
	return err
}

// regionOf is the region of a stream ARN (arn:aws:dynamodb:<region>:…), for the records' awsRegion.
func regionOf(arn string) string {
	if parts := strings.SplitN(arn, ":", 5); len(parts) == 5 {
		return parts[3]
	}
	return ""
}

// remaining is how many messages FanoutDLQ holds, visible or in flight.
func (r *Replayer) remaining(ctx context.Context) (int, error) {
	out, err := r.queue.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &r.queueURL,
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		return 0, fmt.Errorf("count FanoutDLQ: %w", err)
	}
	n := 0
	for _, name := range []sqstypes.QueueAttributeName{
		sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
	} {
		v, _ := strconv.Atoi(out.Attributes[string(name)])
		n += v
	}
	return n, nil
}
