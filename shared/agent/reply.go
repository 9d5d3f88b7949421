package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of an agent's reply.
const (
	MaxReplyBytes  = 256 << 10 // the response body
	MaxActions     = 20        // actions in one reply, unknown types included
	MaxTextBytes   = 32 << 10  // a speak text or an approval prompt
	MaxOptions     = 20        // options of one approval
	MaxOptionBytes = 256       // one option, one approver
	MaxApprovers   = 10        // approvers of one approval
)

// wireAction is an action as an agent sends it; pointers tell a missing field from an empty one.
type wireAction struct {
	Type      *string  `json:"type"`
	Text      string   `json:"text"`
	Prompt    string   `json:"prompt"`
	Options   []string `json:"options"`
	Approvers []string `json:"approvers"`
}

// parseReply decodes a webhook agent's 2xx response body: nothing (or JSON null), one action
// object, an array of actions, or {"actions": [...]}. Unknown action types are skipped; anything
// else out of shape or over the limits is a non-retryable *Error.
func parseReply(body []byte) (Reply, error) {
	if len(body) > MaxReplyBytes {
		return Reply{}, permanent(fmt.Sprintf("agent reply exceeds %d KiB", MaxReplyBytes>>10))
	}
	body = bytes.Trim(body, " \t\r\n") // JSON white space
	if len(body) == 0 {
		return Reply{}, nil
	}
	if !json.Valid(body) {
		return Reply{}, permanent("agent reply is not valid JSON")
	}
	var raws []json.RawMessage
	switch body[0] {
	case 'n': // null
		return Reply{}, nil
	case '[':
		if err := json.Unmarshal(body, &raws); err != nil {
			return Reply{}, permanent("agent reply is not an array of action objects")
		}
	case '{':
		var probe struct {
			Type    json.RawMessage `json:"type"`
			Actions json.RawMessage `json:"actions"`
		}
		if err := json.Unmarshal(body, &probe); err != nil {
			return Reply{}, permanent("agent reply is not an action object")
		}
		switch {
		case probe.Actions != nil:
			if err := json.Unmarshal(probe.Actions, &raws); err != nil {
				return Reply{}, permanent(`agent reply's "actions" is not an array of action objects`)
			}
		case probe.Type != nil:
			raws = []json.RawMessage{body}
		default:
			return Reply{}, permanent(`agent reply has neither "type" nor "actions"`)
		}
	default:
		return Reply{}, permanent("agent reply is neither an action, an array of actions nor {\"actions\": [...]}")
	}
	if len(raws) > MaxActions {
		return Reply{}, permanent(fmt.Sprintf("agent reply has %d actions, more than %d", len(raws), MaxActions))
	}
	var out []Action
	for i, raw := range raws {
		a, ok, err := parseAction(raw)
		if err != nil {
			if len(raws) > 1 {
				return Reply{}, permanent(fmt.Sprintf("agent reply action %d: %s", i+1, err.Reason))
			}
			return Reply{}, permanent("agent reply: " + err.Reason)
		}
		if ok {
			out = append(out, a)
		}
	}
	return Reply{Actions: out}, nil
}

// parseAction validates one action; ok is false for an unknown type (skipped).
func parseAction(raw json.RawMessage) (a Action, ok bool, err *Error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return Action{}, false, permanent("not an object")
	}
	var w wireAction
	if jerr := json.Unmarshal(raw, &w); jerr != nil {
		return Action{}, false, permanent("fields of the wrong type")
	}
	switch {
	case w.Type == nil || *w.Type == "":
		return Action{}, false, permanent(`no "type"`)
	case *w.Type == ActionSpeak:
		if err := checkText(ActionSpeak, "text", w.Text); err != nil {
			return Action{}, false, err
		}
		return Action{Type: ActionSpeak, Text: w.Text}, true, nil
	case *w.Type == ActionRequestApproval:
		if err := checkText(ActionRequestApproval, "prompt", w.Prompt); err != nil {
			return Action{}, false, err
		}
		if len(w.Options) > MaxOptions {
			return Action{}, false, permanent(fmt.Sprintf("request_approval has %d options, more than %d", len(w.Options), MaxOptions))
		}
		for _, o := range w.Options {
			if strings.TrimSpace(o) == "" || len(o) > MaxOptionBytes {
				return Action{}, false, permanent(fmt.Sprintf("request_approval option is empty or longer than %d bytes", MaxOptionBytes))
			}
		}
		if len(w.Approvers) > MaxApprovers {
			return Action{}, false, permanent(fmt.Sprintf("request_approval has %d approvers, more than %d", len(w.Approvers), MaxApprovers))
		}
		for _, a := range w.Approvers {
			if strings.TrimSpace(a) == "" || strings.TrimSpace(a) != a || len(a) > MaxOptionBytes {
				return Action{}, false, permanent(fmt.Sprintf("request_approval approver is empty, padded or longer than %d bytes", MaxOptionBytes))
			}
		}
		return Action{Type: ActionRequestApproval, Prompt: w.Prompt, Options: w.Options, Approvers: w.Approvers}, true, nil
	}
	return Action{}, false, nil
}

// checkText validates the text or prompt of an action: present (not blank) and within the limit.
func checkText(action, field, s string) *Error {
	if strings.TrimSpace(s) == "" {
		return permanent(fmt.Sprintf("%s without %s", action, field))
	}
	if len(s) > MaxTextBytes {
		return permanent(fmt.Sprintf("%s longer than %d KiB", field, MaxTextBytes>>10))
	}
	return nil
}

// quote returns s quoted, cut to at most n runes.
func quote(s string, n int) string {
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n]) + "…"
	}
	return strconv.Quote(s)
}
