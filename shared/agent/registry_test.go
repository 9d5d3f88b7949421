package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestParseRegistryEmpty(t *testing.T) {
	for _, s := range []string{"", "  \n", "{}"} {
		r, err := ParseRegistry(s, Options{})
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if !reflect.DeepEqual(r.Names(), []string{"echo"}) {
			t.Errorf("%q: names %v", s, r.Names())
		}
		for _, name := range []string{"", "echo"} {
			if a, err := r.Get(name); err != nil || a != (Echo{}) {
				t.Errorf("%q: Get(%q) = %v, %v", s, name, a, err)
			}
		}
		if _, err := r.Get("nope"); err == nil || err.Error() != `unknown agent "nope"` {
			t.Errorf("Get(nope): %v", err)
		}
	}
}

func TestParseRegistry(t *testing.T) {
	chat := newChatServer(t, 200, completion("from the model"))
	hook, hooked := server(t, 200, `{"type":"speak","text":"from the hook"}`)
	cfg := mustJSON(map[string]any{
		"support": map[string]any{"type": "webhook", "url": hook.URL + "/hook?token=abc", "secret": testSecret, "timeoutSeconds": 10},
		"gpt":     map[string]any{"type": "openai", "baseUrl": chat.srv.URL + "/v1", "model": "gpt-4o-mini", "system": "Be kind.", "maxHistory": 50},
		"local":   map[string]any{"type": "openai", "baseUrl": chat.srv.URL, "model": "llama3", "apiKey": "sk-local-key"},
		"demo_1":  map[string]any{"type": "echo"},
	})
	r, err := ParseRegistry(cfg, Options{OpenAIAPIKey: "sk-fallback-key", Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Names(), []string{"demo_1", "echo", "gpt", "local", "support"}; !reflect.DeepEqual(got, want) {
		t.Errorf("names %v, want %v", got, want)
	}
	r.Names()[0] = "changed"
	if r.Names()[0] != "demo_1" {
		t.Error("Names returns the registry's own slice")
	}
	for name, want := range map[string]int{"gpt": 50, "local": DefaultMaxHistory, "support": 0, "echo": 0, "demo_1": 0, "nope": 0, "": 0} {
		if got := r.HistoryLimit(name); got != want {
			t.Errorf("HistoryLimit(%q) = %d, want %d", name, got, want)
		}
	}
	// Each agent is built once and is the kind configured.
	for name, want := range map[string]string{"support": "*agent.Webhook", "gpt": "*agent.OpenAI", "demo_1": "agent.Echo"} {
		a1, _ := r.Get(name)
		a2, _ := r.Get(name)
		if got := fmt.Sprintf("%T", a1); got != want || a1 != a2 {
			t.Errorf("Get(%q) = %T (same: %t), want %s", name, a1, a1 == a2, want)
		}
	}

	speak := Request{Kind: KindUserSpeak, RunID: "run_1", Text: "hi"}
	for name, auth := range map[string]string{"gpt": "Bearer sk-fallback-key", "local": "Bearer sk-local-key"} {
		a, _ := r.Get(name)
		reply, err := a.Respond(context.Background(), speak)
		if err != nil || reply.Text() != "from the model" {
			t.Fatalf("%s: %+v, %v", name, reply, err)
		}
		got := <-chat.req
		if got.auth != auth || got.body.Messages[0].Role != map[string]string{"gpt": "system", "local": "user"}[name] {
			t.Errorf("%s: auth %q, messages %+v", name, got.auth, got.body.Messages)
		}
	}
	a, _ := r.Get("support")
	if reply, err := a.Respond(context.Background(), speak); err != nil || reply.Text() != "from the hook" {
		t.Fatalf("support: %+v, %v", reply, err)
	}
	if got := <-hooked; got.path != "/hook?token=abc" || got.header.Get("webhook-timestamp") != fmt.Sprint(fixedNow.Unix()) {
		t.Errorf("webhook request %s %v", got.path, got.header)
	}
}

func TestParseRegistryInvalid(t *testing.T) {
	const key = "sk-very-secret-api-key"
	hook := func(extra string) string {
		return `{"a":{"type":"webhook","url":"https://agent.example.com/h","secret":"` + testSecret + `"` + extra + `}}`
	}
	cases := []struct {
		name, cfg string
		has       []string
	}{
		{"array", `[]`, []string{"agents must be a JSON object of agent name to spec"}},
		{"string", `"echo"`, []string{"agents must be a JSON object"}},
		{"truncated", `{"a":{"type":`, []string{"not valid JSON"}},
		{"syntax", `{"a" {}}`, []string{"not valid JSON", "at byte"}},
		{"trailing", `{"a":{"type":"echo"}} {}`, []string{"unexpected data after the JSON object"}},
		{"duplicate", `{"a":{"type":"echo"},"a":{"type":"echo"}}`, []string{`agent "a" is defined twice`}},
		{"echo redefined", `{"echo":{"type":"echo"}}`, []string{`agent "echo": is built in`}},
		{"upper case name", `{"Bot":{"type":"echo"}}`, []string{`agent "Bot": name must be 1 to 64 characters`}},
		{"empty name", `{"":{"type":"echo"}}`, []string{`agent "": name must be`}},
		{"long name", `{"` + strings.Repeat("a", 65) + `":{"type":"echo"}}`, []string{"name must be"}},
		{"spec not object", `{"a":"webhook"}`, []string{`agent "a": spec must be a JSON object`}},
		{"no type", `{"a":{}}`, []string{`agent "a": type is required`}},
		{"unknown type", `{"a":{"type":"claude"}}`, []string{`unknown type "claude"`}},
		{"webhook without url and secret", `{"a":{"type":"webhook"}}`, []string{"url is required", "secret is required"}},
		{"webhook bad url", `{"a":{"type":"webhook","url":"ftp://x/?token=tok12345","secret":"` + testSecret + `"}}`, []string{"url must be an absolute http or https URL"}},
		{"webhook bad secret", `{"a":{"type":"webhook","url":"https://x","secret":"whsec_c2hvcnQ="}}`, []string{"secret must be whsec_"}},
		{"webhook plain secret", `{"a":{"type":"webhook","url":"https://x","secret":"hunter2-hunter2"}}`, []string{"secret must be whsec_"}},
		{"timeout too long", hook(`,"timeoutSeconds":61`), []string{"timeoutSeconds must be from 1 to 60"}},
		{"timeout negative", hook(`,"timeoutSeconds":-1`), []string{"timeoutSeconds must be from 1 to 60"}},
		{"timeout not integer", hook(`,"timeoutSeconds":2.5`), []string{"timeoutSeconds must be an integer"}},
		{"field of another type", hook(`,"model":"m","baseUrl":"https://x"`), []string{"model does not apply to a webhook agent", "baseUrl does not apply to a webhook agent (a webhook agent takes url)"}},
		{"unknown field", hook(`,"retries":3`), []string{`unknown field "retries"`}},
		{"field case", `{"a":{"type":"openai","model":"m","apikey":"` + key + `"}}`, []string{`unknown field "apikey"`}},
		{"field twice", hook(`,"timeoutSeconds":5,"timeoutSeconds":6`), []string{`field "timeoutSeconds" is given twice`}},
		{"secret not a string", `{"a":{"type":"webhook","url":"https://x","secret":12345678}}`, []string{"secret must be a string"}},
		{"openai without model", `{"a":{"type":"openai","apiKey":"` + key + `"}}`, []string{"model is required"}},
		{"openai url", `{"a":{"type":"openai","model":"m","url":"https://x"}}`, []string{"url does not apply to an openai agent (an openai agent takes baseUrl)"}},
		{"openai bad base", `{"a":{"type":"openai","model":"m","baseUrl":"api.openai.com"}}`, []string{"baseUrl must be an absolute"}},
		{"openai history", `{"a":{"type":"openai","model":"m","maxHistory":201}}`, []string{"maxHistory must be from 0 to 200"}},
		{"openai key with space", `{"a":{"type":"openai","model":"m","apiKey":"` + key + ` x"}}`, []string{"api key contains white space"}},
		{"echo with options", `{"a":{"type":"echo","timeoutSeconds":5}}`, []string{"timeoutSeconds does not apply to an echo agent"}},
		{"format verbs in a name", `{"%s%d":{"type":"echo"}}`, []string{`agent "%s%d": name must be`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseRegistry(c.cfg, Options{OpenAIAPIKey: key})
			if err == nil {
				t.Fatalf("accepted: %v", r.Names())
			}
			for _, h := range c.has {
				if !strings.Contains(err.Error(), h) {
					t.Errorf("error %q lacks %q", err, h)
				}
			}
			for _, s := range []string{testSecret, strings.TrimPrefix(testSecret, "whsec_"), key, "hunter2", "tok12345", "c2hvcnQ", "%!"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q quotes %q", err, s)
				}
			}
		})
	}
}

// Every problem of every agent is reported at once.
func TestParseRegistryAllProblems(t *testing.T) {
	cfg := `{
		"echo": {"type": "echo"},
		"Hook": {"type": "webhook", "url": "notaurl?token=tok-abcdef", "secret": "whsec_short-secret-value"},
		"gpt": {"type": "openai", "maxHistory": 500, "timeoutSeconds": 90, "apiKey": "sk-abcdefghijkl"},
		"odd": {"type": "carrier-pigeon"},
		"ok": {"type": "echo"}
	}`
	_, err := ParseRegistry(cfg, Options{})
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{
		`agent "echo": is built in and cannot be redefined`,
		`agent "Hook": name must be 1 to 64 characters of a-z, 0-9, _ and -`,
		`agent "Hook": url must be an absolute http or https URL`,
		`agent "Hook": secret must be whsec_ followed by base64 of 24 to 64 bytes`,
		`agent "gpt": timeoutSeconds must be from 1 to 60`,
		`agent "gpt": model is required`,
		`agent "gpt": maxHistory must be from 0 to 200 (0: the default, 20)`,
		`agent "odd": unknown type "carrier-pigeon" (known: echo, webhook, openai)`,
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, s := range []string{"tok-abcdef", "short-secret", "sk-abcdefghijkl"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error quotes %q", s)
		}
	}
}

func TestSpecPrinting(t *testing.T) {
	s := Spec{Type: TypeWebhook, URL: "https://x/?token=tok-123456", Secret: testSecret, APIKey: "sk-123456"}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("spec", "spec", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), b.String()} {
		for _, secret := range []string{testSecret, "sk-123456", "tok-123456"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s quotes %q", out, secret)
			}
		}
	}
}
