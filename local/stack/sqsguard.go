package stack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// sqsGuard stands in front of the SQS emulator and refuses, as SQS does, a message whose body
// holds a character SQS does not allow (fauxqs and others take them), so that local mode fails
// where a deploy would. Everything else passes through unchanged.
type sqsGuard struct {
	server *http.Server
	URL    string
}

// maxSQSRequest bounds what the guard reads of a request (SQS takes 1 MiB messages, a batch ten).
const maxSQSRequest = 16 << 20

func startSQSGuard(target string) (*sqsGuard, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("sqs endpoint %q: not a URL", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sqs guard: %w", err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorLog = log.New(io.Discard, "", 0) // the caller gets a 502; long polls cut at shutdown are no news
	g := &sqsGuard{URL: "http://" + ln.Addr().String()}
	g.server = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		if target != "AmazonSQS.SendMessage" && target != "AmazonSQS.SendMessageBatch" {
			proxy.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxSQSRequest))
		if err != nil {
			http.Error(w, "read request", http.StatusBadRequest)
			return
		}
		if refused(target, body) {
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.Header().Set("X-Amzn-Query-Error", "InvalidMessageContents;Sender")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"com.amazonaws.sqs#InvalidMessageContents","message":"Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"}`)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		proxy.ServeHTTP(w, r)
	})}
	go func() {
		if err := g.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the stack is closing or the listener failed: requests fail and say so
		}
	}()
	return g, nil
}

// refused reports whether SQS would refuse a message of a SendMessage or SendMessageBatch request
// for its characters. A request the guard cannot read passes, for the emulator to judge.
func refused(target string, body []byte) bool {
	var in struct {
		MessageBody *string
		Entries     []struct{ MessageBody string }
	}
	if json.Unmarshal(body, &in) != nil {
		return false
	}
	bodies := []string{}
	if target == "AmazonSQS.SendMessage" && in.MessageBody != nil {
		bodies = append(bodies, *in.MessageBody)
	}
	for _, e := range in.Entries {
		bodies = append(bodies, e.MessageBody)
	}
	for _, b := range bodies {
		for _, r := range b {
			if !sqsAllowed(r) {
				return true
			}
		}
	}
	return false
}

// sqsAllowed is SQS's character rule for message bodies: #x9 | #xA | #xD | #x20–#xD7FF |
// #xE000–#xFFFD | #x10000–#x10FFFF. It is written here apart from the gateway's own encoder
// (shared/queue), so that a mistake there shows.
func sqsAllowed(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

func (g *sqsGuard) Close() error { return g.server.Close() }
