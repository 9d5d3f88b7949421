package lambdart

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Lambda's recursive loop detection, as local mode enforces it. Lambda hands each invocation an
// X-Ray trace header (Lambda-Runtime-Trace-Id; the runtime puts it in _X_AMZN_TRACE_ID). The AWS
// SDK sends it with every request as X-Amzn-Trace-Id, and SQS keeps it with a message as the
// AWSTraceHeader system attribute. Its Lineage field counts, per function, the invocations of the
// chain of requests the trace belongs to; Lambda adds one at each invocation, and stops an
// invocation that would be a function's 17th in one chain ("more than 16 times"), unless the
// function's RecursiveLoop is Allow. For an SQS event source the stopped message is not
// processed: it returns after its visibility timeout, and the queue's redrive policy moves it to
// its dead-letter queue.

// MaxChain is how many times one chain of requests may invoke a function.
const MaxChain = 16

// RecursiveInvocationError is an invocation Lambda stopped as part of a recursive loop.
type RecursiveInvocationError struct {
	Function string
	Count    int // invocations of the function in the chain, with the one stopped
}

func (e *RecursiveInvocationError) Error() string {
	return fmt.Sprintf("lambdart: %s: RecursiveInvocationException: invocation %d of the function in one chain of requests "+
		"(Lambda stops a chain past %d; RecursiveLoop: Allow turns this off)", e.Function, e.Count, MaxChain)
}

// lineageID is the Lineage key of a function: a short hash of its ARN.
func lineageID(arn string) string {
	sum := sha256.Sum256([]byte(arn))
	return hex.EncodeToString(sum[:4])
}

// traceFields splits a trace header into its fields, in order.
func traceFields(header string) (keys, vals []string) {
	for f := range strings.SplitSeq(header, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		if k != "" {
			keys, vals = append(keys, k), append(vals, v)
		}
	}
	return keys, vals
}

// ChainCount is how many times the chain of requests of trace header has invoked the function
// with this ARN: its count in the header's Lineage ("id:count" entries joined by "|"; an entry
// "version:id:count" is read too). A header without one counts 0.
func ChainCount(header, arn string) int {
	id := lineageID(arn)
	keys, vals := traceFields(header)
	for i, k := range keys {
		if k != "Lineage" {
			continue
		}
		for e := range strings.SplitSeq(vals[i], "|") {
			parts := strings.Split(e, ":")
			if len(parts) >= 2 && parts[len(parts)-2] == id {
				n, _ := strconv.Atoi(parts[len(parts)-1])
				return n
			}
		}
	}
	return 0
}

// nextTrace is the trace header of an invocation of the function with this ARN caused by a request
// that carried header ("" for none, which starts a new chain): the same root, a new parent, and
// the function's Lineage count one higher. It returns the new count too.
func nextTrace(header, arn string) (string, int) {
	id := lineageID(arn)
	keys, vals := traceFields(header)
	root, lineage := "", ""
	for i, k := range keys {
		switch k {
		case "Root":
			root = vals[i]
		case "Lineage":
			lineage = vals[i]
		}
	}
	if root == "" {
		root, lineage = newRoot(), ""
	}
	count := ChainCount(header, arn) + 1
	entries := []string{id + ":" + strconv.Itoa(count)}
	for e := range strings.SplitSeq(lineage, "|") {
		parts := strings.Split(e, ":")
		if e != "" && !(len(parts) >= 2 && parts[len(parts)-2] == id) {
			entries = append(entries, e)
		}
	}
	var parent [8]byte
	_, _ = rand.Read(parent[:])
	return fmt.Sprintf("Root=%s;Parent=%x;Sampled=0;Lineage=%s", root, parent, strings.Join(entries, "|")), count
}

func newRoot() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("1-%08x-%x", time.Now().Unix(), b)
}
