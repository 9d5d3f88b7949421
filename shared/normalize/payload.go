package normalize

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/hookgate/hookgate/shared/apierr"
)

// fields holds the raw JSON values of the top-level members Normalize reads; nil when absent.
type fields struct {
	event, typ, action, id, deliveryID []byte
}

// readPayload checks that body is a JSON object and returns the raw values of its members
// "event", "type", "action", "id" and idField. It validates the body once (json.Valid) and then
// walks only its top level, decoding nothing but the keys; it allocates nothing for a body whose
// keys have no escapes.
func readPayload(body []byte, idField string) (fields, error) {
	i := skipSpace(body, 0)
	if i == len(body) {
		return fields{}, apierr.New(apierr.Invalid, "body must be a JSON object; it is empty")
	}
	if !json.Valid(body) {
		return fields{}, apierr.New(apierr.Invalid, "body is not valid JSON")
	}
	if body[i] != '{' {
		return fields{}, apierr.New(apierr.Invalid, "body must be a JSON object")
	}
	return readObject(body[i:], idField), nil
}

// readObject returns the members of the JSON object that data starts with. data must be valid
// JSON; on anything else readObject stops early but never panics or loops.
func readObject(data []byte, idField string) fields {
	var f fields
	if len(data) == 0 || data[0] != '{' {
		return f
	}
	i := 1
	for {
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != '"' {
			return f // '}' ends the object
		}
		end := endOfString(data, i)
		key := data[i:end]
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return f
		}
		i = skipSpace(data, i+1)
		end = endOfValue(data, i)
		f.set(key, data[i:end], idField)
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ',' {
			return f
		}
		i++
	}
}

// set records val if the quoted key is one of the members f holds. A later duplicate key replaces
// an earlier one, as in encoding/json.
func (f *fields) set(quoted, val []byte, idField string) {
	if len(quoted) < 2 {
		return
	}
	key := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
		var s string
		if json.Unmarshal(quoted, &s) != nil {
			return
		}
		key = []byte(s)
	}
	switch string(key) {
	case "event":
		f.event = val
	case "type":
		f.typ = val
	case "action":
		f.action = val
	}
	if string(key) == "id" {
		f.id = val
	}
	if idField != "" && string(key) == idField {
		f.deliveryID = val
	}
}

// eventType returns the first of event, type and action that is a non-empty string after
// trimming, or the default.
func (f *fields) eventType() value {
	if s := stringText(f.event); s != "" {
		return value{s, `payload field "event"`, ""}
	}
	if s := stringText(f.typ); s != "" {
		// Slack's Events API wraps every event in {"type":"event_callback","event":{"type":…}}:
		// the inner type (app_mention, message, …) is what the event is.
		if s == "event_callback" && len(f.event) > 0 && f.event[0] == '{' {
			if inner := stringText(readObject(f.event, "").typ); inner != "" {
				return value{inner, `payload field "event.type"`, ""}
			}
		}
		return value{s, `payload field "type"`, ""}
	}
	if s := stringText(f.action); s != "" {
		return value{s, `payload field "action"`, ""}
	}
	return value{DefaultEventType, "the default", ""}
}

// stringText returns the trimmed text of a raw JSON string, or "" for any other JSON value.
func stringText(raw []byte) string {
	if len(raw) < 2 || raw[0] != '"' {
		return ""
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(bytes.TrimSpace(inner))
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return strings.TrimSpace(s)
}

// idText returns the trimmed text of a raw JSON string, the literal text of a JSON number, or "".
func idText(raw []byte) string {
	if len(raw) > 0 && (raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9') {
		return string(raw)
	}
	return stringText(raw)
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// endOfString returns the index just past the JSON string starting at data[i] == '"'.
func endOfString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(data)
}

// endOfValue returns the index just past the JSON value starting at data[i].
func endOfValue(data []byte, i int) int {
	if i >= len(data) {
		return len(data)
	}
	switch data[i] {
	case '"':
		return endOfString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = endOfString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(data)
	}
	for i < len(data) {
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return len(data)
}
