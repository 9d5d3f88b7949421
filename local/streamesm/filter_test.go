package streamesm

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// record is a stream record as a function gets it, for the filter tests.
func record(name string, img map[string]events.DynamoDBAttributeValue) item {
	ev := events.DynamoDBEventRecord{
		AWSRegion: "us-east-1", EventID: "1", EventName: name, EventSource: "aws:dynamodb", EventVersion: "1.1",
		EventSourceArn: "arn:aws:dynamodb:us-east-1:000000000000:table/T/stream/x",
		Change: events.DynamoDBStreamRecord{
			ApproximateCreationDateTime: events.SecondsEpochTime{Time: time.Unix(1700000000, 0)},
			Keys:                        map[string]events.DynamoDBAttributeValue{"pk": img["pk"]},
			NewImage:                    img, SequenceNumber: "5", SizeBytes: 10, StreamViewType: "NEW_IMAGE",
		},
	}
	data, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return item{rec: ev, data: data}
}

func TestFilters(t *testing.T) {
	event := record("INSERT", map[string]events.DynamoDBAttributeValue{
		"pk":    events.NewStringAttribute("WS#default#EV"),
		"kind":  events.NewStringAttribute("event"),
		"type":  events.NewStringAttribute("run.completed"),
		"n":     events.NewNumberAttribute("42"),
		"tags":  events.NewStringSetAttribute([]string{"a", "b"}),
		"flag":  events.NewBooleanAttribute(true),
		"none":  events.NewNullAttribute(),
		"inner": events.NewMapAttribute(map[string]events.DynamoDBAttributeValue{"x": events.NewStringAttribute("y")}),
	})
	other := record("MODIFY", map[string]events.DynamoDBAttributeValue{
		"pk":   events.NewStringAttribute("THR#1"),
		"kind": events.NewStringAttribute("thread"),
	})
	const brief = `{"eventName":["INSERT"],"dynamodb":{"NewImage":{"kind":{"S":["event"]}}}}`
	cases := []struct {
		name           string
		pattern        string
		event, otherOK bool
	}{
		{"template pattern", brief, true, false},
		{"event name list", `{"eventName":["INSERT","MODIFY"]}`, true, true},
		{"other event name", `{"eventName":["REMOVE"]}`, false, false},
		{"prefix", `{"dynamodb":{"Keys":{"pk":{"S":[{"prefix":"WS#"}]}}}}`, true, false},
		{"prefix no match", `{"dynamodb":{"Keys":{"pk":{"S":[{"prefix":"ws#"}]}}}}`, false, false},
		{"suffix", `{"dynamodb":{"NewImage":{"pk":{"S":[{"suffix":"#EV"}]}}}}`, true, false},
		{"equals ignore case", `{"eventName":[{"equals-ignore-case":"insert"}]}`, true, false},
		{"exact or prefix", `{"dynamodb":{"NewImage":{"type":{"S":["x",{"prefix":"run."}]}}}}`, true, false},
		{"number as string", `{"dynamodb":{"NewImage":{"n":{"N":["42"]}}}}`, true, false},
		{"number as number does not match a string", `{"dynamodb":{"NewImage":{"n":{"N":[42]}}}}`, false, false},
		{"numeric reads N strings", `{"dynamodb":{"NewImage":{"n":{"N":[{"numeric":[">",40,"<=",42]}]}}}}`, true, false},
		{"numeric out of range", `{"dynamodb":{"NewImage":{"n":{"N":[{"numeric":["<",42]}]}}}}`, false, false},
		{"numeric on a number", `{"dynamodb":{"SizeBytes":[{"numeric":["=",10]}]}}`, true, true},
		{"exact number", `{"dynamodb":{"SizeBytes":[10.0]}}`, true, true},
		{"set element", `{"dynamodb":{"NewImage":{"tags":{"SS":["b"]}}}}`, true, false},
		{"boolean", `{"dynamodb":{"NewImage":{"flag":{"BOOL":[true]}}}}`, true, false},
		{"null", `{"dynamodb":{"NewImage":{"none":{"NULL":[true]}}}}`, true, false},
		{"nested map", `{"dynamodb":{"NewImage":{"inner":{"M":{"x":{"S":["y"]}}}}}}`, true, false},
		{"exists", `{"dynamodb":{"NewImage":{"type":[{"exists":true}]}}}`, true, false},
		{"not exists", `{"dynamodb":{"NewImage":{"type":[{"exists":false}]}}}`, false, true},
		{"not exists under a missing object", `{"dynamodb":{"OldImage":{"type":[{"exists":false}]}}}`, true, true},
		{"anything but", `{"dynamodb":{"NewImage":{"kind":{"S":[{"anything-but":["thread","run"]}]}}}}`, true, false},
		{"anything but one value", `{"eventName":[{"anything-but":"MODIFY"}]}`, true, false},
		{"anything but prefix", `{"dynamodb":{"Keys":{"pk":{"S":[{"anything-but":{"prefix":"THR#"}}]}}}}`, true, false},
		{"anything but needs the field", `{"dynamodb":{"NewImage":{"missing":{"S":[{"anything-but":["x"]}]}}}}`, false, false},
		{"all keys must match", `{"eventName":["INSERT"],"dynamodb":{"NewImage":{"kind":{"S":["thread"]}}}}`, false, false},
		{"object pattern on a leaf", `{"eventName":{"S":["INSERT"]}}`, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := newMapping(Config{Function: "F", StreamARN: "arn:aws:dynamodb:r:1:table/T/stream/x", Filters: []string{c.pattern}}, newFakeStream(), fakeInvoker{})
			if err != nil {
				t.Fatal(err)
			}
			if got := m.matches(event); got != c.event {
				t.Errorf("event record: match %v, want %v", got, c.event)
			}
			if got := m.matches(other); got != c.otherOK {
				t.Errorf("other record: match %v, want %v", got, c.otherOK)
			}
		})
	}
	// Filters are alternatives; no filters let everything through.
	m, err := newMapping(Config{Function: "F", StreamARN: "arn:aws:dynamodb:r:1:table/T/stream/x",
		Filters: []string{`{"eventName":["REMOVE"]}`, `{"eventName":["MODIFY"]}`}}, newFakeStream(), fakeInvoker{})
	if err != nil {
		t.Fatal(err)
	}
	if m.matches(event) || !m.matches(other) {
		t.Error("two filters: want only the MODIFY record")
	}
	m, _ = newMapping(Config{Function: "F", StreamARN: "arn:aws:dynamodb:r:1:table/T/stream/x"}, newFakeStream(), fakeInvoker{})
	if !m.matches(event) || !m.matches(other) {
		t.Error("no filters: want every record")
	}
}

func TestFilterErrors(t *testing.T) {
	cases := map[string]string{
		`nope`:                                "filter 0: pattern is not a JSON object",
		`["INSERT"]`:                          "filter 0: pattern is not a JSON object",
		`null`:                                "filter 0: pattern is not a JSON object",
		`{"a":["x"]} {}`:                      "text after the pattern's JSON object",
		`{}`:                                  "pattern: empty pattern",
		`{"a":{}}`:                            "a: empty pattern",
		`{"a":"x"}`:                           `a: must be a list of values or an object, not "x"`,
		`{"a":[]}`:                            "a: empty list of values",
		`{"a":{"b":[["x"]]}}`:                 `a.b: unsupported value ["x"]`,
		`{"a":[{"prefix":"x","suffix":"y"}]}`: "an operator object has one key",
		`{"a":[{"wildcard":"x*"}]}`:           `a: unsupported filter operator "wildcard"`,
		`{"a":[{"prefix":1}]}`:                `a: "prefix" needs a string, not 1`,
		`{"a":[{"exists":"yes"}]}`:            `"exists" needs true or false`,
		`{"a":[{"anything-but":[]}]}`:         `"anything-but" needs values`,
		`{"a":[{"anything-but":[true]}]}`:     `"anything-but" needs strings or numbers`,
		`{"a":[{"anything-but":{"x":1}}]}`:    `"anything-but" needs values or {"prefix": ...}`,
		`{"a":[{"numeric":[">"]}]}`:           `"numeric" needs [op, number]`,
		`{"a":[{"numeric":["~",1]}]}`:         `"numeric" needs an operator of =, <, <=, >, >=`,
		`{"a":[{"numeric":[">","1"]}]}`:       `"numeric" needs [op, number]`,
	}
	for src, want := range cases {
		_, err := compileFilters([]string{src})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", src, err, want)
		}
	}
	// Run reports a bad filter as a configuration error, with its function.
	err := Run(t.Context(), Config{Function: "F", StreamARN: "arn:aws:dynamodb:r:1:table/T/stream/x", Filters: []string{`{"a":["x"]}`, `[]`}}, newFakeStream(), fakeInvoker{})
	if err == nil || !strings.Contains(err.Error(), "streamesm F: filter 1:") {
		t.Errorf("Run: %v", err)
	}
}

// TestFilterRecordDocument: filters see the record with the JSON names of the event.
func TestFilterRecordDocument(t *testing.T) {
	doc, err := document(record("INSERT", map[string]events.DynamoDBAttributeValue{"pk": events.NewStringAttribute("p")}).data)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(doc)
	for _, want := range []string{`"eventName":"INSERT"`, `"dynamodb":{`, `"NewImage":{"pk":{"S":"p"}}`, `"SizeBytes":10`, `"ApproximateCreationDateTime":1700000000`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("document %s lacks %s", data, want)
		}
	}
}
