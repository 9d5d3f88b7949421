package cost_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/local/cost"
)

var (
	update = flag.Bool("update", false, "write the measured units to testdata/units.json")
	report = flag.Bool("report", false, "print the cost table (make cost)")
)

// pinned is where each scenario's units per webhook are pinned.
const pinned = "testdata/units.json"

// TestCostScenariosPinned runs the scenarios through the metered local stack and fails when a
// scenario's units per webhook rose by more than 5% over the pinned figures. Lower the pin with
// `go test ./local/cost -run Pinned -update` (or `make cost PIN=1`) when a change saves units;
// raise it the same way, on purpose, when a change is worth its cost.
func TestCostScenariosPinned(t *testing.T) {
	root, _ := filepath.Abs("../..")
	results, err := cost.Run(context.Background(), cost.Options{Root: root, BinDir: binDir(t, root)})
	if err != nil {
		t.Fatal(err)
	}
	// Scenario (a) again on a stack with 4 shards, its threads in shard 3: a sharded log must cost
	// what one shard costs. After the others, not beside them: a second stack's load beside the
	// long tests' spaced retries made two of them share a 100 ms window.
	sharded, err := cost.Run(context.Background(), cost.Options{Root: root, BinDir: binDir(t, root), Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	results = append(results, sharded...)
	for _, r := range results {
		if r.Name == "a4" && (r.ShardEvents[3] < 4*r.Webhooks || len(r.ShardEvents) != 1) {
			t.Errorf("scenario a4 added events to shards %v; want every one in shard 3 (4 per webhook)", r.ShardEvents)
		}
	}
	mem, err := cost.Memory(root)
	if err != nil {
		t.Fatal(err)
	}
	prices, durations := cost.ListPrices(), cost.Durations()
	if *report {
		cost.Report(os.Stdout, results, mem, prices, durations)
	}
	got := map[string]cost.Units{}
	for _, r := range results {
		got[r.Name] = cost.Figure(r, mem, prices, durations).Units
		if r.Name == "a" {
			deliveryWritesAtOnce(t, r)
		}
	}
	var ra, ra4 float64
	for _, r := range results {
		switch r.Name {
		case "a":
			ra = perWebhookReads(r)
		case "a4":
			ra4 = perWebhookReads(r)
		}
	}
	if a, a4 := got["a"], got["a4"]; a4.WriteUnits != a.WriteUnits || a4.SQSRequests != a.SQSRequests || ra4 != ra {
		t.Errorf("scenario a4 (4 shards) wrote %g units, read %g and sent %g SQS requests per webhook; (a) %g, %g and %g: a sharded log must cost what one shard costs",
			a4.WriteUnits, ra4, a4.SQSRequests, a.WriteUnits, ra, a.SQSRequests)
	}
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(pinned, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	raw, err := os.ReadFile(pinned)
	if err != nil {
		t.Fatalf("%v (write it with -update)", err)
	}
	var want map[string]cost.Units
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	for name, g := range got {
		w, ok := want[name]
		if !ok {
			t.Errorf("scenario %s has no pinned units (run with -update)", name)
			continue
		}
		// The sync call's and the stream's waits poll: their reads vary by a unit with timing. The
		// stream reader of (e) reconnects after each window, and a window ends when events come:
		// how the run's events fall into windows varies with the machine's load, and each extra
		// window is a request, an invocation and a read of the thread's index (seen beside the
		// burst: 4 to 5.5 requests, 10.5 to 14.5 read units): (e) pins its writes and SQS only.
		window, reads := 0.0, 1.0
		if name == "e" {
			window, reads = math.Inf(1), math.Inf(1)
		}
		for _, c := range []struct {
			what      string
			got, want float64
			slack     float64 // units allowed above 5%
		}{
			{"write units", g.WriteUnits, w.WriteUnits, 0},
			{"read units", g.ReadUnits, w.ReadUnits, reads},
			{"SQS requests", g.SQSRequests, w.SQSRequests, 0},
			{"Lambda requests", g.LambdaRequests, w.LambdaRequests, window},
			{"HTTP requests", g.HTTPRequests, w.HTTPRequests, window},
		} {
			if c.got > c.want*1.05+c.slack {
				t.Errorf("scenario %s: %s per webhook rose from %g to %g (over 5%%): make it cheaper, or pin it on purpose with -update", name, c.what, c.want, c.got)
			}
		}
	}
	if t.Failed() {
		var b strings.Builder
		cost.Report(&b, results, mem, prices, durations)
		fmt.Fprintln(os.Stderr, b.String())
	}
}

// deliveryWritesAtOnce checks what scenario (a)'s delivery, which succeeds at once, writes on its
// item and its gsi1 copy: 3 units per webhook, the put of the item already claimed by the first
// attempt with its index copy, then the record. (4 when the fan-out wrote the item and the attempt
// claimed it with an update of its own.)
func deliveryWritesAtOnce(t *testing.T, r cost.Result) {
	t.Helper()
	var units float64
	var lines []string
	for _, l := range r.Usage.Lines() {
		if l.Kind == "WS#DLV/DLV" && l.WriteUnits > 0 {
			units += l.WriteUnits
			lines = append(lines, fmt.Sprintf("%s %s %g", l.Op, l.Index, l.WriteUnits))
		}
	}
	if per := units / float64(r.Webhooks); per > 3 {
		t.Errorf("scenario a: its delivery wrote %g units per webhook (%s for %d), want 3", per, strings.Join(lines, "; "), r.Webhooks)
	}
}

// perWebhookReads is a scenario's read units per webhook but those that depend on a run's timing
// or its processes, not on its webhooks: a worker's agent and seed caches expire after 10 s (a
// stack warmed up further from the scenario reads them again), and each process checks a
// workspace's shard mark once (the shard-0 counter's GetItem).
func perWebhookReads(r cost.Result) float64 {
	var units float64
	for _, l := range r.Usage.Lines() {
		switch {
		case strings.HasPrefix(l.Kind, "WS#AGT"), strings.HasPrefix(l.Kind, "WS#SEED"), l.Kind == "WS#EVSEQ/SEQ" && l.Op == "GetItem":
		default:
			units += l.ReadUnits
		}
	}
	return units / float64(r.Webhooks)
}

func binDir(t *testing.T, root string) string {
	if d := os.Getenv("HOOKGATE_BIN_DIR"); d != "" {
		return d
	}
	cmd := exec.Command("make", "-s", "bootstraps")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make bootstraps: %v\n%s", err, out)
	}
	return filepath.Join(root, ".build", runtime.GOARCH)
}

// Every function of the template has an assumed duration: one without would be billed 0 GB-s.
func TestEveryFunctionHasADuration(t *testing.T) {
	root, _ := filepath.Abs("../..")
	mem, err := cost.Memory(root)
	if err != nil {
		t.Fatal(err)
	}
	durations := cost.Durations()
	for fn := range mem {
		if durations[fn] <= 0 {
			t.Errorf("%s has no duration in cost.Durations", fn)
		}
	}
}
