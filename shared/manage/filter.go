package manage

import (
	"slices"
	"strings"

	"github.com/hookgate/hookgate/shared/catalog"
	"github.com/hookgate/hookgate/shared/normalize"
)

// Event types Hookgate emits by name. Inbound webhooks add webhook.<source>.<type> for each
// source and type they see.
const (
	EventMessageReceived     = "message.received"
	EventMessageSent         = "message.sent"
	EventRunCreated          = "run.created"
	EventRunCompleted        = "run.completed"
	EventRunFailed           = "run.failed"
	EventRunRequiresApproval = "run.requires_approval"
	EventRunCancelled        = "run.cancelled"
	EventRunApproved         = "run.approved"
	EventRunDenied           = "run.denied"
	EventBindingStatus       = "binding.status"
	EventDeliveryExhausted   = "delivery.exhausted"
	EventSubscriptionOff     = "subscription.disabled"
	EventWebhookTest         = "webhook.test"
)

// KnownEventTypes returns the event types Hookgate emits by name (the catalog's exact types), in a
// fresh slice.
func KnownEventTypes() []string { return catalog.Names() }

func knownEventType(t string) bool { return catalog.Known(t) }

// eventFamily reports whether f is the first part of a catalog type's name (run, message,
// webhook, telegram, ...): f.* is then a pattern.
func eventFamily(f string) bool { return slices.Contains(catalog.Families(), f) }

// maxSegment bounds each dot-separated part of a webhook.<source>.<type> name.
const maxSegment = 64

// segment reports whether s is a lower-case name part: [a-z0-9_]{1,64}.
func segment(s string) bool {
	if s == "" || len(s) > maxSegment {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ValidPattern reports whether p may be used in a subscription's event filter: "*", an exact type
// of the catalog, <family>.* (family: the first part of a catalog type: message, run, ...), a
// role pattern webhook.<source>.<type> or webhook.<source>.* (as role routes take them, see
// normalize.ValidPattern), or telegram.<kind>.
func ValidPattern(p string) bool {
	if p == "*" || knownEventType(p) {
		return true
	}
	if prefix, ok := strings.CutSuffix(p, ".*"); ok && eventFamily(prefix) {
		return true
	}
	if strings.HasPrefix(p, "webhook.") {
		return normalize.ValidPattern(p)
	}
	kind, ok := strings.CutPrefix(p, "telegram.")
	return ok && segment(kind)
}

// MatchEvent reports whether an event filter selects eventType: a pattern equal to it, "*", or
// "<prefix>.*" with eventType starting with "<prefix>.". It does not validate the patterns and
// allocates nothing.
func MatchEvent(patterns []string, eventType string) bool {
	for _, p := range patterns {
		if p == "*" || p == eventType {
			return true
		}
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasSuffix(prefix, ".") &&
			len(eventType) > len(prefix) && strings.HasPrefix(eventType, prefix) {
			return true
		}
	}
	return false
}
