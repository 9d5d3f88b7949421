package outbound

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/hookgate/hookgate/shared/loop"
)

// Response bounds: the snippet kept for the delivery log, and how much more is read and discarded
// so the connection can be reused.
const (
	SnippetBytes = 1 << 10
	drainBytes   = 64 << 10
)

// Result.Err values: a category, never an error's text (which can carry the URL and its tokens).
const (
	FailInvalidURL   = "invalid url"
	FailInvalidMsgID = "invalid message id"
	FailNoSigner     = "no signer"
	FailBlocked      = "blocked address"
	FailOwnHost      = "the gateway's own host"
	FailTimeout      = "timeout"
	FailCanceled     = "canceled"
	FailDNS          = "dns lookup failed"
	FailRefused      = "connection refused"
	FailReset        = "connection reset"
	FailClosed       = "connection closed"
	FailTLS          = "tls error"
	FailOther        = "request failed"
)

// Request is one delivery attempt.
type Request struct {
	URL    string
	MsgID  string // Webhook-Id: the same on every attempt of a delivery; no '.'
	Body   []byte
	Signer *Signer
	Now    time.Time // the attempt's Webhook-Timestamp; time.Now() when zero
	Trace  string    // the traceparent header to send (trace.Outgoing); none when ""
	// Headers are the subscription's custom headers (CheckHeaders): canonical names, set before
	// the delivery's own, which they can never replace.
	Headers map[string]string
}

// Result is the outcome of one attempt: a response (Err == "") or a failure category.
type Result struct {
	StatusCode      int
	Latency         time.Duration
	ResponseSnippet string        // the first SnippetBytes of the body, as valid UTF-8
	RetryAfter      time.Duration // from a 429 or 503 response; 0 when absent
	Err             string        // "" on a response, else one of the Fail… categories
	Permanent       bool          // the destination refused the message itself: no retry can help
}

// Success reports a 2xx response.
func (r Result) Success() bool { return r.StatusCode >= 200 && r.StatusCode <= 299 }

// Gone reports a 410 response: the receiver asks for its endpoint to be disabled.
func (r Result) Gone() bool { return r.StatusCode == http.StatusGone }

// Post makes one signed attempt with c (normally from NewClient): a JSON POST of req.Body.
func Post(ctx context.Context, c *http.Client, userAgent string, req Request) Result {
	switch {
	case req.Signer == nil:
		return Result{Err: FailNoSigner}
	case req.MsgID == "" || strings.ContainsAny(req.MsgID, ".\r\n"):
		return Result{Err: FailInvalidMsgID}
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, req.URL, bytes.NewReader(req.Body))
	if err != nil || (hr.URL.Scheme != "https" && hr.URL.Scheme != "http") || hr.URL.Host == "" {
		return Result{Err: FailInvalidURL}
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	for name, value := range req.Headers {
		if !ReservedHeader(name) {
			hr.Header[name] = []string{value}
		}
	}
	hr.Header["Content-Type"] = []string{"application/json"}
	hr.Header[loop.Header] = []string{loop.Value}
	if userAgent != "" {
		hr.Header["User-Agent"] = []string{userAgent}
	}
	if req.Trace != "" {
		hr.Header["Traceparent"] = []string{req.Trace}
	}
	req.Signer.Headers(req.MsgID, now, req.Body, hr.Header)

	start := time.Now()
	resp, err := c.Do(hr)
	if err != nil {
		cat := Classify(err)
		// A loop stays a loop: no retry, the delivery ends at once.
		return Result{Latency: time.Since(start), Err: cat, Permanent: cat == FailOwnHost}
	}
	defer resp.Body.Close()
	res := Result{StatusCode: resp.StatusCode, Latency: time.Since(start)}
	buf := snippetBufs.Get().(*[SnippetBytes]byte)
	n, err := io.ReadFull(resp.Body, buf[:])
	res.ResponseSnippet = snippet(buf[:n], n == len(buf))
	for drained := 0; err == nil && drained < drainBytes; drained += n {
		n, err = resp.Body.Read(buf[:])
	}
	snippetBufs.Put(buf)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		res.RetryAfter, _ = ParseRetryAfter(resp.Header.Get("Retry-After"), now.Add(res.Latency))
	}
	return res
}

// snippetBufs holds the buffers responses are read into (their snippet is copied out).
var snippetBufs = sync.Pool{New: func() any { return new([SnippetBytes]byte) }}

// snippet returns b as valid UTF-8; cut says b may end inside a rune, which is then dropped.
func snippet(b []byte, cut bool) string {
	if cut {
		for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
			if utf8.RuneStart(b[i]) {
				if !utf8.FullRune(b[i:]) {
					b = b[:i]
				}
				break
			}
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// Classify maps a transport error to a Fail… category: safe to store and show, since an error's
// own text can carry the URL and its tokens.
func Classify(err error) string {
	var (
		blockedErr *BlockedAddressError
		ownErr     *OwnHostError
		dnsErr     *net.DNSError
		netErr     net.Error
		certErr    *tls.CertificateVerificationError
		recordErr  tls.RecordHeaderError
		alertErr   tls.AlertError
	)
	switch {
	case errors.As(err, &ownErr):
		return FailOwnHost
	case errors.As(err, &blockedErr):
		return FailBlocked
	case errors.Is(err, context.Canceled):
		return FailCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return FailTimeout
	case errors.As(err, &dnsErr):
		return FailDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return FailRefused
	case errors.Is(err, syscall.ECONNRESET):
		return FailReset
	case errors.As(err, &certErr), errors.As(err, &recordErr), errors.As(err, &alertErr):
		return FailTLS
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return FailClosed
	}
	return FailOther
}
