package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/outbound"
)

// WebhookConfig configures a webhook agent.
type WebhookConfig struct {
	URL     string           // absolute http or https
	Secret  string           // whsec_…: signs every request (Standard Webhooks)
	Timeout time.Duration    // one call; DefaultTimeout when 0
	Client  *http.Client     // nil: a client with Timeout that follows no redirects and uses no proxy
	Now     func() time.Time // the webhook-timestamp clock; time.Now when nil
}

// Webhook is an agent behind an HTTPS endpoint: each request is a signed JSON POST and the
// response body holds the actions. It is safe for concurrent use.
type Webhook struct {
	url    string
	signer *outbound.Signer
	now    func() time.Time
	call   caller
}

// NewWebhook returns the webhook agent of c. Its errors never contain the secret or the URL.
func NewWebhook(c WebhookConfig) (*Webhook, error) {
	u, err := parseEndpoint(c.URL)
	if err != nil {
		return nil, fmt.Errorf("webhook agent: url %w", err)
	}
	if !outbound.ValidSecret(c.Secret) {
		return nil, errors.New("webhook agent: secret must be whsec_ followed by base64 of 24 to 64 bytes")
	}
	signer, err := outbound.NewSigner(c.Secret)
	if err != nil {
		return nil, fmt.Errorf("webhook agent: %w", err)
	}
	now := c.Now
	if now == nil {
		now = time.Now
	}
	sec := strings.TrimPrefix(c.Secret, "whsec_")
	return &Webhook{url: c.URL, signer: signer, now: now, call: newCaller(c.Client, c.Timeout, u, c.Secret, sec)}, nil
}

// String names the agent by its host only, so printing one leaks no secret or URL token.
func (w *Webhook) String() string { return "agent.Webhook(" + w.call.host + ")" }

// GoString is String, for %#v.
func (w *Webhook) GoString() string { return w.String() }

// Wire bodies, one per request kind; field order is the documented one.
type (
	sessionStartBody struct {
		Type    string  `json:"type"`
		Session Session `json:"session"`
		RunID   string  `json:"run_id"`
	}
	userSpeakBody struct {
		Type    string          `json:"type"`
		Text    string          `json:"text"`
		Data    json.RawMessage `json:"data,omitempty"`
		Session Session         `json:"session"`
		RunID   string          `json:"run_id"`
	}
	approvalBody struct {
		Type     string   `json:"type"`
		RunID    string   `json:"run_id"`
		Session  Session  `json:"session"`
		Decision Decision `json:"decision"`
	}
)

// encodeRequest returns the JSON body of r.
func encodeRequest(r Request) ([]byte, error) {
	if err := checkKind(r); err != nil {
		return nil, err
	}
	var v any
	switch r.Kind {
	case KindSessionStart:
		v = sessionStartBody{Type: r.Kind, Session: r.Session, RunID: r.RunID}
	case KindUserSpeak:
		v = userSpeakBody{Type: r.Kind, Text: r.Text, Data: r.Data, Session: r.Session, RunID: r.RunID}
	case KindApproval:
		v = approvalBody{Type: r.Kind, RunID: r.RunID, Session: r.Session, Decision: *r.Decision}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, permanent("request data is not valid JSON")
	}
	return b, nil
}

// messageID is the webhook-id of a request: the same for every attempt of one run and kind, so
// the agent can drop duplicates. A run id outside [A-Za-z0-9_-] (or very long) is hashed.
func messageID(runID, kind string) string {
	safe := len(runID) <= 100
	for i := 0; safe && i < len(runID); i++ {
		c := runID[i]
		safe = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
	}
	if !safe {
		return ids.Derive("msg", runID, kind)
	}
	return "msg_" + runID + "_" + kind
}

// Respond posts r to the agent and parses the actions it answers with.
func (w *Webhook) Respond(ctx context.Context, r Request) (Reply, error) {
	if r.RunID == "" {
		return Reply{}, permanent("request has no run id")
	}
	body, err := encodeRequest(r)
	if err != nil {
		return Reply{}, err
	}
	id, ts := messageID(r.RunID, r.Kind), w.now()
	status, resp, err := w.call.post(ctx, w.url, body, func(h http.Header) { w.signer.Headers(id, ts, body, h) })
	if err != nil {
		return Reply{}, err
	}
	if serr := w.call.statusError(status, resp); serr != nil {
		return Reply{}, serr
	}
	return parseReply(resp)
}
