package emf

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseChecksTheSpecification(t *testing.T) {
	good := `{"Door":"generic","InboundAccepted":2,"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"Hookgate","Dimensions":[["Door"]],"Metrics":[{"Name":"InboundAccepted","Unit":"Count"}]}]}}`
	ds, err := Parse([]byte(good))
	if err != nil || len(ds) != 1 || ds[0].Dimensions["Door"] != "generic" || ds[0].Values[0] != 2 {
		t.Fatalf("%+v %v", ds, err)
	}
	many := make([]string, 31)
	for i := range many {
		many[i] = fmt.Sprintf("%q", fmt.Sprint("d", i))
	}
	for name, line := range map[string]string{
		"not JSON":            `Door=generic`,
		"no timestamp":        `{"x":1,"_aws":{"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"x"}]}]}}`,
		"no namespace":        `{"x":1,"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Dimensions":[[]],"Metrics":[{"Name":"x"}]}]}}`,
		"metric missing":      `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"x"}]}]}}`,
		"metric not a number": `{"x":"1","_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"x"}]}]}}`,
		"dimension missing":   `{"x":1,"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Door"]],"Metrics":[{"Name":"x"}]}]}}`,
		"dimension a number":  `{"x":1,"Door":3,"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Door"]],"Metrics":[{"Name":"x"}]}]}}`,
		"31 dimensions":       `{"x":1,"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[` + strings.Join(many, ",") + `]],"Metrics":[{"Name":"x"}]}]}}`,
		"no metrics":          `{"x":1,"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[]}]}}`,
	} {
		if _, err := Parse([]byte(line)); err == nil {
			t.Errorf("%s: accepted %s", name, line)
		}
	}
}

func TestAggregatorSums(t *testing.T) {
	a := NewAggregator()
	line := `{"Target":"webhook","Deliveries":1,"AttemptLatency":[10,30],"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"H","Dimensions":[["Target"]],"Metrics":[{"Name":"Deliveries","Unit":"Count"},{"Name":"AttemptLatency","Unit":"Milliseconds"}]}]}}`
	a.Line([]byte(line))
	a.Line([]byte(line))
	a.Line([]byte(`{"level":"INFO","msg":"not a metric"}`))
	a.Line([]byte(`{"_aws":{"Timestamp":1}}`))
	stats, bad := a.Snapshot()
	if bad != 1 || len(stats) != 2 {
		t.Fatalf("%+v bad %d", stats, bad)
	}
	if s := stats[0]; s.Name != "AttemptLatency" || s.Count != 4 || s.Sum != 80 || s.Max != 30 {
		t.Fatalf("%+v", s)
	}
	if s := stats[1]; s.Name != "Deliveries" || s.Sum != 2 {
		t.Fatalf("%+v", s)
	}
	if got := Summary(stats); got != "AttemptLatency{Target=webhook}(n=4 avg=20.0ms) Deliveries{Target=webhook}=2" {
		t.Fatalf("summary %q", got)
	}
}
