package stack

import (
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/local/template"
)

// A function whose environment variables are over Lambda's 4 KB does not start locally, as its
// deploy would fail; the error names the function. At the limit it starts.
func TestFunctionEnvironmentOverFourKBFailsToStart(t *testing.T) {
	tpl, err := template.Parse([]byte(`
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Big:
    Type: String
Resources:
  BigFunction:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          HOOKGATE_BIG: !Ref Big
          HOOKGATE_OTHER: "x"
`))
	if err != nil {
		t.Fatal(err)
	}
	fn := tpl.Functions()[0]
	// {"HOOKGATE_BIG":"…","HOOKGATE_OTHER":"x"} is 40 bytes around the value.
	for _, c := range []struct {
		value int
		fails bool
	}{{4096 - 40, false}, {4096 - 39, true}} {
		s := &Stack{Params: map[string]string{"Big": strings.Repeat("v", c.value)}}
		_, err := s.functionConfig(tpl, fn, Options{}.withDefaults())
		if (err != nil) != c.fails {
			t.Fatalf("value of %d bytes: %v", c.value, err)
		}
		if c.fails && (!strings.Contains(err.Error(), "BigFunction") || !strings.Contains(err.Error(), "4096")) {
			t.Fatalf("error %q does not name the function and the limit", err)
		}
	}
}

// Schedule events run locally at their rate; cron expressions each minute.
func TestSchedulePeriod(t *testing.T) {
	for expr, want := range map[string]time.Duration{
		"rate(1 minute)": time.Minute, "rate(5 minutes)": 5 * time.Minute, "rate(2 hours)": 2 * time.Hour,
		"rate(1 day)": 24 * time.Hour, "cron(0/5 * * * ? *)": time.Minute,
	} {
		if got, err := schedulePeriod(expr); err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", expr, got, err, want)
		}
	}
	for _, bad := range []string{"rate(0 minutes)", "rate(1 fortnight)", "every minute"} {
		if _, err := schedulePeriod(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
