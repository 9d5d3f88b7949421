package fanoutdlq

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// TestParseLambdaExample reads the on-failure record of AWS's documentation (Lambda with DynamoDB:
// "Example on-failure destination record").
func TestParseLambdaExample(t *testing.T) {
	body, err := os.ReadFile("testdata/ddb-on-failure.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	want := BatchInfo{
		ShardID: "shardId-00000001573689847184-864758bb", StartSequenceNumber: "800000000003126276362",
		EndSequenceNumber: "800000000003126276362", ApproximateArrivalOfFirstRecord: "2019-11-14T00:13:19Z",
		ApproximateArrivalOfLastRecord: "2019-11-14T00:13:19Z", BatchSize: 1,
		StreamArn: "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/2019-11-14T00:04:06.388",
	}
	if p.Batch != want {
		t.Errorf("batch %+v, want %+v", p.Batch, want)
	}
	if p.RequestContext.Condition != "RetryAttemptsExhausted" || p.RequestContext.ApproximateInvokeCount != 1 || p.ResponseContext.FunctionError != "Unhandled" {
		t.Errorf("contexts %+v %+v", p.RequestContext, p.ResponseContext)
	}
	if got := regionOf(p.Batch.StreamArn); got != "us-east-2" {
		t.Errorf("region %q", got)
	}
	// What local mode writes reads back the same.
	again, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if q, err := Parse(again); err != nil || q != p {
		t.Errorf("round trip %+v (%v)", q, err)
	}
}

func TestParseRefuses(t *testing.T) {
	good := `"shardId":"s","startSequenceNumber":"100","endSequenceNumber":"200","batchSize":2,"streamArn":"arn:aws:dynamodb:r:1:table/t/stream/x"`
	cases := map[string]string{
		"not json":              `{`,
		"kinesis batch":         `{"KinesisBatchInfo":{` + good + `}}`,
		"whole records":         `{"Records":[{"eventID":"1"}]}`,
		"no shard":              `{"DDBStreamBatchInfo":{"startSequenceNumber":"1","endSequenceNumber":"2","streamArn":"a"}}`,
		"no stream":             `{"DDBStreamBatchInfo":{"shardId":"s","startSequenceNumber":"1","endSequenceNumber":"2"}}`,
		"sequence not a number": `{"DDBStreamBatchInfo":{"shardId":"s","startSequenceNumber":"1e3","endSequenceNumber":"2","streamArn":"a"}}`,
		"empty sequence":        `{"DDBStreamBatchInfo":{"shardId":"s","startSequenceNumber":"","endSequenceNumber":"2","streamArn":"a"}}`,
		"start after end":       `{"DDBStreamBatchInfo":{"shardId":"s","startSequenceNumber":"300","endSequenceNumber":"200","streamArn":"a"}}`,
		"negative batch":        `{"DDBStreamBatchInfo":{"shardId":"s","startSequenceNumber":"1","endSequenceNumber":"2","streamArn":"a","batchSize":-1}}`,
		"huge sequence":         `{"DDBStreamBatchInfo":{"shardId":"s","startSequenceNumber":"` + strings.Repeat("9", 65) + `","endSequenceNumber":"2","streamArn":"a"}}`,
	}
	for name, body := range cases {
		if p, err := Parse([]byte(body)); err == nil {
			t.Errorf("%s: parsed as %+v", name, p)
		}
	}
	if _, err := Parse([]byte(`{"DDBStreamBatchInfo":{` + good + `}}`)); err != nil {
		t.Errorf("good pointer: %v", err)
	}
}

func TestCompareSeq(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"1", "2", -1}, {"2", "1", 1}, {"10", "9", 1}, {"9", "10", -1}, {"007", "7", 0},
		{"800000000003126276362", "800000000003126276362", 0},
		{"800000000003126276362", "800000000003126276363", -1},
		{"99999999999999999999", "100000000000000000000", -1},
	}
	for _, c := range cases {
		if got := CompareSeq(c.a, c.b); got != c.want {
			t.Errorf("CompareSeq(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestArrival(t *testing.T) {
	at := time.Date(2019, 11, 14, 1, 13, 19, 900e6, time.FixedZone("x", 3600))
	if got := Arrival(at); got != "2019-11-14T00:13:19Z" {
		t.Errorf("Arrival = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	body, _ := os.ReadFile("testdata/ddb-on-failure.json")
	f.Add(body)
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := Parse(body)
		if err != nil {
			return
		}
		if p.Batch.ShardID == "" || p.Batch.StreamArn == "" || CompareSeq(p.Batch.StartSequenceNumber, p.Batch.EndSequenceNumber) > 0 {
			t.Fatalf("accepted %+v", p.Batch)
		}
	})
}
