package chaos_test

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/hookgate/hookgate/local/chaos"
)

// binDir returns the folder of host-arch bootstraps: HOOKGATE_BIN_DIR (make test sets it), or the
// Makefile builds them.
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

// The CI-sized chaos run: a few hundred messages, every fault once, queues' visibility compressed
// so that a killed or failed batch comes back in seconds. Nothing may be lost, doubled or stuck,
// every event reaches each matching subscriber, and no messages may sit in flight with no
// invocation (a lost receive) past the stall threshold without a kill or failure to explain it.
func TestChaosEveryFaultOnce(t *testing.T) {
	root, _ := filepath.Abs("../..")
	c := chaos.Config{
		Root: root, BinDir: binDir(t, root), Messages: 100, Connections: 8,
		Faults:     func() chaos.Faults { f, _ := chaos.ParseFaults("all"); return f }(),
		Visibility: 15 * time.Second, StallAfter: 10 * time.Second, DeliveryTimeout: 3 * time.Second, PauseFor: 11 * time.Second,
		// Waits compressed as the queues' visibility is: the faults open the * subscriber's
		// circuit, and with the template's 60 s cool-down its deliveries waited a minute or two for
		// a probe (CI once: 338 deliveries still delayed at 2 minutes); a hang (a timeout) waits
		// the backoff floor, 60 s, before its retry; the worker's messages that failed while
		// DynamoDB Local was down wait 10 s, 20 s, 40 s … (here 2 s, 4 s, 8 s …), and a run whose
		// agent failed twice waits a minute for its third try (here 5 s); a delivery that failed
		// twice waits 5 minutes for its third attempt on the default schedule (here 4 s: the
		// schedule's own test is TestDefaultScheduleCompletesUnderTheRecursionRule; here its 8
		// attempts are kept and its waits shortened, so that the run's time to converge does not
		// hang on which deliveries a fault hit twice).
		Params: map[string]string{
			"DeliveryCircuitBreaker": "70,10,60,5", "DeliveryBackoffFloorSeconds": "3", "FailureDelaySeconds": "2",
			"AgentRetrySchedule": "0s,2s,5s,10s", "DeliverySchedule": "0s,2s,4s,8s,15s,30s,30s,30s",
		},
		// The retry sweep each 5 s instead of each minute: a delivery whose queue message a fault
		// lost (the killed DynamoDB Local, the paused fauxqs) waited up to a minute for it, and the
		// run's time to converge with it (46 s to 130 s).
		SchedulePeriod: 5 * time.Second,
		ConvergeLimit:  5 * time.Minute, Concurrency: 2, Out: testWriter{t},
	}
	if testing.Verbose() {
		c.FunctionLog, c.Logger = os.Stderr, slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	rep, err := chaos.Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep.Table())
	if rep.Failed() {
		t.Fatalf("chaos run failed: %v", rep.Failures)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }
