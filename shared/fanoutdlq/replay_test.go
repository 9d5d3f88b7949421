package fanoutdlq

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strconv"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

const testARN = "arn:aws:dynamodb:eu-west-1:1:table/t/stream/x"

type fakeQueue struct {
	msgs    []string // bodies, in order; received once each
	next    int
	deleted []string
}

func (q *fakeQueue) ReceiveMessage(_ context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	out := &sqs.ReceiveMessageOutput{}
	for ; q.next < len(q.msgs) && len(out.Messages) < int(in.MaxNumberOfMessages); q.next++ {
		id := strconv.Itoa(q.next)
		out.Messages = append(out.Messages, sqstypes.Message{MessageId: &id, ReceiptHandle: &id, Body: &q.msgs[q.next]})
	}
	return out, nil
}

func (q *fakeQueue) DeleteMessage(_ context.Context, in *sqs.DeleteMessageInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	q.deleted = append(q.deleted, *in.ReceiptHandle)
	return &sqs.DeleteMessageOutput{}, nil
}

func (q *fakeQueue) GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{
		"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": strconv.Itoa(len(q.msgs) - len(q.deleted)),
	}}, nil
}

// fakeStream holds shard "s" with records at sequence numbers 10, 20, …, 90, two per page;
// shard "old" is trimmed.
type fakeStream struct{}

func (fakeStream) GetShardIterator(_ context.Context, in *dynamodbstreams.GetShardIteratorInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	if *in.ShardId == "old" {
		return nil, &streamtypes.TrimmedDataAccessException{Message: aws.String("trimmed")}
	}
	if in.ShardIteratorType != streamtypes.ShardIteratorTypeAtSequenceNumber {
		return nil, fmt.Errorf("iterator type %s", in.ShardIteratorType)
	}
	return &dynamodbstreams.GetShardIteratorOutput{ShardIterator: in.SequenceNumber}, nil
}

func (fakeStream) GetRecords(_ context.Context, in *dynamodbstreams.GetRecordsInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	from, _ := strconv.Atoi(*in.ShardIterator)
	out := &dynamodbstreams.GetRecordsOutput{}
	for seq := from; seq < from+20 && seq <= 90; seq += 10 {
		out.Records = append(out.Records, streamtypes.Record{EventName: streamtypes.OperationTypeInsert, Dynamodb: &streamtypes.StreamRecord{
			SequenceNumber: aws.String(strconv.Itoa(seq)),
			NewImage:       map[string]streamtypes.AttributeValue{"n": &streamtypes.AttributeValueMemberN{Value: strconv.Itoa(seq)}},
		}})
	}
	if from+20 <= 90 {
		out.NextShardIterator = aws.String(strconv.Itoa(from + 20))
	}
	return out, nil
}

type fakeFanout struct {
	batches [][]string
	failOn  string
}

func (f *fakeFanout) Handle(_ context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	var seqs []string
	for _, r := range ev.Records {
		seqs = append(seqs, r.Change.SequenceNumber)
		if r.EventSourceArn != testARN || r.AWSRegion != "eu-west-1" || r.Change.NewImage["n"].Number() != r.Change.SequenceNumber {
			return events.DynamoDBEventResponse{}, fmt.Errorf("record %+v", r)
		}
	}
	f.batches = append(f.batches, seqs)
	for _, s := range seqs {
		if s == f.failOn {
			return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{{ItemIdentifier: s}}}, nil
		}
	}
	return events.DynamoDBEventResponse{}, nil
}

func pointer(t *testing.T, shard, start, end, arn string) string {
	t.Helper()
	b, err := json.Marshal(Pointer{Version: "1.0", Batch: BatchInfo{ShardID: shard, StartSequenceNumber: start, EndSequenceNumber: end, StreamArn: arn}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReplay: a pointer's records are read from its start to its end sequence number across pages
// and fanned out, then its message deleted; a trimmed batch, another stream's pointer, a body that is
// no pointer, and a batch the fan-out fails on again stay in the queue.
func TestReplay(t *testing.T) {
	q := &fakeQueue{msgs: []string{
		pointer(t, "s", "20", "50", testARN),     // 0: replayed, records 20..50 (two pages)
		pointer(t, "old", "10", "10", testARN),   // 1: expired
		pointer(t, "s", "10", "10", "arn:other"), // 2: another stream's
		`{"Records":[]}`,                         // 3: not a pointer
		pointer(t, "s", "60", "70", testARN),     // 4: fan-out fails again
		pointer(t, "s", "80", "85", testARN),     // 5: replayed, record 80 only
	}}
	f := &fakeFanout{failOn: "70"}
	r := New(q, "dlq", fakeStream{}, testARN, f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	res, err := r.Replay(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Replayed: 2, Records: 5, Failed: 1, Expired: 1, Unreadable: 2, Remaining: 4}
	if res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}
	if !reflect.DeepEqual(q.deleted, []string{"0", "5"}) {
		t.Errorf("deleted %v, want [0 5]", q.deleted)
	}
	if got := fmt.Sprint(f.batches); got != "[[20 30 40 50] [60 70] [80]]" {
		t.Errorf("fanned out %s", got)
	}
}

// TestReplayLimit: one call takes at most the messages asked for.
func TestReplayLimit(t *testing.T) {
	q := &fakeQueue{}
	for range 5 {
		q.msgs = append(q.msgs, pointer(t, "s", "10", "10", testARN))
	}
	r := New(q, "dlq", fakeStream{}, testARN, &fakeFanout{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	res, err := r.Replay(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 2 || res.Remaining != 3 || q.next != 2 {
		t.Errorf("result %+v, received %d", res, q.next)
	}
}
