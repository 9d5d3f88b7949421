package awscfg

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// sdkBody behaves as the body smithy-go hands net/http: once closed (right after Do returns), its
// WriteTo answers io.EOF as an error.
type sdkBody struct {
	mu     sync.Mutex
	r      *bytes.Reader
	closed bool
}

func (b *sdkBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, io.EOF
	}
	return b.r.Read(p)
}

func (b *sdkBody) WriteTo(w io.Writer) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, io.EOF
	}
	return b.r.WriteTo(w)
}

func (b *sdkBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

// lateCheck does what net/http's write loop may do: read the request's Content-Length bytes,
// answer, and only then check the body for bytes past it, after the caller closed its body.
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

// The transport's late look at the request body must not fail because the SDK closed its body:
// net/http takes the failure for a write error and closes the connection under the answer.
func TestTheTransportReadsACopyOfTheBody(t *testing.T) {
	l := lateCheck{closed: make(chan struct{}), err: make(chan error, 1), sent: make(chan string, 1)}
	c := OwnBodies(l)
	const payload = `{"QueueUrl":"q","MaxNumberOfMessages":10}`
	body := &sdkBody{r: bytes.NewReader([]byte(payload))}
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(payload))
	req.Header.Set("X-Amz-Target", "AmazonSQS.ReceiveMessage")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = body.Close() // as smithy-go does once Do returns
	close(l.closed)
	if err := <-l.err; err != nil {
		t.Fatalf("the transport's late read of the body failed: %v", err)
	}
	if got := <-l.sent; got != payload {
		t.Fatalf("sent %q, want %q", got, payload)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "{}" {
		t.Fatalf("answer %q, %v", b, err)
	}
}
