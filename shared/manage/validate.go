package manage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/eventfilter"
	"github.com/hookgate/hookgate/shared/loop"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/store"
)

// Limits of the management API's fields.
const (
	MaxURLLen         = 2048
	MaxEvents         = 50
	MaxDescriptionLen = 512 // characters
	MaxKeyNameLen     = 128 // characters
	MaxWorkspaceLen   = 64
	MaxBodyBytes      = 64 << 10
)

func invalid(format string, args ...any) error { return apierr.New(apierr.Invalid, format, args...) }

// checkURL validates a subscription's destination. The gateway's own hosts are refused here and
// again at dial time; private and metadata addresses are refused by the delivery client at dial
// time only, after DNS, where rebinding cannot slip through.
func checkURL(raw string, allowHTTP bool, own loop.Hosts) error {
	if raw == "" {
		return invalid("url is required")
	}
	if len(raw) > MaxURLLen {
		return invalid("url must be at most %d characters", MaxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return invalid("url must be an absolute URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	case allowHTTP:
		return invalid("url must use http or https")
	default:
		return invalid("url must use https")
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return invalid("url must have a host")
	}
	if u.User != nil {
		return invalid("url must not contain a user or password")
	}
	if own.OwnURL(u) {
		return invalid("url must not point at this gateway's own API (or any execute-api host): its deliveries would come back in as new events")
	}
	return nil
}

// checkEvents validates an event filter and returns it without duplicates, in order.
func checkEvents(events []string) ([]string, error) {
	out := make([]string, 0, len(events))
	for i, e := range events {
		if !ValidPattern(e) {
			return nil, invalid("events[%d] %q is not a known event type or pattern (message.received, run.*, webhook.<source>.<type>, *, ...)", i, truncate(e, 80))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	if len(out) == 0 || len(out) > MaxEvents {
		return nil, invalid("events must have 1 to %d entries", MaxEvents)
	}
	return out, nil
}

func checkDescription(d string) error {
	if utf8.RuneCountInString(d) > MaxDescriptionLen {
		return invalid("description must be at most %d characters", MaxDescriptionLen)
	}
	return nil
}

// checkHeaders validates a subscription's custom headers (outbound.CheckHeaders: bounded, HTTP
// tokens, no CR/LF/NUL, none the delivery sets) and returns them under canonical names.
func checkHeaders(h map[string]string) (map[string]string, error) {
	out, err := outbound.CheckHeaders(h)
	if err != nil {
		return nil, invalid("%s", err.Error())
	}
	return out, nil
}

// checkFilter validates a payload filter (eventfilter: bounded, every problem named) and returns
// it as compact JSON; "" when there is none (absent, null or {}).
func checkFilter(raw json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
		return "", nil
	}
	f, err := eventfilter.Compile(raw)
	if err != nil {
		return "", invalid("filter %s", err.Error())
	}
	if f.Empty() {
		return "", nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "", invalid("filter is not valid JSON")
	}
	return b.String(), nil
}

// filterView is a subscription's payload filter as the API shows it, or nil.
func filterView(sub store.Subscription) json.RawMessage {
	if sub.Filter == "" {
		return nil
	}
	return json.RawMessage(sub.Filter)
}

// headerNames are the names of a subscription's custom headers, never nil.
func headerNames(sub store.Subscription) []string {
	if sub.Headers.Names == nil {
		return []string{}
	}
	return sub.Headers.Names
}

func checkSecret(s string) error {
	if !outbound.ValidSecret(s) {
		return invalid("secret must be whsec_ followed by the base64 of 24 to 64 bytes")
	}
	return nil
}

// checkWorkspace validates a workspace id: [A-Za-z0-9_-]{1,64}, so it cannot break a table key.
func checkWorkspace(field, ws string) error {
	ok := ws != "" && len(ws) <= MaxWorkspaceLen
	for _, c := range []byte(ws) {
		ok = ok && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-')
	}
	if !ok {
		return invalid("%s must be 1 to %d letters, digits, _ or -", field, MaxWorkspaceLen)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// decodeBody decodes a JSON object strictly: unknown fields, wrong types, trailing data and
// invalid JSON are Invalid errors that name the problem. An empty body is allowed only when
// optional is set (v is then left as it is).
func decodeBody(body []byte, v any, optional bool) error {
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return invalid("body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return invalid("body must be a single JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return invalid("body must be a JSON object")
		}
		field := arrayField(typeErr.Field)
		return invalid("%s must be %s", field, jsonKind(field, typeErr.Type.String()))
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("body is not valid JSON")
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return invalid("unknown field %s", field)
	}
	return invalid("body is not valid JSON")
}

// arrayField names an array by itself when encoding/json (Go 1.27 on) names one of its elements:
// "events.1" is the field events.
func arrayField(field string) string {
	for {
		i := strings.LastIndexByte(field, '.')
		if i < 0 || strings.Trim(field[i+1:], "0123456789") != "" || i == len(field)-1 {
			return field
		}
		field = field[:i]
	}
}

// jsonKind names what a field should have been. Fields that are arrays are named by field: for a
// wrong element, encoding/json reports the element's type.
func jsonKind(field, goType string) string {
	switch {
	case field == "events" || strings.HasSuffix(goType, "[]string"):
		return "an array of strings"
	case strings.Contains(goType, "map[string]string"):
		return "an object of string values"
	case strings.HasSuffix(goType, "string"):
		return "a string"
	case strings.Contains(goType, "int"):
		return "an integer"
	case strings.HasSuffix(goType, "bool"):
		return "a boolean"
	}
	return fmt.Sprintf("of another type (%s)", goType)
}
