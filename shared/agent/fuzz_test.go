package agent

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseReply: the webhook reply parser never panics, fails only with a permanent *Error of a
// short reason, and whatever it accepts respects the limits.
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{
		``, `null`, `{"type":"speak","text":"hi"}`, `[{"type":"speak","text":"a"},{"type":"dance"}]`,
		`{"actions":[{"type":"request_approval","prompt":"ok?","options":["yes","no"]}]}`,
		`{"actions":null}`, `{"type":"speak"}`, `[1,2]`, `{"type":7}`, `"x"`, `[{"type":"speak","text":"\ud800"}]`,
		`{"actions":{"type":"speak","text":"a"}}`, `[` + strings.Repeat(`{"type":"x"},`, 20) + `{"type":"x"}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseReply(body)
		if err != nil {
			ae, ok := err.(*Error)
			if !ok || ae.Retryable || ae.Reason == "" || len(ae.Reason) > 200 || !utf8.ValidString(ae.Reason) {
				t.Fatalf("error %#v", err)
			}
			if len(r.Actions) != 0 {
				t.Fatalf("actions with an error: %+v", r)
			}
			return
		}
		if len(body) > MaxReplyBytes || !json.Valid(body) && strings.Trim(string(body), " \t\r\n") != "" {
			t.Fatalf("accepted %d bytes of invalid or oversized JSON", len(body))
		}
		if len(r.Actions) > MaxActions {
			t.Fatalf("%d actions", len(r.Actions))
		}
		for _, a := range r.Actions {
			switch a.Type {
			case ActionSpeak:
				if strings.TrimSpace(a.Text) == "" || len(a.Text) > MaxTextBytes || a.Prompt != "" || a.Options != nil {
					t.Fatalf("speak %+v", a)
				}
			case ActionRequestApproval:
				if strings.TrimSpace(a.Prompt) == "" || len(a.Prompt) > MaxTextBytes || a.Text != "" || len(a.Options) > MaxOptions {
					t.Fatalf("request_approval %+v", a)
				}
				for _, o := range a.Options {
					if strings.TrimSpace(o) == "" || len(o) > MaxOptionBytes {
						t.Fatalf("option %q", o)
					}
				}
			default:
				t.Fatalf("action of type %q kept", a.Type)
			}
		}
		// What is accepted is stable: the reply re-encoded as {"actions": …} parses the same.
		again, err := parseReply([]byte(mustJSON(map[string]any{"actions": r.Actions})))
		if err != nil || len(again.Actions) != len(r.Actions) || again.Text() != r.Text() {
			t.Fatalf("re-encoded reply: %+v, %v; was %+v", again, err, r)
		}
	})
}

// FuzzParseRegistry: never panics; an accepted registry has valid names, "echo" among them, and
// an agent for each; a rejection never quotes a secret or API key of the input. (Errors do quote
// names, field names and types, so a key that is also one of those is not checked; nor is text
// too short or too plain to tell from the messages' own words: a checked key starts with whsec_
// or sk-, which no message text contains, and is 12 bytes or more.)
func FuzzParseRegistry(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"a":{"type":"echo"}}`,
		`{"hook":{"type":"webhook","url":"https://x.example/h?t=1","secret":"` + testSecret + `","timeoutSeconds":5}}`,
		`{"gpt":{"type":"openai","model":"m","apiKey":"sk-0123456789abcdef","maxHistory":3}}`,
		`{"gpt":{"type":"openai","apiKey":"sk-0123456789abcdef"},"Bad":{"type":"webhook","secret":"whsec_aaaaaaaaaaaaaaaaaaaa"}}`,
		`{"a":{"type":"echo"},"a":{}}`, `[`, `{"a":null}`, `{"a":{"type":"webhook","url":null}}`,
		`{"a":{"type":"openai","model":"m","apiKey":"sk-with space-0123"}}`,
	} {
		f.Add(s, "sk-fallback-0123456789")
	}
	f.Fuzz(func(t *testing.T, cfg, fallback string) {
		r, err := ParseRegistry(cfg, Options{OpenAIAPIKey: fallback})
		if err != nil {
			msg := err.Error()
			secrets, quoted := inputSecrets(cfg)
			if !strings.Contains(cfg, fallback) {
				secrets = append(secrets, fallback)
			}
			for _, s := range secrets {
				checked := len(s) >= 12 && (strings.HasPrefix(s, "whsec_") || strings.HasPrefix(s, "sk-")) && !strings.Contains(quoted, s)
				if checked && strings.Contains(msg, s) {
					t.Fatalf("error %q quotes the secret %q", msg, s)
				}
			}
			return
		}
		names := r.Names()
		hasEcho := false
		for _, n := range names {
			hasEcho = hasEcho || n == "echo"
			if n != "echo" && !validName(n) {
				t.Fatalf("accepted name %q", n)
			}
			if a, err := r.Get(n); err != nil || a == nil {
				t.Fatalf("Get(%q) = %v, %v", n, a, err)
			}
			if h := r.HistoryLimit(n); h < 0 || h > MaxHistoryLimit {
				t.Fatalf("HistoryLimit(%q) = %d", n, h)
			}
		}
		if !hasEcho {
			t.Fatalf("names %v lack echo", names)
		}
	})
}

// inputSecrets returns the string values of every "secret" and "apiKey" field in cfg, and the
// text errors may quote: every object key and "type" value, joined.
func inputSecrets(cfg string) (secrets []string, quoted string) {
	var top map[string]json.RawMessage
	if json.Unmarshal([]byte(cfg), &top) != nil {
		return nil, ""
	}
	var b strings.Builder
	for name, raw := range top {
		b.WriteString(name + "\x00")
		var spec map[string]json.RawMessage
		if json.Unmarshal(raw, &spec) != nil {
			continue
		}
		for k, v := range spec {
			b.WriteString(k + "\x00")
			var s string
			if json.Unmarshal(v, &s) != nil {
				continue
			}
			switch k {
			case "secret", "apiKey":
				secrets = append(secrets, s)
			case "type":
				b.WriteString(s + "\x00")
			}
		}
	}
	return secrets, b.String()
}
