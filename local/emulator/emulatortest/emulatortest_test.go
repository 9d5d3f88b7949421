package emulatortest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/local/emulator"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

func TestOncePerBinary(t *testing.T) {
	first := SQS(t)
	if second := SQS(t); second != first {
		t.Fatalf("second call %s, first %s: want one emulator per test binary", second, first)
	}
	if os.Getenv(EnvSQSEndpoint) == "" && !strings.HasPrefix(first, "http://127.0.0.1:") {
		t.Errorf("endpoint %s", first)
	}
}

func TestEnvOverride(t *testing.T) {
	t.Setenv(EnvDynamoEndpoint, "http://127.0.0.1:1")
	if got := Dynamo(t); got != "http://127.0.0.1:1" {
		t.Fatalf("Dynamo = %s, want the override", got)
	}
}

// fatalTB records Fatalf instead of stopping the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper()             {}
func (f *fatalTB) Logf(string, ...any) {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
}

func TestStartFailureFailsEveryCaller(t *testing.T) {
	var l lazy
	starts := 0
	start := func(context.Context, string) (*emulator.Process, error) {
		starts++
		return nil, errors.New("no java")
	}
	for i := 0; i < 2; i++ {
		tb := &fatalTB{TB: t}
		l.get(tb, "test emulator", "HOOKGATE_TEST_UNSET_ENDPOINT", start)
		if !strings.Contains(tb.msg, "no java") || !strings.Contains(tb.msg, "HOOKGATE_TEST_UNSET_ENDPOINT") {
			t.Errorf("call %d: Fatalf(%q), want the reason and the override variable", i, tb.msg)
		}
	}
	if starts != 1 {
		t.Errorf("%d start attempts, want 1", starts)
	}
}
