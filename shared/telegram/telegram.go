// Package telegram is the Bot API client for replies: it sends a chat a text split at Telegram's limit
// and tells retryable failures from the rest; no error of it contains the bot token.
package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hookgate/hookgate/shared/outbound"
)

// DefaultBaseURL is the Bot API's address.
const DefaultBaseURL = "https://api.telegram.org"

// MaxMessageLen is Telegram's limit on one message's text, counted here in UTF-16 code units (as
// Telegram counts entity offsets), which is never more than its count in characters.
const MaxMessageLen = 4096

const (
	defaultTimeout = 15 * time.Second
	maxReplyBytes  = 64 << 10
	reasonRunes    = 200
)

// Config configures a Client.
type Config struct {
	BaseURL string       // DefaultBaseURL when empty
	Token   string       // the bot token, "123456:ABC…"
	Client  *http.Client // nil: a client with a 15s timeout; redirects are never followed
}

// Client sends messages as one bot. It is safe for concurrent use.
type Client struct {
	endpoint string // …/bot{token}/ (the method's name follows)
	token    string
	timeout  time.Duration
	http     *http.Client
}

// Error is a failed send. Reason is safe to store and show: it never contains the token.
type Error struct {
	Retryable  bool          // 5xx, 429, timeouts and connection errors
	Reason     string        // what failed, e.g. "telegram answered 403: Forbidden: bot was blocked by the user"
	RetryAfter time.Duration // from a 429's parameters.retry_after (or Retry-After); 0 when absent
	Sent       int           // parts of a long text sent before this one failed
}

// Error returns the reason.
func (e *Error) Error() string { return e.Reason }

// New returns the client of c. Its errors never contain the token.
func New(c Config) (*Client, error) {
	switch {
	case c.Token == "":
		return nil, errors.New("telegram: bot token is empty")
	case strings.IndexFunc(c.Token, badTokenRune) >= 0:
		return nil, errors.New("telegram: bot token must not contain '/', '?', '#', '%', white space or control characters")
	}
	base := c.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("telegram: base url must be an absolute http or https URL without query")
	}
	hc := &http.Client{Timeout: defaultTimeout}
	if c.Client != nil {
		cp := *c.Client
		hc = &cp
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	timeout := hc.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	return &Client{
		endpoint: strings.TrimSuffix(base, "/") + "/bot" + c.Token + "/",
		token:    c.Token, timeout: timeout, http: hc,
	}, nil
}

func badTokenRune(r rune) bool {
	return r == '/' || r == '?' || r == '#' || r == '%' || unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError
}

// String describes the client without its token.
func (c *Client) String() string { return "telegram.Client" }

// GoString is String, for %#v.
func (c *Client) GoString() string { return c.String() }

// SendMessage sends text to the chat, as several messages in order when it is longer than
// MaxMessageLen (split at a line break, else a space, else between characters). chatID is sent as
// a number when it is one, else as a string ("@channel"). When a later part fails, the earlier
// ones were sent: the reason says which part failed.
func (c *Client) SendMessage(ctx context.Context, chatID, text string) error {
	if chatID == "" {
		return &Error{Reason: "telegram: no chat id"}
	}
	parts := Split(text, MaxMessageLen)
	if len(parts) == 0 {
		return &Error{Reason: "telegram: message text is empty"}
	}
	var id any = chatID
	if n, err := strconv.ParseInt(chatID, 10, 64); err == nil {
		id = n
	}
	for i, p := range parts {
		if err := c.call(ctx, "sendMessage", sendRequest{ChatID: id, Text: p}); err != nil {
			if len(parts) > 1 {
				err.Reason += fmt.Sprintf(" (part %d of %d)", i+1, len(parts))
			}
			err.Sent = i
			return err
		}
	}
	return nil
}

type sendRequest struct {
	ChatID any    `json:"chat_id"`
	Text   string `json:"text"`
}

type apiReply struct {
	OK          bool   `json:"ok"`
	ErrorCode   int    `json:"error_code"`
	Description string `json:"description"`
	Parameters  struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

// AnswerCallbackQuery answers an inline button's press (answerCallbackQuery), which stops the
// button's progress indicator in the user's app.
func (c *Client) AnswerCallbackQuery(ctx context.Context, id string) error {
	if id == "" {
		return &Error{Reason: "telegram: no callback query id"}
	}
	if err := c.call(ctx, "answerCallbackQuery", map[string]string{"callback_query_id": id}); err != nil {
		return err
	}
	return nil
}

// call posts one Bot API method call.
func (c *Client) call(parent context.Context, method string, in any) *Error {
	body, err := json.Marshal(in)
	if err != nil {
		return &Error{Reason: "telegram: cannot encode the " + method + " call"}
	}
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint+method, bytes.NewReader(body))
	if err != nil {
		return &Error{Reason: "telegram: invalid request url"} // never err: it quotes the URL
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(parent, ctx, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	if err != nil {
		return c.transportError(parent, ctx, err)
	}
	var r apiReply
	jerr := json.Unmarshal(raw, &r)
	ok2xx := resp.StatusCode >= 200 && resp.StatusCode <= 299
	switch {
	case ok2xx && jerr == nil && r.OK:
		return nil
	case ok2xx && jerr != nil:
		// Telegram may have sent the message: retrying could send it twice.
		return &Error{Reason: fmt.Sprintf("telegram answered %d with a body that is not JSON", resp.StatusCode)}
	}
	code := resp.StatusCode
	if jerr == nil && r.ErrorCode != 0 {
		code = r.ErrorCode
	}
	e := &Error{Reason: "telegram answered " + strconv.Itoa(code)}
	if d := c.redact(r.Description); jerr == nil && d != "" {
		e.Reason += ": " + d
	}
	switch {
	case code == http.StatusTooManyRequests:
		e.Retryable = true
		e.RetryAfter = time.Duration(r.Parameters.RetryAfter) * time.Second
		if e.RetryAfter <= 0 {
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				e.RetryAfter = time.Duration(s) * time.Second
			}
		}
	case code >= 500 && code <= 599, code == http.StatusRequestTimeout:
		e.Retryable = true
		e.RetryAfter = time.Duration(max(r.Parameters.RetryAfter, 0)) * time.Second
	}
	return e
}

// transportError describes a call that got no (complete) response; all are retryable. It never
// quotes err, whose text holds the URL and so the token.
func (c *Client) transportError(parent, ctx context.Context, err error) *Error {
	var ne net.Error
	switch {
	case errors.Is(parent.Err(), context.Canceled):
		return &Error{Retryable: true, Reason: "telegram call canceled"}
	case parent.Err() != nil:
		return &Error{Retryable: true, Reason: "telegram call ran out of time: the caller's deadline passed"}
	case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &Error{Retryable: true, Reason: "telegram timed out after " + c.timeout.String()}
	}
	return &Error{Retryable: true, Reason: "telegram unreachable: " + outbound.Classify(err)}
}

// redact returns s on one line, without the token, cut to reasonRunes.
func (c *Client) redact(s string) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), c.token, "[redacted]")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	s = strings.ReplaceAll(s, c.token, "[redacted]")
	if utf8.RuneCountInString(s) > reasonRunes {
		s = string([]rune(s)[:reasonRunes]) + "…"
	}
	return s
}
