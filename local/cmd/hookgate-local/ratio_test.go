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
`
	var out strings.Builder
	if err := ratios(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.Contains(got, "Inbound/handler") || !strings.Contains(got, "1.50x") {
		t.Fatalf("no 1.50x ratio for the handler:\n%s", got)
	}
	if strings.Contains(got[strings.Index(got, "benchmark vs"):], "Other") {
		t.Fatalf("a benchmark without a baseline got a ratio:\n%s", got)
	}
}
