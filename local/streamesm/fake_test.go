package streamesm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

const fakeARN = "arn:aws:dynamodb:us-east-1:000000000000:table/T/stream/2024-01-01T00:00:00.000"

// fakeStream is an in-memory DynamoDB stream: shards of records, iterators "shard/index".
type fakeStream struct {
	mu       sync.Mutex
	shards   []*fakeShard
	pageSize int                           // shards per DescribeStream page; 0: all
	fail     func(op string, in any) error // injected errors, before the call does anything
	calls    []string                      // "DescribeStream", "GetRecords", "GetShardIterator SHARD TYPE [SEQ]"
	trimmed  map[string]int                // records before this index of a shard are gone
}

type fakeShard struct {
	id, parent string
	records    []types.Record
	closed     bool
}

func newFakeStream() *fakeStream {
	return &fakeStream{trimmed: map[string]int{}}
}

// addShard adds a shard (open unless closed) with records of the given sequence numbers, key pk.
func (f *fakeStream) addShard(id, parent string, closed bool, recs ...types.Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shards = append(f.shards, &fakeShard{id: id, parent: parent, records: recs, closed: closed})
}

// put appends records to an open shard.
func (f *fakeStream) put(id string, recs ...types.Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sh := f.shard(id)
	if sh.closed {
		panic("put to closed shard " + id)
	}
	sh.records = append(sh.records, recs...)
}

// close closes a shard, as a rotation or split does.
func (f *fakeStream) close(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shard(id).closed = true
}

func (f *fakeStream) shard(id string) *fakeShard {
	for _, sh := range f.shards {
		if sh.id == id {
			return sh
		}
	}
	return nil
}

func (f *fakeStream) callCount(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (f *fakeStream) before(op string, in any) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		return fail(op, in)
	}
	return nil
}

func (f *fakeStream) DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error) {
	if err := f.before("DescribeStream", in); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "DescribeStream")
	if aws.ToString(in.StreamArn) != fakeARN {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no stream " + aws.ToString(in.StreamArn))}
	}
	start := 0
	if after := aws.ToString(in.ExclusiveStartShardId); after != "" {
		for i, sh := range f.shards {
			if sh.id == after {
				start = i + 1
			}
		}
	}
	end := len(f.shards)
	if f.pageSize > 0 {
		end = min(end, start+f.pageSize)
	}
	desc := &types.StreamDescription{StreamArn: aws.String(fakeARN), StreamStatus: types.StreamStatusEnabled,
		KeySchema: []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}}}
	for _, sh := range f.shards[start:end] {
		s := types.Shard{ShardId: aws.String(sh.id), SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}}
		if sh.parent != "" {
			s.ParentShardId = aws.String(sh.parent)
		}
		if sh.closed {
			s.SequenceNumberRange.EndingSequenceNumber = aws.String("999")
		}
		desc.Shards = append(desc.Shards, s)
	}
	if end < len(f.shards) {
		desc.LastEvaluatedShardId = aws.String(f.shards[end-1].id)
	}
	return &dynamodbstreams.DescribeStreamOutput{StreamDescription: desc}, nil
}

func (f *fakeStream) GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	if err := f.before("GetShardIterator", in); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, strings.TrimSpace(fmt.Sprintf("GetShardIterator %s %s %s", aws.ToString(in.ShardId), in.ShardIteratorType, aws.ToString(in.SequenceNumber))))
	sh := f.shard(aws.ToString(in.ShardId))
	if sh == nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no shard")}
	}
	idx := 0
	switch in.ShardIteratorType {
	case types.ShardIteratorTypeTrimHorizon:
		idx = f.trimmed[sh.id]
	case types.ShardIteratorTypeLatest:
		idx = len(sh.records)
	case types.ShardIteratorTypeAfterSequenceNumber, types.ShardIteratorTypeAtSequenceNumber:
		idx = -1
		for i, r := range sh.records {
			if aws.ToString(r.Dynamodb.SequenceNumber) == aws.ToString(in.SequenceNumber) {
				idx = i
			}
		}
		if idx < 0 {
			return nil, errors.New("ValidationException: no such sequence number")
		}
		if in.ShardIteratorType == types.ShardIteratorTypeAfterSequenceNumber {
			idx++
		}
		if idx < f.trimmed[sh.id] {
			return nil, &types.TrimmedDataAccessException{Message: aws.String("trimmed")}
		}
	default:
		return nil, fmt.Errorf("unsupported iterator type %s", in.ShardIteratorType)
	}
	return &dynamodbstreams.GetShardIteratorOutput{ShardIterator: aws.String(sh.id + "/" + strconv.Itoa(idx))}, nil
}

func (f *fakeStream) GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	if err := f.before("GetRecords", in); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "GetRecords")
	id, pos, _ := strings.Cut(aws.ToString(in.ShardIterator), "/")
	idx, err := strconv.Atoi(pos)
	if err != nil {
		return nil, errors.New("ValidationException: Invalid ShardIterator")
	}
	sh := f.shard(id)
	if sh == nil { // as DynamoDB Local answers for a shard that is gone
		return nil, &types.ResourceNotFoundException{Message: aws.String("Invalid ShardId in ShardIterator")}
	}
	if limit := int(aws.ToInt32(in.Limit)); limit < 1 || limit > 1000 {
		return nil, fmt.Errorf("ValidationException: limit %d", limit)
	}
	if idx < f.trimmed[sh.id] {
		return nil, &types.TrimmedDataAccessException{Message: aws.String("trimmed")}
	}
	end := min(len(sh.records), idx+int(aws.ToInt32(in.Limit)))
	out := &dynamodbstreams.GetRecordsOutput{Records: append([]types.Record(nil), sh.records[idx:end]...)}
	if !sh.closed || end < len(sh.records) {
		out.NextShardIterator = aws.String(sh.id + "/" + strconv.Itoa(end))
	}
	return out, nil
}

// rec is a stream record of item pk with sequence number seq; name is INSERT when "".
func rec(seq int, pk, name string) types.Record {
	if name == "" {
		name = "INSERT"
	}
	created := time.Unix(1700000000, 0)
	img := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"n":  &types.AttributeValueMemberN{Value: strconv.Itoa(seq)},
	}
	return types.Record{
		EventID: aws.String("e" + strconv.Itoa(seq)), EventName: types.OperationType(name),
		EventSource: aws.String("aws:dynamodb"), EventVersion: aws.String("1.1"), AwsRegion: aws.String("us-east-1"),
		Dynamodb: &types.StreamRecord{
			ApproximateCreationDateTime: &created,
			Keys:                        map[string]types.AttributeValue{"pk": img["pk"]},
			NewImage:                    img,
			SequenceNumber:              aws.String(seqNum(seq)),
			SizeBytes:                   aws.Int64(20),
			StreamViewType:              types.StreamViewTypeNewImage,
		},
	}
}

func seqNum(n int) string { return fmt.Sprintf("%021d", n) }

// recs are records first..last of item pk.
func recs(first, last int, pk string) []types.Record {
	var out []types.Record
	for i := first; i <= last; i++ {
		out = append(out, rec(i, pk, ""))
	}
	return out
}

// recorder is an Invoker that keeps every batch it gets and answers with respond.
type recorder struct {
	t       *testing.T
	mu      sync.Mutex
	batches [][]events.DynamoDBEventRecord
	sizes   []int
	respond func(call int, batch []events.DynamoDBEventRecord) ([]byte, error) // nil: success
}

func (r *recorder) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	if function != "Fn" {
		r.t.Errorf("invoked %q, want Fn", function)
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		r.t.Errorf("payload is not a DynamoDB event: %v", err)
		return nil, err
	}
	r.mu.Lock()
	r.batches = append(r.batches, ev.Records)
	r.sizes = append(r.sizes, len(payload))
	call, respond := len(r.batches), r.respond
	r.mu.Unlock()
	if respond == nil {
		return nil, nil
	}
	return respond(call, ev.Records)
}

// calls lists every batch as the numbers of its records ("1-3,5" style: "1 2 3").
func (r *recorder) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.batches))
	for i, b := range r.batches {
		out[i] = nums(b)
	}
	return out
}

// delivered lists the record numbers of every batch, in invocation order.
func (r *recorder) delivered() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, b := range r.batches {
		for _, rec := range b {
			out = append(out, num(rec))
		}
	}
	return out
}

func num(r events.DynamoDBEventRecord) int {
	n, _ := strconv.Atoi(strings.TrimLeft(r.Change.SequenceNumber, "0"))
	return n
}

func nums(b []events.DynamoDBEventRecord) string {
	parts := make([]string, len(b))
	for i, r := range b {
		parts[i] = strconv.Itoa(num(r))
	}
	return strings.Join(parts, " ")
}

// failures is a ReportBatchItemFailures response naming the given records.
func failures(seqs ...int) []byte {
	var resp events.DynamoDBEventResponse
	resp.BatchItemFailures = []events.DynamoDBBatchItemFailure{}
	for _, s := range seqs {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: seqNum(s)})
	}
	b, _ := json.Marshal(resp)
	return b
}

// start runs the mapping until the test ends (or stop is called) and checks Run returns nil.
func start(t *testing.T, c Config, api StreamsAPI, inv Invoker) (stop func()) {
	t.Helper()
	if c.Function == "" {
		c.Function = "Fn"
	}
	if c.StreamARN == "" {
		c.StreamARN = fakeARN
	}
	if c.PollInterval == 0 {
		c.PollInterval = 2 * time.Millisecond
	}
	if c.Logger == nil && testing.Verbose() {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, api, inv) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("Run did not return within 5s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually waits up to 5s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fakeInvoker satisfies Invoker for tests that never invoke.
type fakeInvoker struct{}

func (fakeInvoker) Invoke(context.Context, string, []byte) ([]byte, error) {
	return nil, errors.New("not expected")
}
