package agent

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
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hookgate/hookgate/shared/loop"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/trace"
)

// UserAgent is the User-Agent of every agent call.
const UserAgent = "Hookgate/0.1"

// DefaultTimeout bounds one agent call when its configuration names no timeout.
const DefaultTimeout = 25 * time.Second

// snippetRunes bounds the part of a response body quoted in a reason.
const snippetRunes = 200

// caller makes the HTTP calls of one backend and turns their failures into safe *Errors.
type caller struct {
	client  *http.Client
	timeout time.Duration
	host    string   // the endpoint's host[:port]: in Error.Host for the log, never in a reason
	secrets []string // never quoted: cut from response snippets
}

func newCaller(c *http.Client, timeout time.Duration, u *url.URL, secrets ...string) caller {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if c == nil {
		// No redirects, no environment proxy. Agent endpoints are configured by the operator, so
		// private and loopback addresses (a sidecar, a local model server) are allowed.
		c = outbound.NewClient(outbound.ClientOptions{Timeout: timeout, AllowPrivate: true})
	} else {
		cp := *c // never follow a redirect, whatever the given client does
		cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		c = &cp
	}
	// Whatever of the URL could carry a token is a secret too.
	if u.RawQuery != "" {
		secrets = append(secrets, u.RawQuery)
		for _, vs := range u.Query() {
			secrets = append(secrets, vs...)
		}
	}
	if p, ok := u.User.Password(); ok {
		secrets = append(secrets, p)
	}
	// A reason goes into run.failed, which every subscriber of the workspace may read: an error
	// page that names the agent's host does not quote it.
	secrets = append(secrets, u.Host, u.Hostname())
	return caller{client: c, timeout: timeout, host: u.Host, secrets: secrets}
}

// parseEndpoint checks that s is an absolute http or https URL.
func parseEndpoint(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("must be an absolute http or https URL")
	}
	return u, nil
}

// post makes one JSON POST and returns the status and up to MaxReplyBytes+1 bytes of the body.
func (c caller) post(parent context.Context, endpoint string, body []byte, header func(http.Header)) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, nil, permanent("agent URL is invalid")
	}
	req.Header["Content-Type"] = []string{"application/json"}
	req.Header["User-Agent"] = []string{UserAgent}
	req.Header[loop.Header] = []string{loop.Value} // an agent that posts it back is refused
	if tp := trace.Outgoing(parent); tp != "" {
		req.Header["Traceparent"] = []string{tp} // the webhook's trace, for the agent's own logs
	}
	if header != nil {
		header(req.Header)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, c.transportError(parent, ctx, err, "agent unreachable")
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return resp.StatusCode, nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxReplyBytes+1))
	if err != nil {
		return 0, nil, c.transportError(parent, ctx, err, "agent reply cut off")
	}
	return resp.StatusCode, b, nil
}

// transportError describes a failed call (no response, or a body cut off). Every such failure is
// retryable; none quotes the error's text, which names the full URL, nor the host (Host has it).
func (c caller) transportError(parent, ctx context.Context, err error, what string) *Error {
	var ne net.Error
	switch {
	case errors.Is(parent.Err(), context.Canceled):
		return &Error{Retryable: true, Reason: "agent call canceled", Host: c.host}
	case parent.Err() != nil:
		return &Error{Retryable: true, Reason: "agent call ran out of time: the caller's deadline passed", Host: c.host}
	case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &Error{Retryable: true, Reason: "agent timed out after " + c.timeout.String(), Host: c.host}
	}
	return &Error{Retryable: true, Reason: fmt.Sprintf("%s: %s", what, outbound.Classify(err)), Host: c.host}
}

// statusError is the *Error of a non-2xx status, or nil. 408, 429 and 5xx are retryable; 3xx
// (never followed) and other 4xx are not.
func (c caller) statusError(status int, body []byte) *Error {
	switch {
	case status >= 200 && status <= 299:
		return nil
	case status >= 300 && status <= 399:
		return permanent(fmt.Sprintf("agent answered %d (redirects are not followed)", status))
	}
	reason := fmt.Sprintf("agent answered %d", status)
	if s := c.snippet(body); s != "" {
		reason += ": " + s
	}
	retry := status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500 && status <= 599
	return &Error{Retryable: retry, Reason: reason, Host: c.host}
}

// snippet returns a short, single-line, redacted excerpt of an error response: the message of a
// JSON error object when there is one, else the start of the body.
func (c caller) snippet(body []byte) string {
	s := errorMessage(body)
	if s == "" {
		s = string(body)
	}
	return redact(s, snippetRunes, c.secrets...)
}

// errorMessage extracts the message of the usual JSON error shapes: {"error":{"message":…}},
// {"error":…}, {"message":…}, {"detail":…}, {"description":…}.
func errorMessage(body []byte) string {
	var v struct {
		Error       json.RawMessage `json:"error"`
		Message     string          `json:"message"`
		Detail      string          `json:"detail"`
		Description string          `json:"description"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	var nested struct {
		Message string `json:"message"`
	}
	var flat string
	switch {
	case json.Unmarshal(v.Error, &nested) == nil && nested.Message != "":
		return nested.Message
	case json.Unmarshal(v.Error, &flat) == nil && flat != "":
		return flat
	case v.Message != "":
		return v.Message
	case v.Detail != "":
		return v.Detail
	}
	return v.Description
}

// redact makes s safe to quote: every secret (of 4 bytes or more), and a secret's start left at
// the end of s, becomes "[redacted]"; invalid UTF-8, control characters and runs of white space
// become single spaces; the result is cut to at most n runes.
func redact(s string, n int, secrets ...string) string {
	s = redactSecrets(strings.ToValidUTF8(s, "\uFFFD"), secrets)
	s = redactSecrets(collapse(s), secrets) // in case collapsing spaces formed one
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n]) + "…"
	}
	return s
}

func redactSecrets(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	// A body read up to a limit can end inside a secret.
	for _, sec := range secrets {
		for k := min(len(sec)-1, len(s)); k >= 4; k-- {
			if strings.HasSuffix(s, sec[:k]) {
				s = s[:len(s)-k] + "[redacted]"
				break
			}
		}
	}
	return s
}

// collapse trims s and turns each run of white space and control characters into one space.
func collapse(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.TrimSpace(s) {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}
