package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sqsGuard stands in front of the SQS emulator and makes it keep what SQS keeps, whatever the
// emulator does:
//   - it refuses, as SQS does, a message whose body or attribute values hold a character SQS does
//     not allow, an attribute name SQS does not allow, a message over SQS's 1 MiB (body and
//     attributes together) and a batch over 1 MiB in all (fauxqs and others take them);
//   - it keeps each message's X-Ray trace header (the X-Amzn-Trace-Id the AWS SDK sends from a
//     Lambda function's _X_AMZN_TRACE_ID, or an explicit AWSTraceHeader system attribute) and
//     returns it as the AWSTraceHeader system attribute when the message is received, as SQS
//     does: Lambda's recursive loop detection follows chains of requests through it.
//
// Everything else passes through unchanged.
type sqsGuard struct {
	server *http.Server
	URL    string

	mu     sync.Mutex
	traces map[string]string // message id → trace header
}

// SQS's limits (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html):
// a message of at most 1 MiB (1,048,576 bytes: body, attribute names, types and values), and a
// SendMessageBatch request of at most 1 MiB in all. AWS raised both from 256 KiB in 2025.
const (
	maxSQSMessage = 1 << 20
	maxSQSBatch   = 1 << 20
	maxSQSRequest = 16 << 20 // what the guard reads of a request
	maxTraces     = 1 << 18  // message traces kept; past this the oldest half of the map is dropped
)

func startSQSGuard(target string) (*sqsGuard, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("sqs endpoint %q: not a URL", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sqs guard: %w", err)
	}
	g := &sqsGuard{URL: "http://" + ln.Addr().String(), traces: map[string]string{}}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorLog = log.New(io.Discard, "", 0) // the caller gets a 502; long polls cut at shutdown are no news
	proxy.ModifyResponse = g.modifyResponse
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
		if code, msg := refused(target, body); code != "" {
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.Header().Set("X-Amzn-Query-Error", code+";Sender")
			w.WriteHeader(http.StatusBadRequest)
			b, _ := json.Marshal(map[string]string{"__type": "com.amazonaws.sqs#" + code, "message": msg})
			_, _ = w.Write(b)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), sentBody{}, body))
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

// sentBody is the context key of a send request's body, for the response to read.
type sentBody struct{}

// sendMessage is what the guard reads of a SendMessage request or a SendMessageBatch entry.
type sendMessage struct {
	Id                      string
	MessageBody             *string
	MessageAttributes       map[string]messageAttribute
	MessageSystemAttributes map[string]messageAttribute
}

type messageAttribute struct {
	DataType    string
	StringValue *string
	BinaryValue []byte // base64 in JSON
}

// messages returns the messages of a SendMessage or SendMessageBatch request body.
func messages(target string, body []byte) ([]sendMessage, error) {
	if target == "AmazonSQS.SendMessage" {
		var m sendMessage
		err := json.Unmarshal(body, &m)
		return []sendMessage{m}, err
	}
	var in struct{ Entries []sendMessage }
	err := json.Unmarshal(body, &in)
	return in.Entries, err
}

// refused returns the error code and message SQS answers a SendMessage or SendMessageBatch request
// with when it refuses it for a message's characters, attribute names or size, else "". A request
// the guard cannot read passes, for the emulator to judge.
func refused(target string, body []byte) (code, msg string) {
	ms, err := messages(target, body)
	if err != nil {
		return "", ""
	}
	total := 0
	for _, m := range ms {
		if m.MessageBody == nil {
			continue
		}
		size := len(*m.MessageBody)
		if !allAllowed(*m.MessageBody) {
			return "InvalidMessageContents", "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"
		}
		for name, a := range m.MessageAttributes {
			if !validAttributeName(name) {
				return "InvalidParameterValue", fmt.Sprintf("Message (user) attribute '%s' is invalid. The attribute name can contain only A-Z, a-z, 0-9, underscore (_), hyphen (-) and period (.), must not start or end with a period or hold two in a row, must not start with AWS. or Amazon., and is at most 256 characters.", name)
			}
			if a.StringValue != nil && !allAllowed(*a.StringValue) {
				return "InvalidParameterValue", fmt.Sprintf("Message (user) attribute '%s' value contains invalid characters. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF", name)
			}
			size += len(name) + len(a.DataType) + len(a.BinaryValue)
			if a.StringValue != nil {
				size += len(*a.StringValue)
			}
		}
		if size > maxSQSMessage {
			return "InvalidParameterValue", fmt.Sprintf("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", maxSQSMessage)
		}
		total += size
	}
	if target == "AmazonSQS.SendMessageBatch" && total > maxSQSBatch {
		return "BatchRequestTooLong", fmt.Sprintf("Batch requests cannot be longer than %d bytes. You have sent %d bytes.", maxSQSBatch, total)
	}
	return "", ""
}

func allAllowed(s string) bool {
	for _, r := range s {
		if !sqsAllowed(r) {
			return false
		}
	}
	return true
}

// validAttributeName is SQS's rule for message attribute names.
func validAttributeName(name string) bool {
	if name == "" || len(name) > 256 || name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return false
	}
	if lower := strings.ToLower(name); strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon.") {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// sqsAllowed is SQS's character rule for message bodies: #x9 | #xA | #xD | #x20–#xD7FF |
// #xE000–#xFFFD | #x10000–#x10FFFF. It is written here apart from the gateway's own encoder
// (shared/queue), so that a mistake there shows.
func sqsAllowed(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// modifyResponse remembers the trace header of each message sent and adds it to each message
// received.
func (g *sqsGuard) modifyResponse(resp *http.Response) error {
	req := resp.Request
	target := req.Header.Get("X-Amz-Target")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "" {
		return nil
	}
	switch target {
	case "AmazonSQS.SendMessage", "AmazonSQS.SendMessageBatch", "AmazonSQS.ReceiveMessage":
	default:
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	if target == "AmazonSQS.ReceiveMessage" {
		body = g.addTraces(body)
	} else {
		g.keepTraces(req, target, body)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// keepTraces records the trace header of each message a send response names.
func (g *sqsGuard) keepTraces(req *http.Request, target string, respBody []byte) {
	header, _ := url.PathUnescape(req.Header.Get("X-Amzn-Trace-Id")) // the SDK percent-encodes it
	b, _ := req.Context().Value(sentBody{}).([]byte)
	ms, _ := messages(target, b)
	traceOf := func(m sendMessage) string {
		if a, ok := m.MessageSystemAttributes["AWSTraceHeader"]; ok && a.StringValue != nil {
			return *a.StringValue
		}
		return header
	}
	var out struct {
		MessageId  string
		Successful []struct{ Id, MessageId string }
	}
	if json.Unmarshal(respBody, &out) != nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.traces) > maxTraces {
		clear(g.traces) // local runs never come near; a long make dev forgets old chains
	}
	if target == "AmazonSQS.SendMessage" && len(ms) == 1 && out.MessageId != "" {
		if t := traceOf(ms[0]); t != "" {
			g.traces[out.MessageId] = t
		}
	}
	for _, s := range out.Successful {
		for _, m := range ms {
			if m.Id == s.Id {
				if t := traceOf(m); t != "" {
					g.traces[s.MessageId] = t
				}
			}
		}
	}
}

// addTraces adds AWSTraceHeader to the attributes of each received message with a known trace.
func (g *sqsGuard) addTraces(body []byte) []byte {
	var out map[string]json.RawMessage
	if json.Unmarshal(body, &out) != nil || out["Messages"] == nil {
		return body
	}
	var msgs []map[string]json.RawMessage
	if json.Unmarshal(out["Messages"], &msgs) != nil {
		return body
	}
	changed := false
	g.mu.Lock()
	for _, m := range msgs {
		var id string
		_ = json.Unmarshal(m["MessageId"], &id)
		trace, ok := g.traces[id]
		if !ok {
			continue
		}
		attrs := map[string]string{}
		if m["Attributes"] != nil {
			_ = json.Unmarshal(m["Attributes"], &attrs)
		}
		if _, has := attrs["AWSTraceHeader"]; has {
			continue
		}
		attrs["AWSTraceHeader"] = trace
		m["Attributes"], _ = json.Marshal(attrs)
		changed = true
	}
	g.mu.Unlock()
	if !changed {
		return body
	}
	out["Messages"], _ = json.Marshal(msgs)
	b, err := json.Marshal(out)
	if err != nil {
		return body
	}
	return b
}

func (g *sqsGuard) Close() error { return g.server.Close() }
