// Package emulatortest gives tests the endpoints of DynamoDB Local and fauxqs, started once per test
// binary on first use and stopped by Run, or taken from HOOKGATE_TEST_*_ENDPOINT when set.
package emulatortest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/local/emulator"
)

// Endpoint overrides: when set, the tests use that emulator (LocalStack, ElasticMQ, a DynamoDB Local
// in Docker...) and start none.
const (
	EnvDynamoEndpoint = "HOOKGATE_TEST_DYNAMODB_ENDPOINT"
	EnvSQSEndpoint    = "HOOKGATE_TEST_SQS_ENDPOINT"
	// EnvKMSEndpoint names a running KMS emulator; it must hold emulator.LocalKeyID.
	EnvKMSEndpoint = "HOOKGATE_TEST_KMS_ENDPOINT"
)

// startTimeout is generous: under `go test -race ./...` several test binaries start JVMs at once on
// a two-core machine.
const startTimeout = 90 * time.Second

// maxDynamos bounds RunSpread's DynamoDB Locals.
const maxDynamos = 4

// emulators is the one piece of package state: the emulators this test binary started. Dynamo
// hands out dynamos[0] unless RunSpread asked for more, then each in turn.
var emulators struct {
	dynamos  [maxDynamos]lazy
	spread   int
	next     atomic.Uint32
	sqs, kms lazy
}

// lazy starts one emulator on first use and remembers the outcome, good or bad.
type lazy struct {
	once     sync.Once
	mu       sync.Mutex
	proc     *emulator.Process
	endpoint string
	err      error
}

func (l *lazy) get(tb testing.TB, name, env string, startFn func(ctx context.Context, root string) (*emulator.Process, error)) string {
	tb.Helper()
	if ep := os.Getenv(env); ep != "" {
		return ep
	}
	l.once.Do(func() {
		t0 := time.Now()
		proc, err := func() (*emulator.Process, error) {
			wd, err := os.Getwd()
			if err != nil {
				return nil, err
			}
			root, err := emulator.FindRoot(wd)
			if err != nil {
				return nil, err
			}
			ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
			defer cancel()
			return startFn(ctx, root)
		}()
		l.mu.Lock()
		defer l.mu.Unlock()
		if err != nil {
			l.err = fmt.Errorf("%w (or set %s to use a running emulator)", err, env)
			return
		}
		l.proc, l.endpoint = proc, proc.Endpoint
		tb.Logf("emulatortest: started %s at %s in %s", name, proc.Endpoint, time.Since(t0).Round(time.Millisecond))
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		tb.Fatalf("emulatortest: %v", l.err)
	}
	return l.endpoint
}

func (l *lazy) stop() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.proc == nil {
		return nil
	}
	err := l.proc.Stop()
	l.proc = nil
	return err
}

// Run runs the tests and then stops the emulators they started. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(emulatortest.Run(m)) }
func Run(m *testing.M) int {
	code := m.Run()
	stop := []*lazy{&emulators.sqs, &emulators.kms}
	for i := range emulators.dynamos {
		stop = append(stop, &emulators.dynamos[i])
	}
	for _, l := range stop {
		if err := l.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "emulatortest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// RunSpread is Run for a package of many stacks: Dynamo hands out n DynamoDB Locals (at most 4) in
// turn instead of one. DynamoDB Local's cost per write grows with the stream records the whole
// process holds (about 6 times after 16,000 of them, measured; they are kept 24 hours, whatever
// table they came from), so tables spread over n processes cost each write less than all in one.
func RunSpread(m *testing.M, n int) int {
	emulators.spread = min(max(n, 1), maxDynamos)
	return Run(m)
}

// Dynamo returns the endpoint of a DynamoDB Local (in memory, shared database), started on the
// first call in this test binary (or one of RunSpread's, in turn). It fails the test if the
// emulator cannot be started.
func Dynamo(tb testing.TB) string {
	tb.Helper()
	i := 0
	if emulators.spread > 1 {
		i = int(emulators.next.Add(1)-1) % emulators.spread
	}
	return emulators.dynamos[i].get(tb, "DynamoDB Local", EnvDynamoEndpoint, func(ctx context.Context, root string) (*emulator.Process, error) {
		return emulator.StartDynamo(ctx, emulator.DynamoOptions{Root: root})
	})
}

// SQS returns the endpoint of a fauxqs, started on the first call in this test binary. It fails the
// test if the emulator cannot be started.
func SQS(tb testing.TB) string {
	tb.Helper()
	return emulators.sqs.get(tb, "fauxqs", EnvSQSEndpoint, func(ctx context.Context, root string) (*emulator.Process, error) {
		return emulator.StartSQS(ctx, emulator.SQSOptions{Root: root})
	})
}

// OwnDynamo starts a DynamoDB Local for this test alone and stops it when the test ends. Volume
// tests use it: DynamoDB Local serves every request of a process on one SQLite thread, and each idle
// stream reader of another test's stack rescans the records appended since its last one, so a
// burst sharing the process slows every test that shares it. With HOOKGATE_TEST_DYNAMODB_ENDPOINT
// set, that endpoint is returned instead.
func OwnDynamo(tb testing.TB) string {
	tb.Helper()
	if ep := os.Getenv(EnvDynamoEndpoint); ep != "" {
		return ep
	}
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	root, err := emulator.FindRoot(wd)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	proc, err := emulator.StartDynamo(ctx, emulator.DynamoOptions{Root: root})
	if err != nil {
		tb.Fatalf("emulatortest: own DynamoDB Local: %v", err)
	}
	tb.Cleanup(func() {
		if err := proc.Stop(); err != nil {
			tb.Errorf("emulatortest: stop own DynamoDB Local: %v", err)
		}
	})
	return proc.Endpoint
}

// KMS returns the endpoint of a local-kms holding emulator.LocalKeyID, started on the first call in
// this test binary. It fails the test if the emulator cannot be started.
func KMS(tb testing.TB) string {
	tb.Helper()
	return emulators.kms.get(tb, "local-kms", EnvKMSEndpoint, func(ctx context.Context, root string) (*emulator.Process, error) {
		return emulator.StartKMS(ctx, emulator.KMSOptions{Root: root})
	})
}
