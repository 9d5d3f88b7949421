package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// oddCase is a text a sender may send, as it appears inside the JSON string, and what the gateway
// must make of it: the decoded text, kept as sent, or a 400.
type oddCase struct {
	literal string
	want    string
	refused bool
}

// oddCases: characters SQS refuses (they must be kept all the same), and what no gateway can
// keep (invalid UTF-8, an unpaired surrogate), refused with a 400.
var oddCases = []oddCase{
	{literal: `a\uffff b ` + "\uffff\ufffe", want: "a\uffff b \uffff\ufffe"},
	{literal: `a\u0001\u001b\u001fb`, want: "a\x01\x1b\x1fb"},
	{literal: "a\xff\xfeb", refused: true},
	{literal: `a\ud800b`, refused: true},
}

// message is one message of the load and what became of it.
type message struct {
	i        int
	key      string
	body     []byte
	want     string // the text the run must echo
	refused  bool   // an odd text the door must refuse with a 400
	odd      bool
	status   int       // the final answer's status (0: none)
	runIDs   []string  // distinct run ids the door answered (more than one is a doubling)
	threadID string    // as answered
	msgID    string    // as answered
	begun    time.Time // first attempt
	accepted time.Time // the 202
	attempts int
}

// sender posts the load like a real sender: a 5xx, a 429 or a broken connection is tried again
// with the same body and Idempotency-Key, backing off, for at most giveUp.
type sender struct {
	url    string
	secret string
	client *http.Client
	giveUp time.Duration

	mu     sync.Mutex
	status map[string]int // 5xx and transport failures by "503 service_unavailable" etc.
}

func (s *sender) count(what string) {
	s.mu.Lock()
	s.status[what]++
	s.mu.Unlock()
}

func (s *sender) send(ctx context.Context, m *message) {
	m.begun = time.Now()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		m.attempts++
		status, body, err := s.post(ctx, m)
		switch {
		case err != nil:
			s.count("connection error")
		case status == http.StatusAccepted:
			var ids struct {
				ThreadID  string `json:"thread_id"`
				MessageID string `json:"message_id"`
				RunID     string `json:"run_id"`
			}
			_ = json.Unmarshal(body, &ids)
			m.status, m.accepted, m.threadID, m.msgID = status, time.Now(), ids.ThreadID, ids.MessageID
			if len(m.runIDs) == 0 || m.runIDs[len(m.runIDs)-1] != ids.RunID {
				m.runIDs = append(m.runIDs, ids.RunID)
			}
			return
		case status >= 500 || status == http.StatusTooManyRequests:
			var e struct {
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			_ = json.Unmarshal(body, &e)
			s.count(strconv.Itoa(status) + " " + e.Error.Code)
		default:
			m.status = status
			return
		}
		if time.Since(m.begun) > s.giveUp {
			m.status = status
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (s *sender) post(ctx context.Context, m *message) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second) // API Gateway's integration limit
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/v1/inbound/generic", bytes.NewReader(m.body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hookgate-Inbound-Secret", s.secret)
	req.Header.Set("Idempotency-Key", m.key)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// newMessages builds the load: threads of about four messages each; with odd set, one message
// in twenty-five carries an odd text, the cases in turn.
func newMessages(run string, n int, odd bool) []*message {
	threads := max(20, n/4)
	out := make([]*message, n)
	for i := range n {
		m := &message{i: i, key: fmt.Sprintf("chaos-%s-%d", run, i)}
		text := fmt.Sprintf(`m %d`, i)
		m.want = text
		if odd && i%25 == 12 {
			c := oddCases[(i/25)%len(oddCases)]
			text, m.want, m.refused, m.odd = c.literal, c.want, c.refused, true
		}
		m.body = []byte(`{"channel":"chaos","external_id":"u-` + strconv.Itoa(i%threads) + `","text":"` + text + `"}`)
		out[i] = m
	}
	return out
}
