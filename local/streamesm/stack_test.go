package streamesm_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/local/stack"
	"github.com/hookgate/hookgate/local/streamesm"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/fanoutdlq"
)

// echoBootstrap is a function speaking the Lambda Runtime API with the standard library only: it
// appends every event it handles to $ECHO_FILE (after a first line with $STREAM_ARN), fails
// every batch holding an item whose "fail" attribute is set, and holds every batch holding an item
// whose "hold" attribute is set until the file $RELEASE_FILE exists (writing a line "holding" first).
const echoBootstrap = `package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/"
	out, err := os.OpenFile(os.Getenv("ECHO_FILE"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		panic(err)
	}
	out.Write([]byte("arn " + os.Getenv("STREAM_ARN") + "\n"))
	for {
		resp, err := http.Get(api + "next")
		if err != nil {
			panic(err)
		}
		event, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		if bytes.Contains(event, []byte(` + "`" + `"hold":{"BOOL":true}` + "`" + `)) {
			out.Write([]byte("holding\n"))
			for {
				if _, err := os.Stat(os.Getenv("RELEASE_FILE")); err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		if bytes.Contains(event, []byte(` + "`" + `"fail":{"BOOL":true}` + "`" + `)) {
			r, _ := http.Post(api+id+"/error", "application/json", bytes.NewReader([]byte(` + "`" + `{"errorType":"Poison","errorMessage":"fail"}` + "`" + `)))
			r.Body.Close()
			continue
		}
		out.Write(append(bytes.ReplaceAll(event, []byte("\n"), nil), '\n'))
		r, _ := http.Post(api+id+"/response", "application/json", bytes.NewReader([]byte(` + "`" + `{"batchItemFailures":[]}` + "`" + `)))
		r.Body.Close()
	}
}
`

// streamTemplate is the FanoutFunction wiring of the template, on a function of its own.
const streamTemplate = `
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
      StreamSpecification:
        StreamViewType: NEW_IMAGE
  FanoutDLQ:
    Type: AWS::SQS::Queue
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 5
      Environment:
        Variables:
          STREAM_ARN: !GetAtt Table.StreamArn
      Events:
        LogStream:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 100
            MaximumBatchingWindowInSeconds: 1
            BisectBatchOnFunctionError: true
            MaximumRetryAttempts: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
            FilterCriteria:
              Filters:
                - Pattern: '{"eventName":["INSERT"],"dynamodb":{"NewImage":{"kind":{"S":["event"]}}}}'
            DestinationConfig:
              OnFailure:
                Type: SQS
                Destination: !GetAtt FanoutDLQ.Arn
`

// TestLocalMode runs a template with a DynamoDB event source in local mode: the table gets its
// stream, !GetAtt Table.StreamArn resolves, the real bootstrap gets the filtered INSERTs, and a
// batch that keeps failing ends, bisected to its poison record, named in the on-failure queue.
func TestLocalMode(t *testing.T) {
	t.Parallel()
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stack, cfg, echo := startEcho(ctx, t, streamTemplate, stack.Options{Concurrency: 1})
	defer stack.Close()
	arn := stack.Streams["Table"]
	db := cfg.DynamoDB()
	put := func(sk, kind string, fail bool) {
		item := map[string]dbtypes.AttributeValue{
			"pk": &dbtypes.AttributeValueMemberS{Value: "WS#default#EV"}, "sk": &dbtypes.AttributeValueMemberS{Value: sk},
			"kind": &dbtypes.AttributeValueMemberS{Value: kind}, "fail": &dbtypes.AttributeValueMemberBOOL{Value: fail},
		}
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(stack.Tables["Table"]), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	put("1", "event", false)
	put("2", "counter", false) // filtered out
	put("3", "event", true)    // poison
	put("4", "event", false)
	put("5", "event", false)

	// The poison record is isolated and named in FanoutDLQ.
	q := cfg.SQS()
	var body string
	for deadline := time.Now().Add(20 * time.Second); body == "" && time.Now().Before(deadline); {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(stack.Queues["FanoutDLQ"].URL), WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) > 0 {
			body = aws.ToString(out.Messages[0].Body)
		}
	}
	t.Logf("on-failure message at %s", time.Since(began).Round(time.Millisecond))
	// As on AWS, the message names the batch (shard, sequence numbers), not its records; they are
	// read back from the stream at the start sequence number.
	p, err := fanoutdlq.Parse([]byte(body))
	if err != nil || strings.Contains(body, `"Records"`) || p.Batch.StreamArn != arn || p.Batch.BatchSize != 1 ||
		p.Batch.StartSequenceNumber != p.Batch.EndSequenceNumber || p.Batch.ShardID == "" ||
		p.RequestContext.Condition != "RetryAttemptsExhausted" || !strings.HasSuffix(p.RequestContext.FunctionArn, ":function:EchoFunction") {
		t.Fatalf("on-failure message %q (%v): want a pointer to record 3 alone", body, err)
	}
	streams := streamesm.NewClient(cfg)
	it, err := streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
		StreamArn: &arn, ShardId: &p.Batch.ShardID, ShardIteratorType: streamtypes.ShardIteratorTypeAtSequenceNumber,
		SequenceNumber: &p.Batch.StartSequenceNumber,
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1)})
	if err != nil || len(got.Records) != 1 {
		t.Fatalf("read back %v: %v", got, err)
	}
	if sk := got.Records[0].Dynamodb.Keys["sk"].(*streamtypes.AttributeValueMemberS).Value; sk != "3" ||
		aws.ToString(got.Records[0].Dynamodb.SequenceNumber) != p.Batch.StartSequenceNumber {
		t.Fatalf("read back record %s at %s, want 3 at %s", sk, aws.ToString(got.Records[0].Dynamodb.SequenceNumber), p.Batch.StartSequenceNumber)
	}

	// The function got the other event INSERTs once each, in order, and its environment had the
	// stream ARN.
	var lines []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if lines = readLines(t, echo); len(handled(t, lines)) >= 3 {
			break
		}
	}
	if len(lines) == 0 || lines[0] != "arn "+arn {
		t.Errorf("bootstrap environment: first line %q, want STREAM_ARN %s", lines, arn)
	}
	if got := handled(t, lines); strings.Join(got, " ") != "1 4 5" {
		t.Errorf("handled %v, want [1 4 5]", got)
	}
}

// startEcho starts local mode on a template whose EchoFunction runs echoBootstrap, with o's
// Concurrency, StreamPartitions and FunctionEnv (ECHO_FILE added). It returns the stack, a
// configuration for its emulators, and the echo file.
func startEcho(ctx context.Context, t *testing.T, tpl string, o stack.Options) (*stack.Stack, awscfg.Config, string) {
	t.Helper()
	began := time.Now()
	root, bin := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "template.yaml"), []byte(tpl), 0o644); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "main.go")
	if err := os.WriteFile(src, []byte(echoBootstrap), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "EchoFunction", "bootstrap"), src)
	build.Dir = filepath.Dir(src)
	build.Env = append(os.Environ(), "GOFLAGS=", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the echo bootstrap: %v\n%s", err, out)
	}
	echo := filepath.Join(t.TempDir(), "events.jsonl")
	t.Logf("built the echo bootstrap in %s", time.Since(began).Round(time.Millisecond))

	o.Root, o.BinDir, o.Addr = root, bin, "127.0.0.1:0"
	o.DynamoEndpoint, o.SQSEndpoint = emulatortest.Dynamo(t), emulatortest.SQS(t)
	o.Prefix = fmt.Sprintf("esm%d-", time.Now().UnixNano()%1e9)
	o.FunctionEnv = maps.Clone(o.FunctionEnv)
	if o.FunctionEnv == nil {
		o.FunctionEnv = map[string]string{}
	}
	o.FunctionEnv["ECHO_FILE"] = echo
	if testing.Verbose() {
		o.FunctionLog = os.Stderr
	}
	s, err := stack.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("local mode started at %s", time.Since(began).Round(time.Millisecond))
	if arn := s.Streams["Table"]; !strings.Contains(arn, ":table/"+s.Tables["Table"]+"/stream/") {
		s.Close()
		t.Fatalf("stream of Table: %q (streams %v)", arn, s.Streams)
	}
	cfg, err := awscfg.Load(ctx, func(k string) string {
		return map[string]string{awscfg.EnvDynamoEndpoint: s.DynamoEndpoint, awscfg.EnvSQSEndpoint: s.SQSEndpoint}[k]
	})
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	return s, cfg, echo
}

// TestLocalModeStreamPartitions: local mode deals the stream's records to StreamPartitions
// lanes by partition key. With 2, an event whose batch the function holds (log shard 0's) does not
// hold back an event of another partition key (log shard 1's): that one is handled first.
func TestLocalModeStreamPartitions(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	release := filepath.Join(t.TempDir(), "release")
	// The held batch must not time out (and free its lane) before the other one is handled.
	tpl := strings.Replace(streamTemplate, "Timeout: 5\n", "Timeout: 60\n", 1)
	stack, cfg, echo := startEcho(ctx, t, tpl, stack.Options{Concurrency: 2, StreamPartitions: 2,
		FunctionEnv: map[string]string{"RELEASE_FILE": release}})
	defer stack.Close()
	put := func(pk, sk string, hold bool) {
		item := map[string]dbtypes.AttributeValue{
			"pk": &dbtypes.AttributeValueMemberS{Value: pk}, "sk": &dbtypes.AttributeValueMemberS{Value: sk},
			"kind": &dbtypes.AttributeValueMemberS{Value: "event"}, "hold": &dbtypes.AttributeValueMemberBOOL{Value: hold},
		}
		if _, err := cfg.DynamoDB().PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(stack.Tables["Table"]), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(what string, cond func(lines []string) bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if cond(readLines(t, echo)) {
				return
			}
		}
		t.Fatalf("timed out waiting for %s: echo file %q", what, readLines(t, echo))
	}
	// The held event's batch is in flight first; then the other key's event is handled.
	put("WS#default#EV", "held", true)
	wait("the held batch", func(lines []string) bool { return slices.Contains(lines, "holding") })
	put("WS#default#EV#1", "free", false)
	wait("free", func(lines []string) bool { return len(handled(t, lines)) > 0 })
	if got := handled(t, readLines(t, echo)); strings.Join(got, " ") != "free" {
		t.Fatalf("handled %v while held was held, want free alone", got)
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wait("held", func(lines []string) bool { return len(handled(t, lines)) > 1 })
	if got := handled(t, readLines(t, echo)); strings.Join(got, " ") != "free held" {
		t.Errorf("handled %v, want free then held", got)
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 8<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// handled lists the sort keys of the records of the events in lines (the "arn" and "holding"
// lines skipped).
func handled(t *testing.T, lines []string) []string {
	t.Helper()
	var sks []string
	for _, l := range lines {
		if strings.HasPrefix(l, "arn ") || l == "holding" {
			continue
		}
		var ev events.DynamoDBEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("event %q: %v", l, err)
		}
		for _, r := range ev.Records {
			sks = append(sks, r.Change.Keys["sk"].String())
		}
	}
	return sks
}
