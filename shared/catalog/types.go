package catalog

import "encoding/json"

// entry is one type of the catalog as written here: its schema as text, so that reading names
// (Known, Lookup) copies no schema.
type entry struct {
	Name, Description, Pattern, Schema string
}

func (e entry) family() bool { return e.Pattern != "" }

func (e entry) eventType() EventType {
	return EventType{Name: e.Name, Description: e.Description, Pattern: e.Pattern, Schema: json.RawMessage(e.Schema)}
}

// runData is what every run.* event's data holds; each type adds its own properties.
const runData = `"run_id": {"type": "string"}, "thread_id": {"type": "string"},
		"status": {"type": "string", "enum": ["queued", "running", "waiting_approval", "completed", "failed", "cancelled", "denied"]},
		"adapter": {"type": "string"}, "callback": {"type": "boolean", "description": "the run has a replyUrl"}`

func schema(s string) string { return s }

// All returns the catalog, in a fresh slice: every event type Hookgate records, with the JSON
// Schema of its data.
func All() []EventType {
	es := entries()
	out := make([]EventType, len(es))
	for i, e := range es {
		out[i] = e.eventType()
	}
	return out
}

// entries is the catalog. Add a type here before the code emits it (a test of this package finds
// every Event* constant of shared/ and fails on one the catalog lacks, and the end-to-end tests
// validate every event they see against its schema).
func entries() []entry {
	return []entry{
		{Name: "message.received", Description: "An inbound message was stored on its thread (any door, adapter or widget).", Schema: schema(`{
	"type": "object", "required": ["thread_id", "message_id", "source", "channel", "external_id", "text"],
	"properties": {
		"thread_id": {"type": "string"}, "message_id": {"type": "string"}, "source": {"type": "string"},
		"channel": {"type": "string"}, "external_id": {"type": "string"}, "user": {"type": "string"},
		"text": {"type": "string"}, "data": {"type": ["object", "null"]}
	}}`)},
		{Name: "message.sent", Description: "The agent's reply was stored on the thread.", Schema: schema(`{
	"type": "object", "required": ["thread_id", "message_id", "run_id", "text", "channel", "external_id"],
	"properties": {
		"thread_id": {"type": "string"}, "message_id": {"type": "string"}, "run_id": {"type": "string"},
		"text": {"type": "string"}, "channel": {"type": "string"}, "external_id": {"type": "string"},
		"telegram_source": {"type": "string"}, "callback_query_id": {"type": "string"}
	}}`)},
		{Name: "run.created", Description: "A run was queued for the agent.", Schema: schema(`{
	"type": "object", "required": ["run_id", "thread_id", "message_id", "status"],
	"properties": {
		"run_id": {"type": "string"}, "thread_id": {"type": "string"}, "message_id": {"type": "string"},
		"status": {"const": "queued"}, "adapter": {"type": "string"}, "callback": {"type": "boolean"}
	}}`)},
		{Name: "run.completed", Description: "The agent finished the run; result holds its reply.", Schema: schema(`{
	"type": "object", "required": ["run_id", "thread_id", "status"],
	"properties": {` + runData + `,
		"result": {"type": "object", "properties": {"text": {"type": "string"}}}
	}}`)},
		{Name: "run.failed", Description: "The run failed; error says why.", Schema: schema(`{
	"type": "object", "required": ["run_id", "thread_id", "status"],
	"properties": {` + runData + `, "error": {"type": "string"}}}`)},
		{Name: "run.cancelled", Description: "The run was cancelled through its adapter.", Schema: schema(`{
	"type": "object", "required": ["run_id", "thread_id", "status"],
	"properties": {` + runData + `, "cancelled_by": {"type": "string"}}}`)},
		{Name: "run.requires_approval", Description: "The agent asks for a human's approval, with one signed decision token per approver, decision and option (only subscribers get the tokens).", Schema: schema(`{
	"type": "object", "required": ["run_id", "thread_id", "status", "prompt"],
	"properties": {` + runData + `,
		"prompt": {"type": "string"}, "options": {"type": ["array", "null"], "items": {"type": "string"}},
		"result": {"type": ["object", "null"]}, "approval_id": {"type": "string"},
		"approvers": {"type": "array", "items": {"type": "string"}}, "expires_at": {"type": "string", "format": "date-time"},
		"decisions": {"type": "array", "items": {
			"type": "object", "required": ["approver", "decision", "token"],
			"properties": {
				"approver": {"type": "string"}, "decision": {"enum": ["approve", "deny"]}, "option": {"type": "string"},
				"token": {"type": "string"}, "path": {"type": "string"}
			}}}
	}}`)},
		{Name: "run.approved", Description: "An approver approved the run; it goes on.", Schema: schema(`{
	"type": "object", "required": ["run_id", "thread_id", "status"],
	"properties": {` + runData + `,
		"approval_id": {"type": "string"}, "decided_by": {"type": "string"}, "option": {"type": "string"}, "comment": {"type": "string"}
	}}`)},
		{Name: "run.denied", Description: "An approver denied the run; it ends.", Schema: schema(`{
	"type": "object", "required": ["run_id", "thread_id", "status"],
	"properties": {` + runData + `,
		"approval_id": {"type": "string"}, "decided_by": {"type": "string"}, "option": {"type": "string"}, "comment": {"type": "string"}
	}}`)},
		{Name: "binding.status", Description: "A connector reported a channel binding's status.", Schema: schema(`{
	"type": "object",
	"properties": {
		"channel": {"type": "string"}, "binding_id": {"type": "string"}, "status": {"type": "string"},
		"detail": {"type": "string"}, "reported_at": {"type": "string", "format": "date-time"}
	}}`)},
		{Name: "delivery.exhausted", Description: "A delivery used up its retry schedule, or was refused for good (never sent to the endpoint that failed).", Schema: schema(`{
	"type": "object", "required": ["delivery_id", "event_id", "event_type", "attempts"],
	"properties": {
		"delivery_id": {"type": "string"}, "subscription_id": {"type": "string"}, "target": {"type": "string"},
		"event_id": {"type": "string"}, "event_type": {"type": "string"}, "attempts": {"type": "integer"},
		"last_status_code": {"type": "integer"}, "last_error": {"type": "string"}
	}}`)},
		{Name: "subscription.disabled", Description: "A subscription was disabled: 410 Gone, or too many failed deliveries in a row.", Schema: schema(`{
	"type": "object", "required": ["subscription_id", "reason"],
	"properties": {"subscription_id": {"type": "string"}, "origin": {"type": "string"}, "reason": {"type": "string"}}}`)},
		{Name: "webhook.test", Description: "POST /v1/webhooks/{id}/test: sent to that endpoint only, never recorded in the log.", Schema: schema(`{
	"type": "object", "required": ["subscription_id", "message"],
	"properties": {"subscription_id": {"type": "string"}, "message": {"type": "string"}}}`)},

		// ---- Circuit breaker (issue 15, item 3) --------------------------------------------
		// endpoint.circuit_opened and endpoint.circuit_closed: their data as the breaker records it.
		{Name: "endpoint.circuit_opened", Description: "Most recent attempts to a subscription's endpoint failed: its deliveries wait, without spending attempts, until a probe succeeds (never sent to that subscription).", Schema: schema(`{
	"type": "object", "required": ["subscription_id", "next_probe_at"],
	"properties": {
		"subscription_id": {"type": "string"}, "origin": {"type": "string"}, "next_probe_at": {"type": "string", "format": "date-time"},
		"window_seconds": {"type": "integer"}, "failure_percent": {"type": "integer"}, "min_attempts": {"type": "integer"}
	}}`)},
		{Name: "endpoint.circuit_closed", Description: "A probe to the endpoint succeeded: its waiting deliveries drain at the endpoint's rate limit (never sent to that subscription).", Schema: schema(`{
	"type": "object", "required": ["subscription_id", "opened_at"],
	"properties": {"subscription_id": {"type": "string"}, "origin": {"type": "string"}, "opened_at": {"type": "string", "format": "date-time"}}}`)},
		// ---- end of the circuit breaker's types --------------------------------------------

		{Name: "webhook.<source>.<type>", Pattern: `^webhook\.[a-z0-9][a-z0-9_-]*\.[a-z0-9_]+$`,
			Description: "A verified SaaS webhook, normalized (role webhook.<source>.<event_type_slug>); payload is the body as sent.", Schema: schema(`{
	"type": "object", "required": ["source", "source_kind", "event_type", "event_type_slug", "role", "dedupe_key", "source_identifier", "payload"],
	"properties": {
		"source": {"type": "string"}, "source_kind": {"type": "string"}, "event_type": {"type": "string"},
		"event_type_slug": {"type": "string"}, "role": {"type": "string"}, "dedupe_key": {"type": "string"},
		"delivery_id": {"type": "string"}, "source_identifier": {"type": "string"}, "payload": {"type": "object"}
	}}`)},
		{Name: "telegram.<kind>", Pattern: `^telegram\.[a-z0-9_]+$`,
			Description: "A Telegram update that is not a text message or a callback query (an edited message, a member change, ...).", Schema: schema(`{
	"type": "object", "required": ["update_id", "kind", "source", "update"],
	"properties": {
		"update_id": {"type": "integer"}, "kind": {"type": "string"}, "source": {"type": "string"}, "update": {"type": "object"}
	}}`)},
	}
}
