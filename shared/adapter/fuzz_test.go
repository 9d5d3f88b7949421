package adapter

import (
	"strings"
	"testing"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/queue"
)

// FuzzParseMessage: any body is either a message within the limits or a 4xx, never a panic.
func FuzzParseMessage(f *testing.F) {
	for _, seed := range []string{
		`{"text":"hi"}`, `{"text":"hi","user":"ada","eventId":"e1","data":{"k":[1,2]},"sync":true,"timeoutMs":500}`,
		`{"text":"x","replyUrl":"https://hooks.example.com/cb?x=1"}`, `{"text":"x","replyUrl":"https://u:p@hooks.example.com/"}`,
		`{"text":" "}`, `[]`, `{"text":1}`, `{"text":"a"} {}`, `{"text":"a","data":null}`, "{\"text\":\"\\u0000\"}",
	} {
		f.Add([]byte(seed))
	}
	as, err := ParseAdapters(`[{"name":"ops","replyHosts":["hooks.example.com"]}]`, "fuzz-secret-0123456789", "ws", 0)
	if err != nil {
		f.Fatal(err)
	}
	a := as["ops"]
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseMessage(body, a, false)
		if err != nil {
			if c := apierr.CodeOf(err); c != apierr.Invalid && c != apierr.TooLarge {
				t.Fatalf("error code %s for %q", c, body)
			}
			return
		}
		switch {
		case strings.TrimSpace(m.Text) == "", queue.JSONLen(m.Text)+len(m.Data) > maxStored, len(m.User) > maxUser, len(m.EventID) > maxEventID,
			m.TimeoutMS < 0 || m.TimeoutMS > MaxTimeoutMS, len(m.Data) > 0 && m.Data[0] != '{':
			t.Fatalf("accepted out of bounds: %+v", m)
		}
		if m.ReplyURL != "" && checkReplyURL(m.ReplyURL, a, false) != nil {
			t.Fatalf("accepted replyUrl %q", m.ReplyURL)
		}
	})
}

// FuzzParseAdapters: any configuration is accepted whole or refused, and no error quotes a secret.
func FuzzParseAdapters(f *testing.F) {
	for _, seed := range []string{``, `[{"name":"a"}]`, `[{"name":"a","secret":"zzzzzzzzzzzzzzzzzzzz","replyHosts":["x.io"],"maxInFlight":3}]`, `[{"name":"A"}]`, `{}`, `[null]`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		const secret = "default-secret-0123456789"
		as, err := ParseAdapters(text, secret, "ws", 0)
		if err != nil {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error quotes the default secret: %v", err)
			}
			return
		}
		for name, a := range as {
			if !namePattern.MatchString(name) || len(a.Secrets) == 0 || a.MaxInFlight < 1 || a.MaxBodyBytes < 1024 || a.secrets == nil {
				t.Fatalf("accepted %+v", a)
			}
		}
	})
}
