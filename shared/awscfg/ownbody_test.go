package awscfg

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// lateCheck does what net/http's write loop may do: read the request's Content-Length bytes,
// answer, and only then check the body for bytes past it, after the SDK closed its body.
type lateCheck struct {
	closed chan struct{}
	err    chan error
	sent   chan string
}

func (l lateCheck) Do(r *http.Request) (*http.Response, error) {
	b := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, b); err != nil {
		return nil, err
	}
	l.sent <- string(b)
	go func() {
		<-l.closed
		_, err := io.Copy(io.Discard, r.Body)
		l.err <- err
	}()
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader(`{}`)), ContentLength: 2}, nil
}

// The transport's late look at the request body must not fail because the SDK (smithy-go's own
// client handler, as every call goes) closed its body: net/http takes the failure for a broken
// write and closes the connection under the answer.
func TestTheTransportReadsACopyOfTheBody(t *testing.T) {
	l := lateCheck{closed: make(chan struct{}), err: make(chan error, 1), sent: make(chan string, 1)}
	const payload = `{"QueueUrl":"q","MaxNumberOfMessages":10}`
	req := smithyhttp.NewStackRequest().(*smithyhttp.Request)
	req.Method, req.URL = http.MethodPost, &url.URL{Scheme: "http", Host: "127.0.0.1", Path: "/"}
	req, err := req.SetStream(bytes.NewReader([]byte(payload)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(payload))
	if _, _, err := smithyhttp.NewClientHandler(OwnBodies(l)).Handle(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	close(l.closed) // the handler has returned: smithy-go closed the body it built
	if err := <-l.err; err != nil {
		t.Fatalf("the transport's late read of the body failed: %v", err)
	}
	if got := <-l.sent; got != payload {
		t.Fatalf("sent %q, want %q", got, payload)
	}
}

// A 307 from the endpoint is not followed: the body (and the signed request) stays with the
// endpoint it was meant for, as without the copy.
func TestARedirectDoesNotCarryTheBodyElsewhere(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL, http.StatusTemporaryRedirect)
	}))
	defer endpoint.Close()
	req, err := http.NewRequest(http.MethodPost, endpoint.URL, io.NopCloser(strings.NewReader(`{"Plaintext":"secret"}`)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(`{"Plaintext":"secret"}`))
	resp, err := OwnBodies(awshttp.NewBuildableClient()).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || elsewhere.Load() != 0 {
		t.Fatalf("status %d, %d requests elsewhere", resp.StatusCode, elsewhere.Load())
	}
}

// A body that does not match its Content-Length is refused, not sent with a corrected length the
// signature does not cover.
func TestABodyOffItsLengthIsRefused(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/", io.NopCloser(strings.NewReader("abc")))
	req.ContentLength = 5
	if _, err := OwnBodies(lateCheck{}).Do(req); err == nil || !strings.Contains(err.Error(), "Content-Length 5") {
		t.Fatalf("err %v", err)
	}
}
