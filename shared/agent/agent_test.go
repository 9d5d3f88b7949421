package agent

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func TestReplyTextAndApproval(t *testing.T) {
	speak := func(s string) Action { return Action{Type: ActionSpeak, Text: s} }
	ask := func(p string) Action {
		return Action{Type: ActionRequestApproval, Prompt: p, Options: []string{"yes", "no"}}
	}
	cases := []struct {
		name     string
		actions  []Action
		text     string
		approval string // prompt of Approval(), "" for nil
	}{
		{"none", nil, "", ""},
		{"one speak", []Action{speak("hi")}, "hi", ""},
		{"speaks joined", []Action{speak("a"), ask("ok?"), speak("b")}, "a\n\nb", "ok?"},
		{"first approval", []Action{ask("first"), ask("second")}, "", "first"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Reply{Actions: c.actions}
			if got := r.Text(); got != c.text {
				t.Errorf("Text() = %q, want %q", got, c.text)
			}
			a := r.Approval()
			switch {
			case c.approval == "" && a != nil:
				t.Errorf("Approval() = %+v, want nil", a)
			case c.approval != "" && (a == nil || a.Prompt != c.approval):
				t.Errorf("Approval() = %+v, want prompt %q", a, c.approval)
			}
			if a != nil {
				a.Prompt = "changed" // a copy: the reply is not modified
				if r.Approval().Prompt == "changed" {
					t.Error("Approval() returned a pointer into the reply")
				}
			}
		})
	}
}

func TestEcho(t *testing.T) {
	cases := []struct {
		name    string
		req     Request
		want    []Action
		wantErr bool
	}{
		{"user speak", Request{Kind: KindUserSpeak, Text: "hello"}, []Action{{Type: ActionSpeak, Text: "hello"}}, false},
		{"blank text", Request{Kind: KindUserSpeak, Text: "  "}, nil, false},
		{"session start", Request{Kind: KindSessionStart, Text: "hello"}, nil, false},
		{"approval", Request{Kind: KindApproval, Decision: &Decision{Approved: true}}, nil, false},
		{"approval without decision", Request{Kind: KindApproval}, nil, true},
		{"unknown kind", Request{Kind: "dance"}, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Echo{}.Respond(context.Background(), c.req)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %t", err, c.wantErr)
			}
			if err != nil && Retryable(err) {
				t.Errorf("error %v is retryable", err)
			}
			if !reflect.DeepEqual(got.Actions, c.want) {
				t.Errorf("actions %+v, want %+v", got.Actions, c.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestRetryable(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"retryable Error", &Error{Retryable: true, Reason: "agent answered 503"}, true},
		{"permanent Error", &Error{Reason: "agent answered 400"}, false},
		{"wrapped retryable", fmt.Errorf("run r1: %w", &Error{Retryable: true}), true},
		{"wrapped permanent", fmt.Errorf("run r1: %w", &Error{}), false},
		{"deadline", context.DeadlineExceeded, true},
		{"wrapped deadline", fmt.Errorf("call: %w", context.DeadlineExceeded), true},
		{"net timeout", timeoutErr{}, true},
		{"plain", errors.New("boom"), false},
		{"canceled", context.Canceled, false},
	}
	for _, c := range cases {
		if got := Retryable(c.err); got != c.want {
			t.Errorf("%s: Retryable = %t, want %t", c.name, got, c.want)
		}
	}
	if got := (&Error{Reason: "agent answered 400"}).Error(); got != "agent answered 400" {
		t.Errorf("Error() = %q", got)
	}
}

func TestNewCompat(t *testing.T) {
	for _, name := range []string{"", "echo"} {
		a, err := New(name)
		if err != nil || a != (Echo{}) {
			t.Errorf("New(%q) = %v, %v; want Echo", name, a, err)
		}
	}
	if _, err := New("gpt"); err == nil || err.Error() != `unknown agent "gpt"` {
		t.Errorf("New(gpt) error = %v", err)
	}
}

func TestRedact(t *testing.T) {
	const key = "sk-live-0123456789abcdef"
	cases := []struct {
		name, in, want string
		n              int
	}{
		{"whole", "bad key " + key + " given", "bad key [redacted] given", 200},
		{"twice", key + key, "[redacted][redacted]", 200},
		{"cut at the end", "bad key " + key[:12], "bad key [redacted]", 200},
		{"white space", "a\n\n\tb\x00c  ", "a b c", 200},
		{"long", "abcdef", "abc…", 3},
		{"invalid utf-8", "a\xffb", "a\uFFFDb", 200},
		{"formed by collapsing", "sk-live-\n0123456789abcdef", "sk-live- 0123456789abcdef", 200},
	}
	for _, c := range cases {
		if got := redact(c.in, c.n, key); got != c.want {
			t.Errorf("%s: redact = %q, want %q", c.name, got, c.want)
		}
	}
	// A secret with a space, split by a newline in the body, is still found after collapsing.
	if got := redact("token ab\ncd e!", 200, "ab cd"); got != "token [redacted] e!" {
		t.Errorf("collapsed secret: %q", got)
	}
}
