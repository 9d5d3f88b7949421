package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

const token = "123456789:AAH-secret_Token-value0123456789xyz"

// bot is a fake Bot API: it records each sendMessage and answers from answer.
type bot struct {
	mu     sync.Mutex
	paths  []string
	bodies []map[string]any
	raw    []string
}

func newBot(t *testing.T, answer func(n int, w http.ResponseWriter)) (*bot, *httptest.Server) {
	t.Helper()
	b := &bot{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil || r.Header.Get("Content-Type") != "application/json" || r.Method != http.MethodPost {
			t.Errorf("%s %s %q: %v", r.Method, r.Header.Get("Content-Type"), raw, err)
		}
		b.mu.Lock()
		b.paths, b.bodies, b.raw = append(b.paths, r.URL.Path), append(b.bodies, m), append(b.raw, string(raw))
		n := len(b.paths)
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		answer(n, w)
	}))
	t.Cleanup(srv.Close)
	return b, srv
}

func ok(_ int, w http.ResponseWriter) {
	io.WriteString(w, `{"ok":true,"result":{"message_id":1,"chat":{"id":1},"text":"x"}}`)
}

func newClient(t *testing.T, base string) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: base, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSendMessageRequest(t *testing.T) {
	cases := []struct {
		chatID string
		raw    string // the body as sent
	}{
		{"111111111", `{"chat_id":111111111,"text":"hello"}`},
		{"-1001234567890", `{"chat_id":-1001234567890,"text":"hello"}`},
		{"@hookgate_news", `{"chat_id":"@hookgate_news","text":"hello"}`},
		{"99999999999999999999", `{"chat_id":"99999999999999999999","text":"hello"}`}, // beyond int64
		{"12a", `{"chat_id":"12a","text":"hello"}`},
	}
	for _, c := range cases {
		b, srv := newBot(t, ok)
		for _, base := range []string{srv.URL, srv.URL + "/"} {
			if err := newClient(t, base).SendMessage(context.Background(), c.chatID, "hello"); err != nil {
				t.Fatalf("%s: %v", c.chatID, err)
			}
		}
		for i := range b.raw {
			if b.paths[i] != "/bot"+token+"/sendMessage" || b.raw[i] != c.raw {
				t.Errorf("%s: %s %s, want %s", c.chatID, b.paths[i], b.raw[i], c.raw)
			}
		}
	}
}

// AnswerCallbackQuery calls the method with the query's id; Telegram's refusal is an error without
// the token.
func TestAnswerCallbackQuery(t *testing.T) {
	b, srv := newBot(t, ok)
	if err := newClient(t, srv.URL).AnswerCallbackQuery(context.Background(), "4382bfdwdsb323b2d9"); err != nil {
		t.Fatal(err)
	}
	if b.paths[0] != "/bot"+token+"/answerCallbackQuery" || b.raw[0] != `{"callback_query_id":"4382bfdwdsb323b2d9"}` {
		t.Fatalf("%s %s", b.paths[0], b.raw[0])
	}
	_, bad := newBot(t, func(_ int, w http.ResponseWriter) {
		w.WriteHeader(400)
		io.WriteString(w, `{"ok":false,"error_code":400,"description":"Bad Request: query is too old"}`)
	})
	err := newClient(t, bad.URL).AnswerCallbackQuery(context.Background(), "old")
	if err == nil || !strings.Contains(err.Error(), "query is too old") {
		t.Fatalf("%v", err)
	}
	noToken(t, err)
}

func TestSendMessageSplits(t *testing.T) {
	b, srv := newBot(t, ok)
	para := strings.Repeat("word ", 600) // 3000 characters
	text := para + "\n" + para + "\n" + "tail"
	if err := newClient(t, srv.URL).SendMessage(context.Background(), "1", text); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range b.bodies {
		got = append(got, m["text"].(string))
	}
	want := []string{para, para + "\n" + "tail"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sent %d messages of %v chars, want %d", len(got), lens(got), len(want))
	}
}

func lens(ss []string) []int {
	var n []int
	for _, s := range ss {
		n = append(n, utf8.RuneCountInString(s))
	}
	return n
}

func TestSplit(t *testing.T) {
	cases := []struct {
		name  string
		text  string
		limit int
		want  []string
	}{
		{"short", "hello", 10, []string{"hello"}},
		{"exact", "0123456789", 10, []string{"0123456789"}},
		{"empty", "", 10, nil},
		{"blank", " \n\t ", 10, nil},
		{"newline preferred", "aaaaaa\nbbb ccc dd", 10, []string{"aaaaaa", "bbb ccc dd"}},
		{"space when newline too early", "a\nbbbbbb cccc", 10, []string{"a\nbbbbbb", "cccc"}},
		{"early newline over a hard cut", "ab\ncdefghijklmn", 10, []string{"ab", "cdefghijkl", "mn"}},
		{"hard cut", "abcdefghijklmnopqrstuvwxy", 10, []string{"abcdefghij", "klmnopqrst", "uvwxy"}},
		{"runes kept whole", "ééééééé", 4, []string{"éééé", "ééé"}},
		{"surrogate pairs count two", "😀😀😀", 4, []string{"😀😀", "😀"}},
		{"blank part dropped", "aaaaaaaaaa\n\n\n\n\n\n\n\n\n\n\nbb", 10, []string{"aaaaaaaaaa", "bb"}},
	}
	for _, c := range cases {
		if got := Split(c.text, c.limit); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Split = %q, want %q", c.name, got, c.want)
		}
	}
	long := strings.Repeat("я", MaxMessageLen*2+5)
	if got := lens(Split(long, MaxMessageLen)); !reflect.DeepEqual(got, []int{MaxMessageLen, MaxMessageLen, 5}) {
		t.Errorf("Cyrillic parts %v", got)
	}
}

func FuzzSplit(f *testing.F) {
	f.Add("hello world\nagain", 5)
	f.Add("😀a😀 b\n\nc", 3)
	f.Add("\xff\xfe abc", 2)
	f.Fuzz(func(t *testing.T, text string, limit int) {
		limit = limit%50 + 50
		if limit < 2 {
			limit = 2
		}
		parts := Split(text, limit)
		for _, p := range parts {
			if units(p) > limit || strings.TrimSpace(p) == "" {
				t.Fatalf("part %q (%d units, limit %d)", p, units(p), limit)
			}
			if utf8.ValidString(text) && !utf8.ValidString(p) {
				t.Fatalf("part %q is not valid UTF-8", p)
			}
		}
		// Only white space is lost. Parts are stripped one by one: joined, the bytes of invalid
		// UTF-8 around a dropped break could form a rune.
		var got strings.Builder
		for _, p := range parts {
			got.WriteString(stripSpace(p))
		}
		if want := stripSpace(text); got.String() != want {
			t.Fatalf("content changed: %q, want %q", got.String(), want)
		}
	})
}

// stripSpace drops the white space runes of s, keeping every other byte (invalid UTF-8 included).
func stripSpace(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if !unicode.IsSpace(r) {
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

func TestSendMessageErrors(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		body      string
		header    map[string]string
		retryable bool
		after     time.Duration
		reason    string
	}{
		{"flood", 429, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}`, nil,
			true, 5 * time.Second, "telegram answered 429: Too Many Requests: retry after 5"},
		{"flood header only", 429, `{"ok":false,"error_code":429,"description":"Too Many Requests"}`, map[string]string{"Retry-After": "7"},
			true, 7 * time.Second, "telegram answered 429: Too Many Requests"},
		{"server", 502, `<html>Bad Gateway</html>`, nil, true, 0, "telegram answered 502"},
		{"internal", 500, `{"ok":false,"error_code":500,"description":"Internal Server Error"}`, nil, true, 0, "telegram answered 500: Internal Server Error"},
		{"bad request", 400, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`, nil, false, 0, "telegram answered 400: Bad Request: chat not found"},
		{"blocked", 403, `{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`, nil, false, 0, "telegram answered 403: Forbidden: bot was blocked by the user"},
		{"unauthorized echoing token", 401, `{"ok":false,"error_code":401,"description":"Unauthorized: bot` + token + `\nis invalid"}`, nil,
			false, 0, "telegram answered 401: Unauthorized: bot[redacted] is invalid"},
		{"ok false on 200", 200, `{"ok":false,"error_code":400,"description":"Bad Request: message text is empty"}`, nil, false, 0, "telegram answered 400: Bad Request: message text is empty"},
		{"200 not json", 200, `<html>`, nil, false, 0, "telegram answered 200 with a body that is not JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, srv := newBot(t, func(_ int, w http.ResponseWriter) {
				for k, v := range c.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			})
			err := newClient(t, srv.URL).SendMessage(context.Background(), "1", "hi")
			var te *Error
			if !errors.As(err, &te) || te.Retryable != c.retryable || te.RetryAfter != c.after || te.Reason != c.reason {
				t.Fatalf("error %#v, want retryable %t after %s reason %q", err, c.retryable, c.after, c.reason)
			}
			noToken(t, err)
		})
	}
}

// A part that fails after others were sent says which.
func TestSendMessagePartFails(t *testing.T) {
	b, srv := newBot(t, func(n int, w http.ResponseWriter) {
		if n == 2 {
			w.WriteHeader(429)
			io.WriteString(w, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}`)
			return
		}
		ok(n, w)
	})
	text := strings.Repeat("a", MaxMessageLen) + "\n" + strings.Repeat("b", MaxMessageLen) + "\n" + "c"
	err := newClient(t, srv.URL).SendMessage(context.Background(), "1", text)
	var te *Error
	if !errors.As(err, &te) || !te.Retryable || te.RetryAfter != 3*time.Second || !strings.HasSuffix(te.Reason, " (part 2 of 3)") || te.Sent != 1 {
		t.Fatalf("error %#v", err)
	}
	if len(b.paths) != 2 {
		t.Errorf("%d sends, want 2 (stop at the failure)", len(b.paths))
	}
}

func noToken(t *testing.T, err error) {
	t.Helper()
	for _, s := range []string{token, strings.SplitN(token, ":", 2)[1]} {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains the token", err)
		}
	}
}

func TestSendMessageTransport(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String()
	l.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer slow.Close()

	c := newClient(t, refused)
	err = c.SendMessage(context.Background(), "1", "hi")
	if te := (*Error)(nil); !errors.As(err, &te) || !te.Retryable || te.Reason != "telegram unreachable: connection refused" {
		t.Errorf("refused: %#v", err)
	}
	noToken(t, err)

	c, err = New(Config{BaseURL: slow.URL, Token: token, Client: &http.Client{Timeout: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	err = c.SendMessage(context.Background(), "1", "hi")
	if te := (*Error)(nil); !errors.As(err, &te) || !te.Retryable || te.Reason != "telegram timed out after 100ms" {
		t.Errorf("timeout: %#v", err)
	}
	noToken(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = c.SendMessage(ctx, "1", "hi")
	if te := (*Error)(nil); !errors.As(err, &te) || !te.Retryable || te.Reason != "telegram call canceled" {
		t.Errorf("canceled: %#v", err)
	}
	noToken(t, err)

	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(out, token) {
			t.Errorf("printing the client leaks the token: %s", out)
		}
	}
}

func TestSendMessageInvalid(t *testing.T) {
	_, srv := newBot(t, ok)
	c := newClient(t, srv.URL)
	for name, call := range map[string][2]string{"no chat": {"", "hi"}, "no text": {"1", ""}, "blank text": {"1", " \n "}} {
		err := c.SendMessage(context.Background(), call[0], call[1])
		var te *Error
		if !errors.As(err, &te) || te.Retryable {
			t.Errorf("%s: %#v", name, err)
		}
	}
}

func TestNewInvalid(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		has  string
	}{
		{"no token", Config{}, "bot token is empty"},
		{"slash", Config{Token: "123:abc/def"}, "must not contain"},
		{"space", Config{Token: "123:abc def"}, "must not contain"},
		{"newline", Config{Token: "123:abc\n"}, "must not contain"},
		{"query", Config{Token: "123:abc?x=1"}, "must not contain"},
		{"bad base", Config{Token: token, BaseURL: "api.telegram.org"}, "base url must be"},
		{"base with query", Config{Token: token, BaseURL: "https://proxy.example/?key=" + token}, "base url must be"},
	}
	for _, c := range cases {
		_, err := New(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.has) {
			t.Errorf("%s: %v, want %q", c.name, err, c.has)
		}
		noToken(t, err)
		if c.cfg.Token != "" && strings.Contains(fmt.Sprint(err), c.cfg.Token) {
			t.Errorf("%s: error quotes the token", c.name)
		}
	}
	c, err := New(Config{Token: token})
	if err != nil || c.endpoint != "https://api.telegram.org/bot"+token+"/" {
		t.Errorf("default: %v, %v", c, err)
	}
}
