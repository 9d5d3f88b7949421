package apigw

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
)

func TestStatusTable(t *testing.T) {
	want := map[apierr.Code]int{
		apierr.Invalid: 400, apierr.Unauthorized: 401, apierr.Forbidden: 403, apierr.NotFound: 404,
		apierr.Conflict: 409, apierr.LoopDetected: 403, apierr.TooLarge: 413, apierr.RateLimited: 429, apierr.Unavailable: 503,
		apierr.Internal: 500, apierr.Code("made_up"): 500,
	}
	for code, status := range want {
		if got := Status(code); got != status {
			t.Errorf("Status(%s) = %d, want %d", code, got, status)
		}
	}
}

func TestErrorNeverShowsTheCause(t *testing.T) {
	cause := errors.New("operation error SQS: SendMessage, secret=hunter2")
	for _, err := range []error{
		cause,
		apierr.Wrap(apierr.Unavailable, cause, "the message could not be queued; retry later"),
		apierr.Wrap(apierr.Internal, cause, "boom"),
	} {
		resp := Error(context.Background(), slog.New(slog.NewJSONHandler(io.Discard, nil)), err)
		if strings.Contains(resp.Body, "hunter2") || strings.Contains(resp.Body, "SendMessage") {
			t.Fatalf("response leaks the cause: %s", resp.Body)
		}
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || body.Error.Code == "" || body.Error.Message == "" {
			t.Fatalf("error body %q is not {error:{code,message}}: %v", resp.Body, err)
		}
		if resp.Headers["content-type"] != "application/json" {
			t.Fatalf("content-type = %q", resp.Headers["content-type"])
		}
	}
}

func TestBody(t *testing.T) {
	big := strings.Repeat("a", 101)
	tests := []struct {
		name string
		req  events.APIGatewayV2HTTPRequest
		want string
		code apierr.Code
	}{
		{"plain", events.APIGatewayV2HTTPRequest{Body: "hello"}, "hello", ""},
		{"base64", events.APIGatewayV2HTTPRequest{Body: base64.StdEncoding.EncodeToString([]byte("hi\x00")), IsBase64Encoded: true}, "hi\x00", ""},
		{"plain too large", events.APIGatewayV2HTTPRequest{Body: big}, "", apierr.TooLarge},
		{"base64 too large", events.APIGatewayV2HTTPRequest{Body: base64.StdEncoding.EncodeToString([]byte(big)), IsBase64Encoded: true}, "", apierr.TooLarge},
		{"bad base64", events.APIGatewayV2HTTPRequest{Body: "!!!", IsBase64Encoded: true}, "", apierr.Invalid},
		{"exactly the limit", events.APIGatewayV2HTTPRequest{Body: big[:100]}, big[:100], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Body(&tt.req, 100)
			if tt.code != "" {
				if apierr.CodeOf(err) != tt.code {
					t.Fatalf("err = %v, want code %s", err, tt.code)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("Body = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestHeaderIsCaseInsensitive(t *testing.T) {
	req := events.APIGatewayV2HTTPRequest{Headers: map[string]string{"X-Hookgate-Signature": "sig", "idempotency-key": "k"}}
	if Header(&req, "x-hookgate-signature") != "sig" || Header(&req, "idempotency-key") != "k" || Header(&req, "missing") != "" {
		t.Fatal("header lookup failed")
	}
}
