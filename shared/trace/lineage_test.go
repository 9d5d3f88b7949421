package trace

import (
	"context"
	"testing"
)

func TestLineage(t *testing.T) {
	for header, want := range map[string]int{
		"": 0,
		"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1":            0,
		"Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1;Lineage=a87bd80c:3":                 3,
		"Root=1-5759e988-bd862e3fe1be46a994272793;Lineage=1:a87bd80c:7|1:0badf00d:12;Sampled=1": 12,
		"Lineage=16": 0, // no function id: not an entry
		"Root=1-5759e988-bd862e3fe1be46a994272793; Lineage = a87bd80c:5":                 0, // "Lineage " is not the key
		"Root=1-5759e988-bd862e3fe1be46a994272793;Lineage=a87bd80c:2;Lineage=0badf00d:9": 9,
		"Lineage=a87bd80c:16": 16,
		// What does not read as a count fails closed, past the limit, and nothing overflows.
		"Lineage=a87bd80c:x|b:2":                   17,
		"Lineage=a87bd80c:-4":                      17,
		"Lineage=a87bd80c:0x10":                    17,
		"Lineage=a87bd80c:17":                      17,
		"Lineage=a87bd80c:9223372036854775807":     17,
		"Lineage=a87bd80c:99999999999999999999999": 17,
	} {
		//lint:ignore SA1029 aws-lambda-go's own key for the invocation's trace header
		ctx := context.WithValue(context.Background(), "x-amzn-trace-id", header)
		if got := Lineage(ctx); got != want {
			t.Errorf("Lineage(%q) = %d, want %d", header, got, want)
		}
	}
	if Lineage(context.Background()) != 0 {
		t.Error("no header: want 0")
	}
}
