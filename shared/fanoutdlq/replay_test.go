package fanoutdlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/hookgate/hookgate/shared/store"
)

const testARN = "arn:aws:dynamodb:eu-west-1:1:table/t/stream/x"

type fakeQueue struct {
	msgs    []string // bodies, in order; received once each
	next    int
	deleted []string
	shown   []string // receipt handles made visible again at once

	waits       []int32         // each receive's WaitTimeSeconds
	shortMisses int             // this many short polls come back empty, messages or not
	slowFrom    int             // receives from this message on take delay first
	delay       time.Duration   //
	failDelete  map[string]bool // receipt handles whose delete fails
	countErr    error           // GetQueueAttributes' answer, when set
}

func (q *fakeQueue) ReceiveMessage(_ context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	q.waits = append(q.waits, in.WaitTimeSeconds)
	out := &sqs.ReceiveMessageOutput{}
	if in.WaitTimeSeconds == 0 && q.shortMisses > 0 {
		q.shortMisses--
		return out, nil
	}
	if q.delay > 0 && q.next >= q.slowFrom {
		time.Sleep(q.delay)
	}
	for ; q.next < len(q.msgs) && len(out.Messages) < int(in.MaxNumberOfMessages); q.next++ {
		id := strconv.Itoa(q.next)
		out.Messages = append(out.Messages, sqstypes.Message{MessageId: &id, ReceiptHandle: &id, Body: &q.msgs[q.next]})
	}
	return out, nil
}

func (q *fakeQueue) DeleteMessage(_ context.Context, in *sqs.DeleteMessageInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	if q.failDelete[*in.ReceiptHandle] {
		return nil, errors.New("delete failed")
	}
	q.deleted = append(q.deleted, *in.ReceiptHandle)
	return &sqs.DeleteMessageOutput{}, nil
}

func (q *fakeQueue) ChangeMessageVisibilityBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	for _, e := range in.Entries {
		if e.VisibilityTimeout != 0 {
			return nil, fmt.Errorf("visibility %d", e.VisibilityTimeout)
		}
		q.shown = append(q.shown, *e.ReceiptHandle)
	}
	return &sqs.ChangeMessageVisibilityBatchOutput{}, nil
}

func (q *fakeQueue) GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	if q.countErr != nil {
		return nil, q.countErr
	}
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
// no pointer, and a batch the fan-out fails on again stay in the queue. The call took every message,
// so the expired and unreadable ones are visible again at once; the failed one is not.
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
	res, err := r.Replay(context.Background(), Options{})
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
	if !reflect.DeepEqual(q.shown, []string{"1", "2", "3"}) {
		t.Errorf("made visible %v, want [1 2 3]", q.shown)
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
	res, err := r.Replay(context.Background(), Options{MaxMessages: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 2 || res.Remaining != 3 || q.next != 2 {
		t.Errorf("result %+v, received %d", res, q.next)
	}
}

// TestReplayKeepsLeftMessagesHiddenUntilTheQueueIsDrained: a call that stopped at its limit keeps
// the messages it left hidden, so that the next call reaches the ones behind them.
func TestReplayKeepsLeftMessagesHiddenUntilTheQueueIsDrained(t *testing.T) {
	q := &fakeQueue{msgs: []string{pointer(t, "old", "10", "10", testARN), `{}`, pointer(t, "s", "10", "10", testARN)}}
	r := New(q, "dlq", fakeStream{}, testARN, &fakeFanout{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	res, err := r.Replay(context.Background(), Options{MaxMessages: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Expired != 1 || res.Unreadable != 1 || len(q.shown) != 0 {
		t.Errorf("result %+v, made visible %v", res, q.shown)
	}
	if res, err = r.Replay(context.Background(), Options{}); err != nil || res.Replayed != 1 || len(q.shown) != 0 {
		t.Errorf("second call: %+v %v, made visible %v", res, err, q.shown)
	}
}

// TestReplayStoppedByItsDeadlineKeepsLeftMessagesHidden: a call that runs out of time, even in the
// middle of a batch, has not found the queue empty and hands nothing back.
func TestReplayStoppedByItsDeadlineKeepsLeftMessagesHidden(t *testing.T) {
	q := &fakeQueue{slowFrom: 10, delay: 300 * time.Millisecond}
	for range 12 {
		q.msgs = append(q.msgs, pointer(t, "old", "10", "10", testARN))
	}
	r := New(q, "dlq", fakeStream{}, testARN, &fakeFanout{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), reserve+200*time.Millisecond)
	defer cancel()
	res, err := r.Replay(ctx, Options{MaxMessages: 50})
	if err != nil {
		t.Fatal(err)
	}
	if res.Expired != 10 || len(q.shown) != 0 {
		t.Errorf("result %+v, made visible %v; want 10 expired, none made visible", res, q.shown)
	}
}

// TestReplayUncountedReportsWhatItDid: a call whose fan-out left it no time to count the queue (CI:
// 41 records took 13 s of the management function's 15 s, and the count's GetQueueAttributes was
// cut by the deadline) answers with what it replayed, not with "FanoutDLQ could not be read", and
// with a remaining that makes a caller's loop call again unless it found the queue empty. A call
// that took nothing still fails.
func TestReplayUncountedReportsWhatItDid(t *testing.T) {
	cut := fmt.Errorf("count: %w", context.DeadlineExceeded)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	q := &fakeQueue{countErr: cut}
	for range 3 {
		q.msgs = append(q.msgs, pointer(t, "s", "10", "10", testARN))
	}
	res, err := New(q, "dlq", fakeStream{}, testARN, &fakeFanout{}, log).Replay(context.Background(), Options{MaxMessages: 2})
	if err != nil || res.Replayed != 2 || res.Remaining != 1 {
		t.Fatalf("stopped at its limit: %+v, %v; want 2 replayed, 1 remaining", res, err)
	}
	res, err = New(q, "dlq", fakeStream{}, testARN, &fakeFanout{}, log).Replay(context.Background(), Options{})
	if err != nil || res.Replayed != 1 || res.Remaining != 0 {
		t.Fatalf("emptied the queue: %+v, %v; want 1 replayed, 0 remaining", res, err)
	}
	if _, err = New(q, "dlq", fakeStream{}, testARN, &fakeFanout{}, log).Replay(context.Background(), Options{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("took nothing: %v; want the count's error", err)
	}
}

// TestReplayConfirmsAnEmptyShortPoll: an empty short poll is not taken for an empty queue (SQS
// samples some of its servers): a long poll finds the messages, and only an empty long poll ends
// the call as drained. A message whose delete failed was fanned out: it is not handed back.
func TestReplayConfirmsAnEmptyShortPoll(t *testing.T) {
	q := &fakeQueue{
		msgs:        []string{pointer(t, "old", "10", "10", testARN), pointer(t, "s", "10", "10", testARN)},
		shortMisses: 1, failDelete: map[string]bool{"1": true},
	}
	r := New(q, "dlq", fakeStream{}, testARN, &fakeFanout{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	res, err := r.Replay(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Expired != 1 || res.Failed != 1 || res.Replayed != 0 {
		t.Errorf("result %+v, want 1 expired and 1 failed", res)
	}
	if got := fmt.Sprint(q.waits); got != "[0 1 0 1]" {
		t.Errorf("receives waited %s, want [0 1 0 1]", got)
	}
	if !reflect.DeepEqual(q.shown, []string{"0"}) {
		t.Errorf("made visible %v, want [0]", q.shown)
	}
}

// fakeLog holds events of workspace "w" appended each second from 10:00:00.
type fakeLog struct{ calls []string }

func (l *fakeLog) EventsBetween(_ context.Context, ws string, from, to time.Time, limit int) ([]store.Event, bool, error) {
	l.calls = append(l.calls, fmt.Sprintf("%s %s..%s", ws, from.Format("15:04:05"), to.Format("15:04:05")))
	if ws != "w" {
		return nil, false, nil
	}
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	var evs []store.Event
	for i := range 60 {
		at := t0.Add(time.Duration(i)*time.Second + 300*time.Millisecond)
		if at.Before(from) || at.After(to) {
			continue
		}
		if len(evs) == limit {
			return evs, true, nil
		}
		evs = append(evs, store.Event{ID: fmt.Sprintf("evt_%02d", i), Type: "t", WorkspaceID: ws, Cursor: int64(i + 1), CreatedAt: at, Data: []byte(`{}`), Trace: "tp"})
	}
	return evs, false, nil
}

// logFanout records the event ids of the inserts it gets.
type logFanout struct{ ids [][]string }

func (f *logFanout) Handle(_ context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	var ids []string
	for _, r := range ev.Records {
		img := r.Change.NewImage
		if r.EventName != "INSERT" || img["kind"].String() != store.KindEvent || img["pk"].String() != "WS#w#EV" || img["trace"].String() != "tp" ||
			img["created_at"].String() == "" || img["sk"].String() != fmt.Sprintf("%019d", atoiT(img["event_id"].String()[4:])+1) {
			return events.DynamoDBEventResponse{}, fmt.Errorf("image %v", img)
		}
		ids = append(ids, img["event_id"].String())
	}
	f.ids = append(f.ids, ids)
	return events.DynamoDBEventResponse{}, nil
}

func atoiT(s string) int { n, _ := strconv.Atoi(s); return n }

func arrivalPointer(t *testing.T, first, last string, size int) string {
	t.Helper()
	b, err := json.Marshal(Pointer{Batch: BatchInfo{ShardID: "old", StartSequenceNumber: "1", EndSequenceNumber: "9", StreamArn: testARN,
		ApproximateArrivalOfFirstRecord: first, ApproximateArrivalOfLastRecord: last, BatchSize: size}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReplayRebuildsFromTheEventLog: past the stream's 24 h a batch is rebuilt from the event logs
// of the workspaces named, over its arrival window widened by the slack and reaching back by the
// longest an event's write may lag its created_at; without names, or when
// fewer events than the batch held are found, the message stays.
func TestReplayRebuildsFromTheEventLog(t *testing.T) {
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	q := &fakeQueue{msgs: []string{
		arrivalPointer(t, "2026-12-06T10:00:20Z", "2026-12-06T10:00:21Z", 2),
	}}
	l, f := &fakeLog{}, &logFanout{}
	r := New(q, "dlq", fakeStream{}, testARN, f, discard).WithEventLog(l)
	// Without workspaces: expired, left.
	res, err := r.Replay(context.Background(), Options{})
	if err != nil || res.Expired != 1 || len(q.deleted) != 0 || len(l.calls) != 0 {
		t.Fatalf("no workspaces: %+v %v, deleted %v, log calls %v", res, err, q.deleted, l.calls)
	}
	q.next = 0
	res, err = r.Replay(context.Background(), Options{Workspaces: []string{"other", "w"}})
	if err != nil {
		t.Fatal(err)
	}
	if res != (Result{Replayed: 1, Rebuilt: 1, Records: 24, Remaining: 0}) || len(q.deleted) != 1 {
		t.Errorf("result %+v, deleted %v", res, q.deleted)
	}
	// 10:00:20 - 20 s (store.MaxWriteLag) - 2 s .. 10:00:21 + 1 s + 2 s
	if fmt.Sprint(l.calls) != "[other 09:59:58..10:00:24 w 09:59:58..10:00:24]" {
		t.Errorf("log calls %v", l.calls)
	}
	if fmt.Sprint(f.ids) != "[[evt_00 evt_01 evt_02 evt_03 evt_04 evt_05 evt_06 evt_07 evt_08 evt_09 evt_10 evt_11 evt_12 evt_13 evt_14 evt_15 evt_16 evt_17 evt_18 evt_19 evt_20 evt_21 evt_22 evt_23]]" {
		t.Errorf("fanned out %v", f.ids)
	}

	// A batch of more events than the named logs hold stays queued.
	q2 := &fakeQueue{msgs: []string{arrivalPointer(t, "2026-12-06T10:00:20Z", "2026-12-06T10:00:20Z", 99)}}
	r2 := New(q2, "dlq", fakeStream{}, testARN, &logFanout{}, discard).WithEventLog(&fakeLog{})
	if res, err := r2.Replay(context.Background(), Options{Workspaces: []string{"w"}}); err != nil || res.Expired != 1 || len(q2.deleted) != 0 {
		t.Errorf("short rebuild: %+v %v, deleted %v", res, err, q2.deleted)
	}
}

// TestRebuildWindow: the arrival window is widened by the slack, and read as minutes when both
// arrivals are whole minutes (DynamoDB Local's grain).
func TestRebuildWindow(t *testing.T) {
	cases := map[[2]string]string{
		{"2026-12-06T10:00:20Z", "2026-12-06T10:00:21Z"}: "w 09:59:58..10:00:24",
		{"2026-12-06T10:00:00Z", "2026-12-06T10:00:00Z"}: "w 09:59:38..10:01:02",
		{"2026-12-06T10:00:00Z", "2026-12-06T10:00:05Z"}: "w 09:59:38..10:00:08",
	}
	for arrivals, want := range cases {
		l := &fakeLog{}
		r := New(&fakeQueue{}, "dlq", fakeStream{}, testARN, &logFanout{}, slog.New(slog.NewTextHandler(io.Discard, nil))).WithEventLog(l)
		if _, err := r.rebuild(context.Background(), BatchInfo{ApproximateArrivalOfFirstRecord: arrivals[0], ApproximateArrivalOfLastRecord: arrivals[1]}, []string{"w"}); err != nil {
			t.Fatal(err)
		}
		if len(l.calls) != 1 || l.calls[0] != want {
			t.Errorf("%v: %v, want %s", arrivals, l.calls, want)
		}
	}
	r := New(&fakeQueue{}, "dlq", fakeStream{}, testARN, &logFanout{}, slog.New(slog.NewTextHandler(io.Discard, nil))).WithEventLog(&fakeLog{})
	if _, err := r.rebuild(context.Background(), BatchInfo{ApproximateArrivalOfFirstRecord: "yesterday", ApproximateArrivalOfLastRecord: "2026-12-06T10:00:00Z"}, []string{"w"}); err == nil {
		t.Error("an unreadable arrival rebuilt")
	}
}
