package manage

import "strings"

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
	EventBindingStatus       = "binding.status"
	EventDeliveryExhausted   = "delivery.exhausted"
	EventSubscriptionOff     = "subscription.disabled"
	EventWebhookTest         = "webhook.test"
)

// KnownEventTypes returns the event types Hookgate emits by name, in a fresh slice.
func KnownEventTypes() []string {
	return []string{
		EventMessageReceived, EventMessageSent, EventRunCreated, EventRunCompleted, EventRunFailed,
		EventRunRequiresApproval, EventRunCancelled, EventBindingStatus, EventDeliveryExhausted,
		EventSubscriptionOff, EventWebhookTest,
	}
}

func knownEventType(t string) bool {
	switch t {
	case EventMessageReceived, EventMessageSent, EventRunCreated, EventRunCompleted, EventRunFailed,
		EventRunRequiresApproval, EventRunCancelled, EventBindingStatus, EventDeliveryExhausted,
		EventSubscriptionOff, EventWebhookTest:
		return true
	}
	return false
}

func eventFamily(f string) bool {
	switch f {
	case "message", "run", "binding", "delivery", "subscription", "webhook":
		return true
	}
	return false
}

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

// ValidPattern reports whether p may be used in a subscription's event filter: a known event
// type, webhook.<source>.<type>, "*", <family>.* (family: message, run, binding, delivery,
// subscription, webhook) or webhook.<source>.*. Sources and types are [a-z0-9_]+.
func ValidPattern(p string) bool {
	if p == "*" || knownEventType(p) {
		return true
	}
	if prefix, ok := strings.CutSuffix(p, ".*"); ok {
		if eventFamily(prefix) {
			return true
		}
		source, ok := strings.CutPrefix(prefix, "webhook.")
		return ok && segment(source)
	}
	rest, ok := strings.CutPrefix(p, "webhook.")
	if !ok {
		return false
	}
	source, typ, ok := strings.Cut(rest, ".")
	return ok && segment(source) && segment(typ)
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
