package chaos

import (
	"fmt"
	"slices"
	"strings"
)

// Fault names, as FAULTS= and -faults take them.
const (
	KillWorker     = "kill-worker"     // SIGKILL of a worker bootstrap, mid-invocation when it is busy
	KillFanout     = "kill-fanout"     // the same for the fan-out
	KillDelivery   = "kill-delivery"   // the same for the delivery function
	KillDynamoDB   = "kill-dynamodb"   // DynamoDB Local killed, restarted on its data a second later
	PauseSQS       = "pause-sqs"       // fauxqs stopped (SIGSTOP) for PauseFor, then resumed (SIGCONT)
	ReceiverFaults = "receiver-faults" // a subscriber fails 30% of first attempts and hangs on 2%
	AgentFaults    = "agent-faults"    // the agent fails 5% of first calls and times out on 2%
	OddBytes       = "odd-bytes"       // 4% of messages carry characters SQS refuses, or invalid UTF-8
)

// AllFaults lists every fault, in the order the table names them.
var AllFaults = []string{KillWorker, KillFanout, KillDelivery, KillDynamoDB, PauseSQS, ReceiverFaults, AgentFaults, OddBytes}

// Faults is a set of fault names.
type Faults map[string]bool

// ParseFaults reads "all", "none" (or "") or a comma-separated list of fault names.
func ParseFaults(s string) (Faults, error) {
	f := Faults{}
	switch strings.TrimSpace(s) {
	case "", "none":
		return f, nil
	case "all":
		for _, n := range AllFaults {
			f[n] = true
		}
		return f, nil
	}
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if !slices.Contains(AllFaults, n) {
			return nil, fmt.Errorf("unknown fault %q (all, none, or some of %s)", n, strings.Join(AllFaults, ", "))
		}
		f[n] = true
	}
	return f, nil
}

// String lists the set in AllFaults' order; "none" when empty.
func (f Faults) String() string {
	var out []string
	for _, n := range AllFaults {
		if f[n] {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ",")
}
