// Package api is the hookgate command line's client of the Hookgate HTTP API: JSON calls with the
// API's error envelope, and a follower of the resumable event stream.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client calls one Hookgate API with one API key.
type Client struct {
	Base string       // e.g. http://127.0.0.1:3000, no trailing slash
	Key  string       // sent as X-API-Key; empty sends none
	HTTP *http.Client // the transport (tests put a validating one here)
	UA   string       // User-Agent
}

// Error is an answer of the API that is not a 2xx: its status and the code and message of its
// error envelope {"error":{"code","message"}}.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s (HTTP %d)", e.Code, e.Message, e.Status)
}

// Response is a 2xx answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Request is one call; Body is sent as JSON when not nil (raw bytes as they are), Header added.
type Request struct {
	Method string
	Path   string // with its query
	Body   any
	Header http.Header
	NoKey  bool // inbound doors prove themselves otherwise
}

// Do sends r and returns a 2xx answer, or an *Error for any other.
func (c *Client) Do(ctx context.Context, r Request) (*Response, error) {
	var body io.Reader
	switch b := r.Body.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, c.Base+r.Path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	if c.Key != "" && !r.NoKey {
		req.Header.Set("X-API-Key", c.Key)
	}
	req.Header.Set("User-Agent", c.UA)
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("read the answer of %s %s: %w", r.Method, r.Path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, errorOf(resp.StatusCode, raw)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}, nil
}

// JSON sends r and decodes a 2xx answer's body into out (unless out is nil or the body empty).
func (c *Client) JSON(ctx context.Context, r Request, out any) (*Response, error) {
	resp, err := c.Do(ctx, r)
	if err != nil || out == nil || len(resp.Body) == 0 {
		return resp, err
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return resp, fmt.Errorf("the answer of %s %s is not the JSON expected: %w", r.Method, r.Path, err)
	}
	return resp, nil
}

// http is the transport, refusing redirects: the API answers every call itself, and a redirect
// followed would carry the API key to wherever it points.
func (c *Client) http() *http.Client {
	hc := http.Client{}
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc
}

func errorOf(status int, raw []byte) *Error {
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	e := &Error{Status: status}
	if json.Unmarshal(raw, &env) == nil && env.Error.Code != "" {
		e.Code, e.Message = env.Error.Code, env.Error.Message
		return e
	}
	e.Code = strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
	e.Message = strings.TrimSpace(string(raw))
	if len(e.Message) > 200 {
		e.Message = e.Message[:200] + "…"
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// IsAPI reports whether err is an answer of the API (not a network failure).
func IsAPI(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Path joins path segments, escaping each, and adds the query (empty values left out).
func Path(query url.Values, segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		if strings.HasPrefix(s, "/") {
			b.WriteString(s)
			continue
		}
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	q := url.Values{}
	for k, vs := range query {
		for _, v := range vs {
			if v != "" {
				q.Add(k, v)
			}
		}
	}
	if len(q) > 0 {
		b.WriteByte('?')
		b.WriteString(q.Encode())
	}
	return b.String()
}
