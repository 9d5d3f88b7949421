// Package fanoutdlq replays FanoutDLQ. Lambda sends a stream event source's on-failure
// destination only pointers to the batch it gave up on (shard and sequence number range), never the
// records; the replay reads those records back from the table's stream and fans them out again.
package fanoutdlq

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Pointer is the message Lambda writes to a DynamoDB stream event source's on-failure destination.
type Pointer struct {
	RequestContext  RequestContext  `json:"requestContext"`
	ResponseContext ResponseContext `json:"responseContext"`
	Version         string          `json:"version"`
	Timestamp       string          `json:"timestamp"`
	Batch           BatchInfo       `json:"DDBStreamBatchInfo"`
}

// RequestContext says which function gave up on the batch, and why.
type RequestContext struct {
	RequestID              string `json:"requestId"`
	FunctionArn            string `json:"functionArn"`
	Condition              string `json:"condition"` // RetryAttemptsExhausted, RecordAgeExceeded, …
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

// ResponseContext is the last invocation's outcome.
type ResponseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	FunctionError   string `json:"functionError,omitempty"`
}

// BatchInfo names the discarded records: one shard's sequence numbers from start to end, both
// included (the records between that the event source's filter dropped are in that range too).
type BatchInfo struct {
	ShardID                         string `json:"shardId"`
	StartSequenceNumber             string `json:"startSequenceNumber"`
	EndSequenceNumber               string `json:"endSequenceNumber"`
	ApproximateArrivalOfFirstRecord string `json:"approximateArrivalOfFirstRecord"`
	ApproximateArrivalOfLastRecord  string `json:"approximateArrivalOfLastRecord"`
	BatchSize                       int    `json:"batchSize"`
	StreamArn                       string `json:"streamArn"`
}

// Arrival formats a record's approximate arrival as Lambda does for DynamoDB streams (seconds).
func Arrival(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// Parse reads a FanoutDLQ message body and checks that it names a batch the replay can find.
func Parse(body []byte) (Pointer, error) {
	var p Pointer
	if err := json.Unmarshal(body, &p); err != nil {
		return Pointer{}, fmt.Errorf("not an on-failure record: %w", err)
	}
	b := p.Batch
	switch {
	case b.ShardID == "" || b.StreamArn == "":
		return Pointer{}, errors.New("not a DynamoDB stream on-failure record: no DDBStreamBatchInfo shardId or streamArn")
	case !isSeq(b.StartSequenceNumber) || !isSeq(b.EndSequenceNumber):
		return Pointer{}, fmt.Errorf("sequence numbers %q..%q are not decimal numbers", b.StartSequenceNumber, b.EndSequenceNumber)
	case CompareSeq(b.StartSequenceNumber, b.EndSequenceNumber) > 0:
		return Pointer{}, fmt.Errorf("start sequence number %s is after the end %s", b.StartSequenceNumber, b.EndSequenceNumber)
	case b.BatchSize < 0:
		return Pointer{}, fmt.Errorf("negative batch size %d", b.BatchSize)
	}
	return p, nil
}

// isSeq reports whether s is a stream sequence number: decimal digits, at most 64 of them.
func isSeq(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// CompareSeq compares two sequence numbers as the numbers they are (they outgrow 64 bits and may
// differ in length): -1, 0 or +1.
func CompareSeq(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}
