package stack

import (
	"strings"
	"testing"

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
