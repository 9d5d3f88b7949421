package normalize

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hookgate/hookgate/shared/apierr"
)

func FuzzNormalize(f *testing.F) {
	for _, name := range []string{"stripe.json", "github.json", "slack.json", "telegram.json"} {
		f.Add(readTestdata(f, name), "", "", "", "", "id")
	}
	f.Add([]byte(`{}`), "generic", "", "", "", "")
	f.Add([]byte(`{"event":{"type":"x"},"type":"event_callback","event_id":"Ev1"}`), "slack", "", "", "", "event_id")
	f.Add([]byte(`{"update_id":123,"message":{}}`), "telegram", "", "", "", "update_id")
	f.Add([]byte(`{"action":"opened","id":9}`), "github", "", "", "d-1", "")
	f.Add([]byte(`{"\u0074ype":"a\u002eb","type":"c","id":"\ud83d\ude00"}`), "x", "", "k", "", "id")
	f.Add([]byte(`{"type":"Zahlung.bestätigt","id":"a\nb"}`), "", "Order.Created", "", "", "")
	f.Add([]byte(" [1] "), "", "", "", "", "")
	f.Add([]byte(`{"a":"\"}`), "Bad", "", "", "", "")
	f.Add([]byte(""), "", "\xff", "\x00", "", "")
	f.Fuzz(func(t *testing.T, body []byte, source, eventType, dedupe, provider, idField string) {
		in := Input{
			WorkspaceID:        "ws_1",
			Query:              map[string]string{"source": source, "event_type": eventType, "dedupe_key": dedupe},
			Header:             func(string) string { return "" },
			Body:               body,
			ProviderDeliveryID: provider,
			PayloadIDField:     idField,
		}
		ev, err := Normalize(in)

		// readObject never panics, valid JSON or not, and agrees with encoding/json on objects.
		got := readObject(body, idField)
		var m map[string]json.RawMessage
		isObject := json.Valid(body) && json.Unmarshal(body, &m) == nil && m != nil
		if isObject {
			want := fields{m["event"], m["type"], m["action"], m["id"], nil}
			if idField != "" {
				want.deliveryID = m[idField]
			}
			got = readObject(bytes.TrimLeft(body, " \t\r\n"), idField)
			if !sameRaw(got.event, want.event) || !sameRaw(got.typ, want.typ) || !sameRaw(got.action, want.action) ||
				!sameRaw(got.id, want.id) || !sameRaw(got.deliveryID, want.deliveryID) {
				t.Fatalf("readObject(%q) = %q, encoding/json says %q", body, got, want)
			}
		}

		if err != nil {
			if code := apierr.CodeOf(err); code != apierr.Invalid {
				t.Fatalf("error code %q, want %q: %v", code, apierr.Invalid, err)
			}
			if src := strings.TrimSpace(source); (src == "" || ValidSource(src)) && !isObject && !strings.Contains(apierr.MessageOf(err), "body") {
				t.Fatalf("body %q is not an object, but the error is %v", body, err)
			}
			return
		}
		if !isObject {
			t.Fatalf("accepted %q, which is not a JSON object", body)
		}
		if !bytes.Equal(ev.Payload, body) {
			t.Fatalf("payload %q, want the body %q", ev.Payload, body)
		}
		if ev.SourceKind != "webhook."+ev.Source || !ValidSource(ev.Source) {
			t.Fatalf("source %q, source kind %q", ev.Source, ev.SourceKind)
		}
		slug := Slug(ev.EventType)
		if ev.EventTypeSlug != slug || ev.Role != "webhook."+ev.Source+"."+slug {
			t.Fatalf("event type %q: slug %q, role %q", ev.EventType, ev.EventTypeSlug, ev.Role)
		}
		if slug == "" || !isSlugBytes(slug) || len(slug) > MaxEventType {
			t.Fatalf("Slug(%q) = %q", ev.EventType, slug)
		}
		if !ValidPattern(ev.Role) {
			t.Fatalf("role %q is not a valid route pattern", ev.Role)
		}
		if r, ok := Route([]RoleRoute{{"*", "all"}, {ev.Role, "exact"}, {ev.SourceKind + ".*", "source"}}, ev.Role); !ok || r.Agent != "exact" {
			t.Fatalf("Route(%q) = %+v, %v; want the exact route", ev.Role, r, ok)
		}
		for _, v := range []struct {
			s   string
			max int
		}{{ev.EventType, MaxEventType}, {ev.DedupeKey, MaxKey}, {ev.SourceIdentifier, MaxKey}} {
			if len(v.s) > v.max || !utf8.ValidString(v.s) || v.s != strings.TrimSpace(v.s) {
				t.Fatalf("field %q: over %d bytes, invalid UTF-8 or untrimmed", v.s, v.max)
			}
		}
		if ev.SourceIdentifier == "" || ev.EventType == "" {
			t.Fatalf("empty source identifier or event type: %+v", ev)
		}
		if d := strings.TrimSpace(dedupe); d != "" && ev.DedupeKey != d {
			t.Fatalf("dedupe key %q, want the override %q", ev.DedupeKey, d)
		}
		if e := strings.TrimSpace(eventType); e != "" && ev.EventType != e {
			t.Fatalf("event type %q, want the override %q", ev.EventType, e)
		}
	})
}

func TestSlugProperties(t *testing.T) {
	for _, s := range []string{"", "a", "ÀÉÎõü", "\xff\x80a", "日本語", "a.b-c d/e", strings.Repeat("Zz9.", 50)} {
		got := Slug(s)
		if !isSlugBytes(got) || len(got) != utf8.RuneCountInString(s) || Slug(got) != got {
			t.Errorf("Slug(%q) = %q", s, got)
		}
	}
}

// sameRaw reports whether two raw JSON values are equal, absent (nil) only when both are.
func sameRaw(a, b []byte) bool {
	return bytes.Equal(a, b) && (a == nil) == (b == nil)
}

// isSlugBytes is an independent check that s holds only [a-z0-9_].
func isSlugBytes(s string) bool {
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == ""
}

func BenchmarkNormalize(b *testing.B) {
	body := readTestdata(b, "stripe.json")
	b.Run("baseline", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if !json.Valid(body) {
				b.Fatal("invalid")
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(body, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("normalize", func(b *testing.B) {
		in := Input{
			WorkspaceID:        "ws_1",
			Query:              map[string]string{"source": "stripe"},
			Header:             func(string) string { return "" },
			Body:               body,
			ProviderDeliveryID: "",
			PayloadIDField:     "id",
		}
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			ev, err := Normalize(in)
			if err != nil || ev.Role != "webhook.stripe.invoice_paid" {
				b.Fatal(ev.Role, err)
			}
		}
	})
}
