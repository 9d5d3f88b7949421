package normalize

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/shared/apierr"
)

// req is a test request: query and headers as maps, the rest as in Input.
type req struct {
	query    map[string]string
	header   map[string]string
	body     string
	provider string
	idField  string
}

func (r req) input() Input {
	in := Input{WorkspaceID: "ws_1", Query: r.query, Body: []byte(r.body), ProviderDeliveryID: r.provider, PayloadIDField: r.idField}
	if r.header != nil {
		in.Header = func(name string) string { return r.header[name] }
	}
	return in
}

// want lists the Event fields a case checks; Source, SourceKind, EventTypeSlug and Role follow
// from source and typ.
type want struct {
	source, typ, slug, dedupe, sid string
	delivery                       string // the provider's id: "" unless the request carries one
}

func checkEvent(t *testing.T, got Event, body []byte, w want) {
	t.Helper()
	if w.source == "" {
		w.source = "generic"
	}
	wantEv := Event{
		Source: w.source, SourceKind: "webhook." + w.source, EventType: w.typ, EventTypeSlug: w.slug,
		Role: "webhook." + w.source + "." + w.slug, DedupeKey: w.dedupe, DeliveryID: w.delivery, SourceIdentifier: w.sid,
	}
	if gotEv := got; !reflect.DeepEqual(gotEv.withoutPayload(), wantEv) {
		t.Errorf("got  %+v\nwant %+v", gotEv.withoutPayload(), wantEv)
	}
	if !bytes.Equal(got.Payload, body) {
		t.Errorf("payload changed:\n got %q\nwant %q", got.Payload, body)
	}
}

func (e Event) withoutPayload() Event {
	e.Payload = nil
	return e
}

func TestNormalize(t *testing.T) {
	long := func(n int) string { return strings.Repeat("k", n) }
	tests := []struct {
		name string
		req  req
		want want
	}{
		{"defaults", req{body: `{}`},
			want{typ: "received", slug: "received", sid: "generic:ws_1"}},
		{"nil header func and nil query", req{body: `{"x":1}`},
			want{typ: "received", slug: "received", sid: "generic:ws_1"}},

		// source
		{"query source", req{query: map[string]string{"source": "stripe"}, body: `{}`},
			want{source: "stripe", typ: "received", slug: "received", sid: "stripe:ws_1"}},
		{"source trimmed", req{query: map[string]string{"source": " my-app_2 "}, body: `{}`},
			want{source: "my-app_2", typ: "received", slug: "received", sid: "my-app_2:ws_1"}},
		{"blank source is the default", req{query: map[string]string{"source": "  "}, body: `{}`},
			want{typ: "received", slug: "received", sid: "generic:ws_1"}},
		{"64-byte source", req{query: map[string]string{"source": "9" + strings.Repeat("a", 63)}, body: `{}`},
			want{source: "9" + strings.Repeat("a", 63), typ: "received", slug: "received", sid: "9" + strings.Repeat("a", 63) + ":ws_1"}},

		// event_type precedence
		{"query event_type beats payload", req{query: map[string]string{"event_type": "Order.Created"}, body: `{"event":"e","type":"t","action":"a"}`},
			want{typ: "Order.Created", slug: "order_created", sid: "generic:ws_1"}},
		{"query event_type trimmed", req{query: map[string]string{"event_type": "\t ping \n"}, body: `{"type":"t"}`},
			want{typ: "ping", slug: "ping", sid: "generic:ws_1"}},
		{"blank query event_type falls back to payload", req{query: map[string]string{"event_type": "  "}, body: `{"type":"t"}`},
			want{typ: "t", slug: "t", sid: "generic:ws_1"}},
		{"event beats type and action", req{body: `{"action":"a","type":"t","event":"e"}`},
			want{typ: "e", slug: "e", sid: "generic:ws_1"}},
		{"type beats action", req{body: `{"action":"a","type":"t"}`},
			want{typ: "t", slug: "t", sid: "generic:ws_1"}},
		{"action alone", req{body: `{"action":"opened"}`},
			want{typ: "opened", slug: "opened", sid: "generic:ws_1"}},
		{"object event skipped", req{body: `{"event":{"type":"inner"},"type":"outer"}`},
			want{typ: "outer", slug: "outer", sid: "generic:ws_1"}},
		{"non-strings skipped", req{body: `{"event":1,"type":null,"action":true}`},
			want{typ: "received", slug: "received", sid: "generic:ws_1"}},
		{"array type skipped", req{body: `{"type":["a"],"action":"b"}`},
			want{typ: "b", slug: "b", sid: "generic:ws_1"}},
		{"empty and blank strings skipped", req{body: `{"event":"","type":"  ","action":"x"}`},
			want{typ: "x", slug: "x", sid: "generic:ws_1"}},
		{"payload string trimmed", req{body: `{"type":"  invoice.paid\n"}`},
			want{typ: "invoice.paid", slug: "invoice_paid", sid: "generic:ws_1"}},
		{"escaped string decoded", req{body: `{"type":"a\u002eb\/c"}`},
			want{typ: "a.b/c", slug: "a_b_c", sid: "generic:ws_1"}},
		{"unicode event type", req{body: `{"type":"Zahlung.bestätigt"}`},
			want{typ: "Zahlung.bestätigt", slug: "zahlung_best_tigt", sid: "generic:ws_1"}},
		{"nested type not read", req{body: `{"data":{"type":"inner","event":"x"},"list":[{"type":"y"}]}`},
			want{typ: "received", slug: "received", sid: "generic:ws_1"}},
		{"type inside a string not read", req{body: `{"note":"\"type\":\"fake\"","x":"}"}`},
			want{typ: "received", slug: "received", sid: "generic:ws_1"}},
		{"keys match case-sensitively", req{body: `{"Type":"x","EVENT":"y"}`},
			want{typ: "received", slug: "received", sid: "generic:ws_1"}},
		{"escaped key matches", req{body: `{"\u0074ype":"x"}`},
			want{typ: "x", slug: "x", sid: "generic:ws_1"}},
		{"duplicate key: last wins", req{body: `{"type":"a","type":"b"}`},
			want{typ: "b", slug: "b", sid: "generic:ws_1"}},
		{"duplicate key: last wins even if not a string", req{body: `{"type":"a","type":{}}`},
			want{typ: "received", slug: "received", sid: "generic:ws_1"}},
		{"200-byte event type", req{query: map[string]string{"event_type": long(200)}, body: `{}`},
			want{typ: long(200), slug: long(200), sid: "generic:ws_1"}},
		{"override skips a bad payload type", req{query: map[string]string{"event_type": "ok"}, body: `{"type":"` + long(300) + `"}`},
			want{typ: "ok", slug: "ok", sid: "generic:ws_1"}},

		// dedupe_key precedence
		{"query dedupe_key first", req{
			query:  map[string]string{"dedupe_key": " q "},
			header: map[string]string{"x-webhook-id": "wh", "x-request-id": "rq"}, provider: "pv", idField: "id", body: `{"id":"pl"}`},
			want{typ: "received", slug: "received", dedupe: "q", sid: "q", delivery: "pv"}},
		{"x-webhook-id second", req{
			query:  map[string]string{"dedupe_key": " "},
			header: map[string]string{"x-webhook-id": " wh ", "x-request-id": "rq"}, provider: "pv", idField: "id", body: `{"id":"pl"}`},
			want{typ: "received", slug: "received", dedupe: "wh", sid: "wh", delivery: "pv"}},
		{"x-request-id third", req{
			header: map[string]string{"x-webhook-id": "", "x-request-id": "rq"}, provider: "pv", idField: "id", body: `{"id":"pl"}`},
			want{typ: "received", slug: "received", dedupe: "rq", sid: "rq", delivery: "pv"}},
		{"provider delivery id fourth", req{
			header: map[string]string{"x-request-id": "\t"}, provider: " pv ", idField: "id", body: `{"id":"pl"}`},
			want{typ: "received", slug: "received", dedupe: "pv", sid: "pv", delivery: "pv"}},
		{"payload id field fifth", req{idField: "event_id", body: `{"id":"other","event_id":"Ev1"}`},
			want{typ: "received", slug: "received", dedupe: "Ev1", sid: "Ev1", delivery: "Ev1"}},
		{"payload id field as a number", req{idField: "update_id", body: `{"update_id":912345678}`},
			want{typ: "received", slug: "received", dedupe: "912345678", sid: "912345678", delivery: "912345678"}},
		{"payload id field number literal kept", req{idField: "seq", body: `{"seq":-1.50e+3}`},
			want{typ: "received", slug: "received", dedupe: "-1.50e+3", sid: "-1.50e+3", delivery: "-1.50e+3"}},
		{"payload id field not a string or number", req{idField: "event_id", body: `{"event_id":{"a":1}}`},
			want{typ: "received", slug: "received", sid: "generic:ws_1"}},
		{"payload id field null", req{idField: "event_id", body: `{"event_id":null}`},
			want{typ: "received", slug: "received", sid: "generic:ws_1"}},
		{"payload id field absent", req{idField: "event_id", body: `{"eventid":"x"}`},
			want{typ: "received", slug: "received", sid: "generic:ws_1"}},
		{"no payload id field: payload id is not a dedupe key", req{body: `{"id":"evt_1"}`},
			want{typ: "received", slug: "received", sid: "evt_1"}},
		{"256-byte dedupe key", req{header: map[string]string{"x-webhook-id": long(256)}, body: `{}`},
			want{typ: "received", slug: "received", dedupe: long(256), sid: long(256)}},
		{"dedupe override skips a bad payload id", req{query: map[string]string{"dedupe_key": "k"}, idField: "id", body: `{"id":"` + long(300) + `"}`},
			want{typ: "received", slug: "received", dedupe: "k", sid: "k"}},

		// source_identifier precedence
		{"query source_identifier first", req{query: map[string]string{"source_identifier": " acct_1 "}, header: map[string]string{"x-webhook-id": "wh"}, body: `{"id":"x"}`},
			want{typ: "received", slug: "received", dedupe: "wh", sid: "acct_1"}},
		{"dedupe key second", req{header: map[string]string{"x-request-id": "rq"}, body: `{"id":"x"}`},
			want{typ: "received", slug: "received", dedupe: "rq", sid: "rq"}},
		{"payload id third", req{body: `{"id":"  x  "}`},
			want{typ: "received", slug: "received", sid: "x"}},
		{"numeric payload id", req{body: `{"id":42}`},
			want{typ: "received", slug: "received", sid: "42"}},
		{"non-scalar payload id skipped", req{body: `{"id":[1]}`},
			want{typ: "received", slug: "received", sid: "generic:ws_1"}},
		{"blank payload id skipped", req{body: `{"id":" "}`},
			want{typ: "received", slug: "received", sid: "generic:ws_1"}},
		{"source and workspace last", req{query: map[string]string{"source": "cron"}, body: `{"type":"tick"}`},
			want{source: "cron", typ: "tick", slug: "tick", sid: "cron:ws_1"}},
		{"source_identifier override skips a bad payload id", req{query: map[string]string{"source_identifier": "s"}, body: `{"id":"a\u0000b"}`},
			want{typ: "received", slug: "received", sid: "s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.req.input()
			got, err := Normalize(in)
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			checkEvent(t, got, in.Body, tt.want)
		})
	}
}

func TestNormalizeProviders(t *testing.T) {
	tests := []struct {
		file string
		req  req
		want want
	}{
		{"stripe.json", req{query: map[string]string{"source": "stripe"}, idField: "id"},
			want{source: "stripe", typ: "invoice.paid", slug: "invoice_paid", dedupe: "evt_1PqXyZ2eZvKYlo2C8bD3fGhI", sid: "evt_1PqXyZ2eZvKYlo2C8bD3fGhI", delivery: "evt_1PqXyZ2eZvKYlo2C8bD3fGhI"}},
		// The nested data.object.id and the line item's "type" are not top-level: not read.
		{"stripe.json", req{query: map[string]string{"source": "stripe", "event_type": "billing"}},
			want{source: "stripe", typ: "billing", slug: "billing", sid: "evt_1PqXyZ2eZvKYlo2C8bD3fGhI"}},
		{"github.json", req{query: map[string]string{"source": "github"}, provider: "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
			want{source: "github", typ: "opened", slug: "opened", dedupe: "72d3162e-cc78-11e3-81ab-4c9367dc0958", sid: "72d3162e-cc78-11e3-81ab-4c9367dc0958", delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958"}},
		{"github.json", req{query: map[string]string{"source": "github", "event_type": "pull_request.opened"}},
			want{source: "github", typ: "pull_request.opened", slug: "pull_request_opened", sid: "github:ws_1"}},
		// Slack's Events API: the envelope's "type" is event_callback; the inner event's type names it.
		{"slack.json", req{query: map[string]string{"source": "slack"}, idField: "event_id"},
			want{source: "slack", typ: "app_mention", slug: "app_mention", dedupe: "Ev0LAN670R", sid: "Ev0LAN670R", delivery: "Ev0LAN670R"}},
		{"telegram.json", req{query: map[string]string{"source": "telegram"}, idField: "update_id"},
			want{source: "telegram", typ: "received", slug: "received", dedupe: "912345678", sid: "912345678", delivery: "912345678"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			tt.req.body = string(readTestdata(t, tt.file))
			in := tt.req.input()
			got, err := Normalize(in)
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			checkEvent(t, got, in.Body, tt.want)
		})
	}
}

func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// The payload is the body itself: white space, key order, escapes and duplicate keys kept.
func TestNormalizePayloadUnchanged(t *testing.T) {
	bodies := []string{
		"{}",
		" \r\n\t{ \"z\" : 1 ,\n\t\"a\":[ 1 , 2 ],\"type\":\"x\" }\n\n",
		`{"b":2,"a":1,"b":3}`,
		`{"s":"\u00e9\ud83d\ude00\/","n":1.0e+2,"big":123456789012345678901234567890}`,
		"{\"raw\":\"caf\xc3\xa9\"}",
	}
	for _, body := range bodies {
		in := Input{WorkspaceID: "ws", Body: []byte(body)}
		got, err := Normalize(in)
		if err != nil {
			t.Fatalf("Normalize(%q): %v", body, err)
		}
		if string(got.Payload) != body {
			t.Errorf("payload = %q, want %q", got.Payload, body)
		}
		if len(got.Payload) > 0 && &got.Payload[0] != &in.Body[0] {
			t.Errorf("payload of %q is a copy, want the body itself", body)
		}
	}
}

func TestNormalizeErrors(t *testing.T) {
	long := func(n int) string { return strings.Repeat("k", n) }
	tests := []struct {
		name string
		ws   string
		req  req
		msg  string // a part of the client-safe message
	}{
		{"empty body", "", req{body: ""}, "body must be a JSON object; it is empty"},
		{"blank body", "", req{body: " \n\t"}, "body must be a JSON object; it is empty"},
		{"truncated object", "", req{body: `{"a":1`}, "body is not valid JSON"},
		{"missing value", "", req{body: `{"a":}`}, "body is not valid JSON"},
		{"not JSON", "", req{body: `type=push`}, "body is not valid JSON"},
		{"trailing garbage", "", req{body: `{"a":1}x`}, "body is not valid JSON"},
		{"two objects", "", req{body: `{}{}`}, "body is not valid JSON"},
		{"single quotes", "", req{body: `{'a':1}`}, "body is not valid JSON"},
		{"byte order mark", "", req{body: "\xef\xbb\xbf{}"}, "body is not valid JSON"},
		{"raw control character in a string", "", req{body: "{\"a\":\"x\ny\"}"}, "body is not valid JSON"},
		{"array", "", req{body: `[{"type":"x"}]`}, "body must be a JSON object"},
		{"empty array", "", req{body: ` [] `}, "body must be a JSON object"},
		{"string", "", req{body: `"{}"`}, "body must be a JSON object"},
		{"number", "", req{body: `42`}, "body must be a JSON object"},
		{"null", "", req{body: `null`}, "body must be a JSON object"},
		{"true", "", req{body: `true`}, "body must be a JSON object"},

		{"upper-case source", "", req{query: map[string]string{"source": "Stripe"}, body: `{}`}, "invalid source"},
		{"source starts with -", "", req{query: map[string]string{"source": "-x"}, body: `{}`}, "invalid source"},
		{"source starts with _", "", req{query: map[string]string{"source": "_x"}, body: `{}`}, "invalid source"},
		{"source with a dot", "", req{query: map[string]string{"source": "a.b"}, body: `{}`}, "invalid source"},
		{"source with a space", "", req{query: map[string]string{"source": "a b"}, body: `{}`}, "invalid source"},
		{"non-ASCII source", "", req{query: map[string]string{"source": "café"}, body: `{}`}, "invalid source"},
		{"65-byte source", "", req{query: map[string]string{"source": long(65)}, body: `{}`}, "invalid source"},
		{"bad source checked before the body", "", req{query: map[string]string{"source": "A"}, body: `[`}, "invalid source"},
		{"no workspace", "-", req{body: `{}`}, "workspace id is required"},

		{"201-byte query event_type", "", req{query: map[string]string{"event_type": long(201)}, body: `{}`},
			"event_type (from query parameter event_type) must be at most 200 bytes"},
		{"201-byte payload type", "", req{body: `{"type":"` + long(201) + `"}`},
			`event_type (from payload field "type") must be at most 200 bytes`},
		{"control character in payload event", "", req{body: `{"event":"a\u0007b"}`},
			`event_type (from payload field "event") must be UTF-8 text without control characters`},
		{"invalid UTF-8 in query event_type", "", req{query: map[string]string{"event_type": "a\xffb"}, body: `{}`},
			"event_type (from query parameter event_type) must be UTF-8 text"},
		{"257-byte query dedupe_key", "", req{query: map[string]string{"dedupe_key": long(257)}, body: `{}`},
			"dedupe_key (from query parameter dedupe_key) must be at most 256 bytes"},
		{"257-byte x-webhook-id", "", req{header: map[string]string{"x-webhook-id": long(257)}, body: `{}`},
			"dedupe_key (from header X-Webhook-Id) must be at most 256 bytes"},
		{"control character in x-request-id", "", req{header: map[string]string{"x-request-id": "a\rb"}, body: `{}`},
			"dedupe_key (from header X-Request-Id) must be UTF-8 text without control characters"},
		{"257-byte provider id", "", req{provider: long(257), body: `{}`},
			"dedupe_key (from the provider's delivery id header) must be at most 256 bytes"},
		{"257-digit payload id field", "", req{idField: "update_id", body: `{"update_id":` + strings.Repeat("9", 257) + `}`},
			`dedupe_key (from payload field "update_id") must be at most 256 bytes`},
		{"C1 control in payload id field", "", req{idField: "event_id", body: `{"event_id":"a\u0085b"}`},
			`dedupe_key (from payload field "event_id") must be UTF-8 text without control characters`},
		{"257-byte query source_identifier", "", req{query: map[string]string{"source_identifier": long(257)}, body: `{}`},
			"source_identifier (from query parameter source_identifier) must be at most 256 bytes"},
		{"tab in query source_identifier", "", req{query: map[string]string{"source_identifier": "a\tb"}, body: `{}`},
			"source_identifier (from query parameter source_identifier) must be UTF-8 text without control characters"},
		{"257-byte payload id", "", req{body: `{"id":"` + long(257) + `"}`},
			`source_identifier (from payload field "id") must be at most 256 bytes`},
		{"newline in payload id", "", req{body: `{"id":"a\nb"}`},
			`source_identifier (from payload field "id") must be UTF-8 text without control characters`},
		{"long workspace id", long(250), req{query: map[string]string{"source": "github"}, body: `{}`},
			"source_identifier (from source and workspace id) must be at most 256 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.req.input()
			switch tt.ws {
			case "-":
				in.WorkspaceID = ""
			case "":
			default:
				in.WorkspaceID = tt.ws
			}
			ev, err := Normalize(in)
			if err == nil {
				t.Fatalf("Normalize = %+v, want an error", ev)
			}
			if code := apierr.CodeOf(err); code != apierr.Invalid {
				t.Errorf("code = %q, want %q (%v)", code, apierr.Invalid, err)
			}
			if msg := apierr.MessageOf(err); !strings.Contains(msg, tt.msg) {
				t.Errorf("message = %q, want it to contain %q", msg, tt.msg)
			}
			if ev.Role != "" || ev.Payload != nil {
				t.Errorf("event = %+v on error, want the zero Event", ev)
			}
		})
	}
}

func TestSlug(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"received", "received"},
		{"invoice.paid", "invoice_paid"},
		{"customer.subscription.updated", "customer_subscription_updated"},
		{"Push", "push"},
		{"PullRequest", "pullrequest"},
		{"pull-request", "pull_request"},
		{"a b", "a_b"},
		{"a..b", "a__b"},   // runs are kept
		{"A1_z9", "a1_z9"}, // '_' stays '_'
		{"é", "_"},         // one rune, one '_'
		{"日本", "__"},       // non-ASCII letters are not kept
		{"\u212a", "_"},    // KELVIN SIGN is not ASCII 'k'
		{"\u0130", "_"},    // nor is LATIN CAPITAL I WITH DOT
		{"\xff\xfe", "__"}, // each invalid byte is one '_'
		{"a\x00b", "a_b"},  // control characters too
		{"app_mention", "app_mention"},
		{"order/created", "order_created"},
		{"ZZ", "zz"},
	}
	for _, tt := range tests {
		if got := Slug(tt.in); got != tt.want {
			t.Errorf("Slug(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// readObject must agree with encoding/json on which top-level values the keys select.
func TestReadObjectMatchesEncodingJSON(t *testing.T) {
	bodies := []string{
		`{}`,
		`{"type":"a","id":1,"event_id":"e","action":null,"event":{"type":"x"}}`,
		`{"type":"a","type":"b"}`,
		`{"event":"a","type":"a","action":"a","id":"a","event_id":"a","event":"b","type":"b","action":"b","id":"b","event_id":"b"}`,
		`{"\u0069d":"escaped key","x":"\\\"","event":"\\"}`,
		`{ "id" : [ "]", {"}":"{"} ] , "type" : -0.5e-3 }`,
		"{\"caf\xc3\xa9\":1,\"\xff\":2,\"id\":\"\xfe\"}",
		`{"a":{"b":{"c":[[[{}]]]}},"action":"x"}`,
		`{"id":true,"type":false,"event":null}`,
	}
	for _, body := range bodies {
		checkReadObject(t, []byte(body), "event_id")
	}
	for _, name := range []string{"stripe.json", "github.json", "slack.json", "telegram.json"} {
		checkReadObject(t, readTestdata(t, name), "update_id")
	}
}

// checkReadObject compares readObject with a decode of data into map[string]json.RawMessage.
func checkReadObject(t *testing.T, data []byte, idField string) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		t.Fatalf("not an object: %q (%v)", data, err)
	}
	got := readObject(bytes.TrimLeft(data, " \t\r\n"), idField)
	for _, c := range []struct {
		key string
		got []byte
	}{{"event", got.event}, {"type", got.typ}, {"action", got.action}, {"id", got.id}, {idField, got.deliveryID}} {
		if !bytes.Equal(c.got, m[c.key]) || (c.got == nil) != (m[c.key] == nil) {
			t.Errorf("%q: member %q = %q, encoding/json says %q", data, c.key, c.got, m[c.key])
		}
	}
}
