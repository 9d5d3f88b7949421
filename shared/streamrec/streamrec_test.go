package streamrec

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

type (
	avS    = types.AttributeValueMemberS
	avN    = types.AttributeValueMemberN
	avB    = types.AttributeValueMemberB
	avBOOL = types.AttributeValueMemberBOOL
	avNULL = types.AttributeValueMemberNULL
	avSS   = types.AttributeValueMemberSS
	avNS   = types.AttributeValueMemberNS
	avBS   = types.AttributeValueMemberBS
	avL    = types.AttributeValueMemberL
	avM    = types.AttributeValueMemberM
)

// compact removes the whitespace of a JSON text, for comparisons.
func compact(t *testing.T, data []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		t.Fatalf("compact %s: %v", data, err)
	}
	return buf.String()
}

func TestConvertValue(t *testing.T) {
	cases := []struct {
		name string
		in   types.AttributeValue
		want string
	}{
		{"string", &avS{Value: "héllo \"x\" <b>"}, `{"S":"héllo \"x\" \u003cb\u003e"}`},
		{"empty string", &avS{Value: ""}, `{"S":""}`},
		{"number", &avN{Value: "-1.5E+3"}, `{"N":"-1.5E+3"}`},
		{"binary", &avB{Value: []byte{0, 1, 255}}, `{"B":"AAH/"}`},
		{"empty binary", &avB{Value: []byte{}}, `{"B":""}`},
		{"nil binary", &avB{}, `{"B":""}`},
		{"true", &avBOOL{Value: true}, `{"BOOL":true}`},
		{"false", &avBOOL{Value: false}, `{"BOOL":false}`},
		{"null", &avNULL{Value: true}, `{"NULL":true}`},
		{"string set", &avSS{Value: []string{"b", "a"}}, `{"SS":["b","a"]}`},
		{"number set", &avNS{Value: []string{"10", "2.5"}}, `{"NS":["10","2.5"]}`},
		{"binary set", &avBS{Value: [][]byte{{1}, {2, 3}}}, `{"BS":["AQ==","AgM="]}`},
		{"empty list", &avL{Value: []types.AttributeValue{}}, `{"L":[]}`},
		{"nil list", &avL{}, `{"L":[]}`},
		{"empty map", &avM{Value: map[string]types.AttributeValue{}}, `{"M":{}}`},
		{"nil map", &avM{}, `{"M":{}}`},
		{"list of everything", &avL{Value: []types.AttributeValue{
			&avS{Value: "s"}, &avN{Value: "1"}, &avB{Value: []byte("b")}, &avBOOL{Value: true}, &avNULL{Value: true},
			&avSS{Value: []string{"x"}}, &avNS{Value: []string{"2"}}, &avBS{Value: [][]byte{[]byte("c")}},
			&avL{Value: []types.AttributeValue{}}, &avM{Value: map[string]types.AttributeValue{}},
		}}, `{"L":[{"S":"s"},{"N":"1"},{"B":"Yg=="},{"BOOL":true},{"NULL":true},{"SS":["x"]},{"NS":["2"]},{"BS":["Yw=="]},{"L":[]},{"M":{}}]}`},
		{"nested maps", &avM{Value: map[string]types.AttributeValue{
			"a": &avM{Value: map[string]types.AttributeValue{"b": &avL{Value: []types.AttributeValue{&avM{Value: map[string]types.AttributeValue{"c": &avN{Value: "0"}}}}}}},
			"e": &avM{Value: map[string]types.AttributeValue{}},
		}}, `{"M":{"a":{"M":{"b":{"L":[{"M":{"c":{"N":"0"}}}]}}},"e":{"M":{}}}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := convertValue(c.in)
			if err != nil {
				t.Fatal(err)
			}
			data, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if got := compact(t, data); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			// A function decoding the event gets the same value back.
			var back events.DynamoDBAttributeValue
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatalf("decode %s: %v", data, err)
			}
			again, err := json.Marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			if compact(t, again) != c.want {
				t.Errorf("round trip: %s", again)
			}
		})
	}
}

func TestConvertValueErrors(t *testing.T) {
	cases := []struct {
		name string
		in   types.AttributeValue
		want string
	}{
		{"nil", nil, "missing attribute value"},
		{"unknown member", &types.UnknownUnionMember{Tag: "X"}, `unknown attribute type "X"`},
		{"nested in a list", &avL{Value: []types.AttributeValue{&avS{}, nil}}, "[1]: missing attribute value"},
		{"nested in a map", &avM{Value: map[string]types.AttributeValue{"ok": &avS{}, "bad": &types.UnknownUnionMember{Tag: "Y"}}}, `bad: unknown attribute type "Y"`},
	}
	for _, c := range cases {
		if _, err := convertValue(c.in); err == nil || err.Error() != c.want {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

func TestConvertRecord(t *testing.T) {
	created := time.Unix(1700000040, 0)
	rec := types.Record{
		EventID:      aws.String("c4ca4238a0b923820dcc509a6f75849b"),
		EventName:    types.OperationTypeModify,
		EventSource:  aws.String("aws:dynamodb"),
		EventVersion: aws.String("1.1"),
		AwsRegion:    aws.String("ddblocal"),
		Dynamodb: &types.StreamRecord{
			ApproximateCreationDateTime: &created,
			Keys:                        map[string]types.AttributeValue{"pk": &avS{Value: "p"}, "sk": &avN{Value: "1"}},
			NewImage:                    map[string]types.AttributeValue{"pk": &avS{Value: "p"}, "sk": &avN{Value: "1"}, "v": &avBOOL{Value: true}},
			OldImage:                    map[string]types.AttributeValue{"pk": &avS{Value: "p"}, "sk": &avN{Value: "1"}},
			SequenceNumber:              aws.String("000000000000000000042"),
			SizeBytes:                   aws.Int64(26),
			StreamViewType:              types.StreamViewTypeNewAndOldImages,
		},
	}
	const arn = "arn:aws:dynamodb:us-east-1:000000000000:table/T/stream/2024-01-01T00:00:00.000"
	ev, err := Record(rec, arn, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	// The record as Lambda sends it: awsRegion is the mapping's region (not the stream record's),
	// the creation time is whole epoch seconds.
	want := `{"awsRegion":"us-east-1","dynamodb":{"ApproximateCreationDateTime":1700000040,` +
		`"Keys":{"pk":{"S":"p"},"sk":{"N":"1"}},"NewImage":{"pk":{"S":"p"},"sk":{"N":"1"},"v":{"BOOL":true}},` +
		`"OldImage":{"pk":{"S":"p"},"sk":{"N":"1"}},"SequenceNumber":"000000000000000000042","SizeBytes":26,` +
		`"StreamViewType":"NEW_AND_OLD_IMAGES"},"eventID":"c4ca4238a0b923820dcc509a6f75849b","eventName":"MODIFY",` +
		`"eventSource":"aws:dynamodb","eventVersion":"1.1","eventSourceARN":"` + arn + `"}`
	if got := compact(t, data); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var back events.DynamoDBEventRecord
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Change.ApproximateCreationDateTime.Equal(created) || back.Change.NewImage["v"].Boolean() != true || back.Change.Keys["sk"].Number() != "1" {
		t.Errorf("decoded %+v", back)
	}

	// A TTL deletion: KEYS_ONLY, no images, the service as user identity; defaults for what the
	// record leaves out.
	rec = types.Record{
		EventID:      aws.String("1"),
		EventName:    types.OperationTypeRemove,
		UserIdentity: &types.Identity{Type: aws.String("Service"), PrincipalId: aws.String("dynamodb.amazonaws.com")},
		Dynamodb: &types.StreamRecord{
			ApproximateCreationDateTime: &created,
			Keys:                        map[string]types.AttributeValue{"pk": &avS{Value: "p"}},
			SequenceNumber:              aws.String("7"), SizeBytes: aws.Int64(3), StreamViewType: types.StreamViewTypeKeysOnly,
		},
	}
	ev, err = Record(rec, arn, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	data, _ = json.Marshal(ev)
	want = `{"awsRegion":"eu-west-1","dynamodb":{"ApproximateCreationDateTime":1700000040,"Keys":{"pk":{"S":"p"}},` +
		`"SequenceNumber":"7","SizeBytes":3,"StreamViewType":"KEYS_ONLY"},"eventID":"1","eventName":"REMOVE",` +
		`"eventSource":"aws:dynamodb","eventVersion":"1.1","eventSourceARN":"` + arn + `",` +
		`"userIdentity":{"type":"Service","principalId":"dynamodb.amazonaws.com"}}`
	if got := compact(t, data); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}

	if _, err := Record(types.Record{EventID: aws.String("x")}, arn, "r"); err == nil {
		t.Error("record without dynamodb: no error")
	}
	rec.Dynamodb.NewImage = map[string]types.AttributeValue{"x": &types.UnknownUnionMember{Tag: "Z"}}
	if _, err := Record(rec, arn, "r"); err == nil || !strings.Contains(err.Error(), `record 7: NewImage: x: unknown attribute type "Z"`) {
		t.Errorf("bad image: %v", err)
	}
	// Without a creation time the record still has one (Lambda always sends it).
	rec.Dynamodb.NewImage, rec.Dynamodb.ApproximateCreationDateTime = nil, nil
	ev, err = Record(rec, arn, "r")
	if err != nil || time.Since(ev.Change.ApproximateCreationDateTime.Time) > time.Minute {
		t.Errorf("no creation time: %v, %v", ev.Change.ApproximateCreationDateTime, err)
	}
	if !reflect.DeepEqual(ev.Change.Keys, map[string]events.DynamoDBAttributeValue{"pk": events.NewStringAttribute("p")}) {
		t.Errorf("keys %v", ev.Change.Keys)
	}
}
