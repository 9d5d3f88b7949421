package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A secret given with --secret is the user's (shared with their receiver's config): listen does
// not print it back, where terminal scrollback and CI logs keep it. A generated one is printed once.
func TestListenDoesNotEchoAGivenSecret(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer api.Close()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	var out, errb bytes.Buffer
	Run(ctx, []string{"listen", "--api", api.URL, "--api-key", "k", "--forward-to", "http://127.0.0.1:1/h", "--secret", secret},
		IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	if strings.Contains(out.String()+errb.String(), strings.TrimPrefix(secret, "whsec_")) {
		t.Fatalf("the given secret is printed: %q %q", out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	Run(ctx, []string{"listen", "--api", api.URL, "--api-key", "k", "--forward-to", "http://127.0.0.1:1/h"},
		IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	if !strings.Contains(errb.String(), "Signing secret: whsec_") {
		t.Fatalf("a generated secret is not printed: %q", errb.String())
	}
}
