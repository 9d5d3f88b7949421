package envcfg

import (
	"strings"
	"testing"
)

func TestReaderReportsEveryProblem(t *testing.T) {
	env := map[string]string{"T": "true", "A": " a ", "N": "12", "BAD": "x", "L": "one, two,,"}
	r := New(func(k string) string { return env[k] })
	if r.Required("A") != "a" || r.Optional("MISSING", "d") != "d" || r.Int("N", 0, 1, 20) != 12 {
		t.Fatal("values read wrong")
	}
	if got := r.List("L"); len(got) != 2 || got[1] != "two" {
		t.Fatalf("List = %v", got)
	}
	if !r.Bool("T", false) || r.Bool("UNSET", false) {
		t.Fatal("Bool read wrong")
	}
	r.Bool("BAD", true)
	r.Required("MISSING")
	r.Int("BAD", 5, 0, 10)
	r.Int("N", 5, 0, 10)
	err := r.Err()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"MISSING is required", "BAD must be an integer", "BAD must be true or false", "N must be an integer from 0 to 10"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestSecretChecksLengthWithoutShowingIt(t *testing.T) {
	env := map[string]string{"SHORT": "abc", "LONG": "0123456789abcdef"}
	r := New(func(k string) string { return env[k] })
	if got := r.Secret("LONG", 16); got != env["LONG"] {
		t.Fatalf("LONG = %q", got)
	}
	r.Secret("SHORT", 16)
	r.Secret("MISSING", 16)
	err := r.Err()
	if err == nil || !strings.Contains(err.Error(), "SHORT must be at least 16 characters") || !strings.Contains(err.Error(), "MISSING is required") || strings.Contains(err.Error(), "abc") {
		t.Fatalf("err = %v", err)
	}
}
