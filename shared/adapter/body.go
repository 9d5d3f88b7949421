package adapter

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"strings"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/fields"
	"github.com/hookgate/hookgate/shared/queue"
)

// Body limits.
const (
	maxUser    = 256
	maxEventID = 255
	maxURL     = 2048
	// maxStored bounds text (JSON-encoded, as the queue message and the message.received event
	// hold it) plus data: the event is one DynamoDB item (400 KB at most).
	maxStored = 350_000
	// MaxTimeoutMS is the longest sync wait a caller may ask for; a longer one is capped to it.
	MaxTimeoutMS = 30_000
)

// message is a parsed POST body.
type message struct {
	Text      string          `json:"text"`
	User      string          `json:"user"`
	ThreadID  string          `json:"threadId"`
	EventID   string          `json:"eventId"`
	Data      json.RawMessage `json:"data"`
	ReplyURL  string          `json:"replyUrl"`
	Sync      bool            `json:"sync"`
	TimeoutMS int             `json:"timeoutMs"`
}

// parseMessage decodes and validates a message body for adapter a.
func parseMessage(body []byte, a *Adapter, allowHTTP bool) (message, error) {
	var m message
	if err := decodeStrict(body, &m); err != nil {
		return m, err
	}
	if err := fields.CheckJSON(body); err != nil {
		return m, err
	}
	m.User, m.EventID, m.ThreadID, m.ReplyURL = strings.TrimSpace(m.User), strings.TrimSpace(m.EventID), strings.TrimSpace(m.ThreadID), strings.TrimSpace(m.ReplyURL)
	if string(m.Data) == "null" {
		m.Data = nil
	}
	switch {
	case strings.TrimSpace(m.Text) == "":
		return m, apierr.New(apierr.Invalid, "text is required")
	case queue.JSONLen(m.Text)+len(m.Data) > maxStored:
		return m, apierr.New(apierr.TooLarge, "text and data together must be at most %d bytes (JSON-encoded)", maxStored)
	case len(m.User) > maxUser || !fields.Printable(m.User):
		return m, apierr.New(apierr.Invalid, "user must be at most %d printable characters", maxUser)
	case len(m.EventID) > maxEventID || !fields.Printable(m.EventID):
		return m, apierr.New(apierr.Invalid, "eventId must be at most %d printable characters", maxEventID)
	case len(m.Data) > 0 && m.Data[0] != '{':
		return m, apierr.New(apierr.Invalid, "data must be a JSON object")
	case m.TimeoutMS < 0:
		return m, apierr.New(apierr.Invalid, "timeoutMs must not be negative")
	}
	m.TimeoutMS = min(m.TimeoutMS, MaxTimeoutMS) // longer is capped, not refused (the seed's words)
	if m.ReplyURL != "" {
		if err := checkReplyURL(m.ReplyURL, a, allowHTTP); err != nil {
			return m, err
		}
	}
	return m, nil
}

// checkReplyURL accepts an absolute https URL (http when allowed) whose host is in the adapter's
// allowlist.
func checkReplyURL(raw string, a *Adapter, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || len(raw) > maxURL || !u.IsAbs() || u.Host == "" || u.User != nil {
		return apierr.New(apierr.Invalid, "replyUrl must be an absolute URL of at most %d characters", maxURL)
	}
	if u.Scheme != "https" && !(allowHTTP && u.Scheme == "http") {
		return apierr.New(apierr.Invalid, "replyUrl must use https")
	}
	if !a.ReplyHostAllowed(u.Hostname()) {
		return apierr.New(apierr.Invalid, "replyUrl host is not allowed")
	}
	return nil
}

// decodeStrict decodes one JSON object: wrong types and trailing data are 400s that name the
// problem without echoing the body. Unknown fields are ignored, so callers may send more.
func decodeStrict(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return apierr.New(apierr.Invalid, "body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return apierr.New(apierr.Invalid, "%s has the wrong type", te.Field)
		}
		return apierr.New(apierr.Invalid, "body is not valid JSON")
	}
	if dec.More() {
		return apierr.New(apierr.Invalid, "body must be one JSON object")
	}
	return nil
}
