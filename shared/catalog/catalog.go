// Package catalog is the one list of the event types Hookgate emits: each type's name, what it
// means, and the JSON Schema (draft 2020-12) of its data. GET /v1/event-types serves it, the
// management API refuses subscriptions to exact types it lacks, and tests hold every event the
// end-to-end tests produce against it.
package catalog

import (
	"encoding/json"
	"slices"
	"strings"
)

// EventType is one entry of the catalog. A family (Pattern set) stands for every name the code
// makes up from what senders send: webhook.<source>.<type>, telegram.<kind>.
type EventType struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Pattern     string          `json:"name_pattern,omitempty"` // a family's names, as a regular expression
	Schema      json.RawMessage `json:"schema"`
}

// Family reports whether the entry stands for many names (see Pattern).
func (t EventType) Family() bool { return t.Pattern != "" }

// Families' name prefixes: the exact types never start with them, except webhook.test.
const (
	WebhookPrefix  = "webhook."
	TelegramPrefix = "telegram."
)

// Families returns the first parts of the catalog's names (message, run, webhook, telegram, ...),
// once each, in catalog order: <family>.* is a pattern a subscription may use.
func Families() []string {
	var out []string
	for _, t := range entries() {
		first, _, _ := strings.Cut(t.Name, ".")
		if !slices.Contains(out, first) {
			out = append(out, first)
		}
	}
	return out
}

// Known reports whether name is an exact event type of the catalog (not a family's name).
func Known(name string) bool {
	for _, t := range entries() {
		if !t.family() && t.Name == name {
			return true
		}
	}
	return false
}

// Names returns the exact event types, in catalog order.
func Names() []string {
	var out []string
	for _, t := range entries() {
		if !t.family() {
			out = append(out, t.Name)
		}
	}
	return out
}

// Lookup returns the entry that describes an event of type name: its exact entry, else the family
// its name belongs to.
func Lookup(name string) (EventType, bool) {
	all := entries()
	for _, t := range all {
		if !t.family() && t.Name == name {
			return t.eventType(), true
		}
	}
	for _, t := range all {
		if t.family() && familyMatch(t.Name, name) {
			return t.eventType(), true
		}
	}
	return EventType{}, false
}

// familyMatch reports whether name is one of the family's (by its template name): the literal
// prefix up to the first "<", then dot-separated lower-case parts, as many as the template has.
func familyMatch(template, name string) bool {
	prefix, _, _ := strings.Cut(template, "<")
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != strings.Count(template, "<") {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 64 {
			return false
		}
		for _, c := range []byte(p) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}
