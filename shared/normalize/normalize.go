// Package normalize turns a verified SaaS webhook into an event (source, type, role, dedupe key, source
// identifier) and picks the agent its role routes to. It does no I/O.
package normalize

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hookgate/hookgate/shared/apierr"
)

// Defaults and limits. Lengths are in bytes of UTF-8.
const (
	DefaultSource    = "generic"
	DefaultEventType = "received"
	MaxSource        = 64  // ^[a-z0-9][a-z0-9_-]{0,63}$
	MaxEventType     = 200 // event_type, and so its slug
	MaxKey           = 256 // dedupe_key and source_identifier
)

// Input is what Normalize reads: the route's workspace, the request's query and headers, and the
// body after its size and signature have been checked.
type Input struct {
	WorkspaceID string
	Query       map[string]string             // API Gateway query string parameters
	Header      func(lowerName string) string // header names arrive lower-cased; nil means none
	Body        []byte                        // raw body, already size-checked and signature-verified
	// ProviderDeliveryID is the verified provider delivery id from headers (webhook-id,
	// x-github-delivery), or "".
	ProviderDeliveryID string
	// PayloadIDField is the top-level payload field holding the provider's own delivery id for the
	// source's scheme: "id" (Stripe event id), "event_id" (Slack), "update_id" (Telegram), or "".
	PayloadIDField string
}

// Event is a normalized inbound webhook.
type Event struct {
	Source           string          `json:"source"`                // query source, default "generic"
	SourceKind       string          `json:"source_kind"`           // "webhook." + Source
	EventType        string          `json:"event_type"`            // as sent, trimmed
	EventTypeSlug    string          `json:"event_type_slug"`       // Slug(EventType)
	Role             string          `json:"role"`                  // "webhook." + Source + "." + EventTypeSlug
	DedupeKey        string          `json:"dedupe_key"`            // "" means do not dedupe
	DeliveryID       string          `json:"delivery_id,omitempty"` // the provider's own id (header or payload), for replay protection
	SourceIdentifier string          `json:"source_identifier"`     // never ""
	Payload          json.RawMessage `json:"payload"`               // Input.Body itself (not a copy), byte for byte
}

// Normalize derives an Event from a verified generic webhook:
//
//   - source: query source, else "generic"; it must match ^[a-z0-9][a-z0-9_-]{0,63}$.
//   - the body must be a JSON object; only its top-level members are read.
//   - event_type: query event_type, else the first of the payload's "event", "type", "action" that
//     is a non-empty string (other JSON types are skipped), else "received"; a "type" of
//     "event_callback" with an object "event" (Slack's Events API) gives way to that object's
//     "type" when it is a non-empty string.
//   - dedupe_key: query dedupe_key, else header x-webhook-id, else header x-request-id, else
//     ProviderDeliveryID, else the payload's PayloadIDField (a string, or a number's literal text),
//     else "".
//   - source_identifier: query source_identifier, else the dedupe key, else the payload's "id" (a
//     string, or a number's literal text), else "{source}:{workspace_id}".
//
// Every query, header and payload value is trimmed of surrounding white space, and a value empty
// after trimming counts as absent. Object keys match exactly (case matters, escapes are decoded); when a key repeats, the
// last one wins, as in encoding/json. The value chosen for event_type, dedupe_key and
// source_identifier, wherever it came from, must be valid UTF-8 with no control characters and at
// most MaxEventType or MaxKey bytes: otherwise Normalize fails rather than truncate, and the query
// overrides let an operator accept such payloads, since a field an override replaces is not read.
// Every error is an *apierr.Error with code apierr.Invalid (400).
func Normalize(in Input) (Event, error) {
	source := in.query("source")
	if source == "" {
		source = DefaultSource
	} else if !ValidSource(source) {
		return Event{}, apierr.New(apierr.Invalid,
			"invalid source: use 1 to %d of a-z, 0-9, '_' and '-', starting with a letter or digit", MaxSource)
	}
	if in.WorkspaceID == "" {
		return Event{}, apierr.New(apierr.Invalid, "workspace id is required")
	}
	f, err := readPayload(in.Body, in.PayloadIDField)
	if err != nil {
		return Event{}, err
	}

	typ := value{in.query("event_type"), "query parameter event_type", ""}
	if typ.s == "" {
		typ = f.eventType()
	}
	if err := typ.check("event_type", MaxEventType); err != nil {
		return Event{}, err
	}

	dedupe := value{in.query("dedupe_key"), "query parameter dedupe_key", ""}
	if dedupe.s == "" {
		dedupe = value{in.header("x-webhook-id"), "header X-Webhook-Id", ""}
	}
	if dedupe.s == "" {
		dedupe = value{in.header("x-request-id"), "header X-Request-Id", ""}
	}
	if dedupe.s == "" {
		dedupe = value{strings.TrimSpace(in.ProviderDeliveryID), "the provider's delivery id header", ""}
	}
	if dedupe.s == "" && in.PayloadIDField != "" {
		dedupe = value{idText(f.deliveryID), "payload field", in.PayloadIDField}
	}
	if err := dedupe.check("dedupe_key", MaxKey); err != nil {
		return Event{}, err
	}
	// The provider's own id, when its scheme defines one, is what replay protection keys on: the
	// headers above are not signed, so they must not let a captured delivery count as new.
	delivery := value{strings.TrimSpace(in.ProviderDeliveryID), "the provider's delivery id header", ""}
	if delivery.s == "" && in.PayloadIDField != "" {
		delivery = value{idText(f.deliveryID), "payload field", in.PayloadIDField}
	}
	if delivery.check("delivery id", MaxKey) != nil {
		delivery.s = "" // unusable: the dedupe key alone protects against replays
	}

	sid := value{in.query("source_identifier"), "query parameter source_identifier", ""}
	if sid.s == "" {
		sid = dedupe
	}
	if sid.s == "" {
		sid = value{idText(f.id), `payload field "id"`, ""}
	}
	if sid.s == "" {
		sid = value{source + ":" + in.WorkspaceID, "source and workspace id", ""}
	}
	if err := sid.check("source_identifier", MaxKey); err != nil {
		return Event{}, err
	}

	slug := Slug(typ.s)
	role := "webhook." + source + "." + slug
	return Event{
		Source:           source,
		SourceKind:       role[:len("webhook.")+len(source)],
		EventType:        typ.s,
		EventTypeSlug:    slug,
		Role:             role,
		DedupeKey:        dedupe.s,
		DeliveryID:       delivery.s,
		SourceIdentifier: sid.s,
		Payload:          json.RawMessage(in.Body),
	}, nil
}

// Slug returns s in lower case with every rune other than an ASCII letter or digit, including
// every non-ASCII letter and each byte of invalid UTF-8, replaced by '_': the result holds only
// [a-z0-9_] and has one byte per rune of s. Runs of '_' are kept, not collapsed.
func Slug(s string) string {
	if isSlug(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z' || '0' <= r && r <= '9':
			b.WriteByte(byte(r))
		case 'A' <= r && r <= 'Z':
			b.WriteByte(byte(r) + 'a' - 'A')
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// isSlug reports whether s holds only [a-z0-9_], so that Slug(s) == s.
func isSlug(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ValidSource reports whether s is a valid source name: ^[a-z0-9][a-z0-9_-]{0,63}$. It does not
// trim s.
func ValidSource(s string) bool {
	if s == "" || len(s) > MaxSource || s[0] == '_' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (in *Input) query(name string) string {
	return strings.TrimSpace(in.Query[name])
}

func (in *Input) header(lowerName string) string {
	if in.Header == nil {
		return ""
	}
	return strings.TrimSpace(in.Header(lowerName))
}

// value is a chosen field value and, for error messages, where it came from: from, followed by
// key if key is not "".
type value struct {
	s, from, key string
}

func (v value) check(field string, max int) error {
	if len(v.s) > max {
		return apierr.New(apierr.Invalid, "%s (from %s) must be at most %d bytes", field, v.origin(), max)
	}
	if !utf8.ValidString(v.s) || strings.IndexFunc(v.s, unicode.IsControl) >= 0 {
		return apierr.New(apierr.Invalid, "%s (from %s) must be UTF-8 text without control characters", field, v.origin())
	}
	return nil
}

func (v value) origin() string {
	if v.key == "" {
		return v.from
	}
	return fmt.Sprintf("%s %q", v.from, v.key)
}
