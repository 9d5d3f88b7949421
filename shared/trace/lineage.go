package trace

import (
	"context"
	"strconv"
	"strings"
)

// LambdaChainLimit is how many times one chain of requests may invoke a Lambda function: its
// recursive loop detection stops the invocation past it (for an SQS event source the message
// goes, unprocessed, to the queue's dead-letter queue).
const LambdaChainLimit = 16

// Lineage is the place of the current invocation in its chain of requests, as Lambda's recursive
// loop detection counts it: the highest count in the Lineage field of the invocation's X-Ray trace
// header (aws-lambda-go puts the header in the context under "x-amzn-trace-id"; entries "id:count"
// or "version:id:count" joined by "|", one per function of the chain). 0 outside Lambda or without
// one. The highest count is this function's own or more, so a caller that keeps its sends under
// LambdaChainLimit by it is never stopped. It fails closed: a count that does not read as a small
// number counts as LambdaChainLimit+1, and no count is reported past that.
//
// An SQS batch gives its invocation one trace, one message's: messages the invocation sends
// continue that chain, not their own. So a message's chain can be longer than the sends it came
// through, and only the invocation's header says how long.
func Lineage(ctx context.Context) int {
	header, _ := ctx.Value("x-amzn-trace-id").(string)
	most := 0
	for f := range strings.SplitSeq(header, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		if k != "Lineage" {
			continue
		}
		for e := range strings.SplitSeq(v, "|") {
			parts := strings.Split(e, ":")
			if len(parts) < 2 {
				continue
			}
			n, err := strconv.Atoi(parts[len(parts)-1])
			if err != nil || n < 0 || n > LambdaChainLimit {
				n = LambdaChainLimit + 1
			}
			most = max(most, n)
		}
	}
	return most
}
