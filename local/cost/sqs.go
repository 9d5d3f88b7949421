package cost

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// chunk is SQS's billing unit: "each 64 KB chunk of a payload is billed as 1 request".
const chunk = 64 << 10

// SQSProxy starts the counting proxy in front of an SQS endpoint (JSON protocol) and returns its
// endpoint.
func (m *Meter) SQSProxy(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("sqs endpoint %q: not a URL", endpoint)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	return m.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
		if !ok {
			rp.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read request", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Del("Accept-Encoding")
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		if rec.Code == http.StatusOK {
			m.billSQS(op, body, rec.Body.Bytes())
		}
	}))
}

type sqsMessage struct {
	MessageBody       string
	Body              string
	MessageAttributes map[string]struct {
		DataType    string
		StringValue string
		BinaryValue []byte
	}
}

func (s sqsMessage) size() int {
	n := len(s.MessageBody) + len(s.Body)
	for k, a := range s.MessageAttributes {
		n += len(k) + len(a.DataType) + len(a.StringValue) + len(a.BinaryValue)
	}
	return n
}

func (m *Meter) billSQS(op string, req, resp []byte) {
	var in struct {
		QueueUrl string
		Entries  []sqsMessage
		sqsMessage
	}
	_ = json.Unmarshal(req, &in)
	kind := "standard"
	if strings.HasSuffix(in.QueueUrl, ".fifo") {
		kind = "fifo"
	}
	n := 1
	switch op {
	case "SendMessage":
		n = units(in.size(), chunk)
	case "SendMessageBatch":
		size := 0
		for _, e := range in.Entries {
			size += e.size()
		}
		n = units(size, chunk)
	case "ReceiveMessage":
		var out struct{ Messages []sqsMessage }
		_ = json.Unmarshal(resp, &out)
		if len(out.Messages) == 0 {
			m.mu.Lock()
			m.u.EmptyPolls++
			m.mu.Unlock()
			return
		}
		size := 0
		for _, e := range out.Messages {
			size += e.size()
		}
		n = units(size, chunk)
	}
	m.mu.Lock()
	m.u.SQS[op+" "+kind] += n
	m.u.Last = time.Now()
	m.mu.Unlock()
}
