// Package apigw is the API Gateway (HTTP API, payload 2.0) boundary every HTTP function shares: headers,
// the bounded body, JSON responses, and the one table from error code to HTTP status.
package apigw

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
)

// Status is the one table from error code to HTTP status.
func Status(c apierr.Code) int {
	switch c {
	case apierr.Invalid:
		return http.StatusBadRequest
	case apierr.Unauthorized:
		return http.StatusUnauthorized
	case apierr.Forbidden, apierr.LoopDetected:
		return http.StatusForbidden
	case apierr.NotFound:
		return http.StatusNotFound
	case apierr.Conflict:
		return http.StatusConflict
	case apierr.TooLarge:
		return http.StatusRequestEntityTooLarge
	case apierr.RateLimited, apierr.BudgetExhausted:
		return http.StatusTooManyRequests
	case apierr.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Header returns the request header name (lower-case, as API Gateway delivers them in 2.0).
func Header(req *events.APIGatewayV2HTTPRequest, name string) string {
	if v, ok := req.Headers[name]; ok {
		return v
	}
	// A hand-written event (sam local invoke -e) may keep the sender's casing.
	for k, v := range req.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// Body returns the raw request body. A body over max bytes is refused with TooLarge before it is
// decoded or parsed.
func Body(req *events.APIGatewayV2HTTPRequest, max int) ([]byte, error) {
	if !req.IsBase64Encoded {
		if len(req.Body) > max {
			return nil, apierr.New(apierr.TooLarge, "body is larger than %d bytes", max)
		}
		return []byte(req.Body), nil
	}
	if base64.StdEncoding.DecodedLen(len(req.Body)) > max+2 {
		return nil, apierr.New(apierr.TooLarge, "body is larger than %d bytes", max)
	}
	b, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		return nil, apierr.New(apierr.Invalid, "body is not valid base64")
	}
	if len(b) > max {
		return nil, apierr.New(apierr.TooLarge, "body is larger than %d bytes", max)
	}
	return b, nil
}

// JSON returns a response with v encoded as JSON.
func JSON(status int, v any) events.APIGatewayV2HTTPResponse {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    map[string]string{"content-type": "application/json"},
		Body:       string(b),
	}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    apierr.Code `json:"code"`
	Message string      `json:"message"`
}

// Error returns the JSON error response for err: {"error":{"code","message"}} with the status from
// the table. Server-side failures are logged with their cause; the client sees only the safe message.
func Error(ctx context.Context, log *slog.Logger, err error) events.APIGatewayV2HTTPResponse {
	code := apierr.CodeOf(err)
	status := Status(code)
	if status >= 500 {
		log.ErrorContext(ctx, "request failed", "code", code, "err", err)
	} else {
		log.InfoContext(ctx, "request refused", "code", code, "reason", apierr.MessageOf(err))
	}
	resp := JSON(status, errorBody{Error: errorDetail{Code: code, Message: apierr.MessageOf(err)}})
	if after := apierr.RetryAfterOf(err); after > 0 {
		resp.Headers["retry-after"] = strconv.Itoa(int((after + time.Second - 1) / time.Second)) // whole seconds, rounded up
	}
	return resp
}
