// Package apierr is Hookgate's one error type: a code callers can act on, a message that is safe to
// show them, and the cause, which is logged but never shown.
package apierr

import (
	"errors"
	"fmt"
	"time"
)

// Code names a class of failure. The HTTP status for each lives in one table (apigw.Status).
type Code string

const (
	Invalid      Code = "invalid_request"   // 400: the request is malformed or fails validation
	Unauthorized Code = "unauthorized"      // 401: missing or wrong credentials or signature
	Forbidden    Code = "forbidden"         // 403: authenticated, but not allowed
	LoopDetected Code = "loop_detected"     // 403: the gateway's own request came back (loop.Header)
	NotFound     Code = "not_found"         // 404: no such route or resource (in this workspace)
	Conflict     Code = "conflict"          // 409: the resource is not in a state that allows this
	TooLarge     Code = "payload_too_large" // 413: body over the configured limit
	RateLimited  Code = "rate_limited"      // 429: too many requests or in-flight runs
	Unavailable  Code = "unavailable"       // 503: a dependency (queue, table) is down; retry
	Internal     Code = "internal"          // 500: a bug; the cause is logged

	// BudgetExhausted is 429: the workspace's daily run budget is spent until the next UTC day.
	BudgetExhausted Code = "run_budget_exhausted"
)

// Error is an error with a code and a client-safe message. Err, the cause, is for logs only.
type Error struct {
	Code    Code
	Message string
	Err     error
	// RetryAfter, when positive, is sent as the Retry-After header: when the caller may try again.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error with a code and a client-safe message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error with a code and a client-safe message that keeps err as its cause.
func Wrap(code Code, err error, message string) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// Later returns an error with a code, a client-safe message and a Retry-After.
func Later(code Code, after time.Duration, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), RetryAfter: after}
}

// RetryAfterOf returns the Retry-After of the first *Error in err's chain, or 0.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// CodeOf returns the code of the first *Error in err's chain, or Internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// MessageOf returns the client-safe message of err: the message of its *Error, or a generic one.
// It never returns the text of an unknown error, which may hold SDK details or secrets.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != Internal {
		return e.Message
	}
	return "internal error"
}
