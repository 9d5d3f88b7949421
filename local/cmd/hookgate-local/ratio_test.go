package main

import (
	"strings"
	"testing"
)

func TestRatios(t *testing.T) {
	in := `goos: linux
BenchmarkInbound/baseline-2   	  100	     10000 ns/op	    6673 B/op	      20 allocs/op
BenchmarkInbound/handler-2    	  100	     15000 ns/op	    1873 B/op	      30 allocs/op
BenchmarkOther-2              	  100	       500 ns/op
BenchmarkAppend/baseline-2    	  100	      4000 ns/op	   250.0 appends/s	         0 retries/append
BenchmarkAppend/processes-2-2 	  100	      2000 ns/op	   500.0 appends/s	         0 retries/append
`
	var out strings.Builder
	if err := ratios(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.Contains(got, "Inbound/handler") || !strings.Contains(got, "1.50x") {
		t.Fatalf("no 1.50x ratio for the handler:\n%s", got)
	}
	// A reported metric gets its ratio against the baseline's, and none when the baseline's is 0.
	if !strings.Contains(got, "appends/s") || !strings.Contains(got, "2.00x") || !strings.Contains(got, "0.50x") {
		t.Fatalf("no ratios for Append/processes-2 and its appends/s:\n%s", got)
	}
	if line, _, _ := strings.Cut(got[strings.LastIndex(got, "retries/append"):], "\n"); !strings.HasSuffix(line, " -") {
		t.Fatalf("a ratio against a zero baseline:\n%s", got)
	}
	if strings.Contains(got[strings.Index(got, "benchmark vs"):], "Other") {
		t.Fatalf("a benchmark without a baseline got a ratio:\n%s", got)
	}
}
