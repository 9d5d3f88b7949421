package manage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/store"
)

// The delivery list's query parameters and cursors, however odd, are a 400 or a page of this
// subscription's deliveries: never a 500, never another subscription's or workspace's delivery,
// never a payload. (Fails: since after until, or an until whose UTC time is before year 0, makes
// the gsi1sk BETWEEN bounds cross, a DynamoDB ValidationException, 500; a since in year 10000 UTC
// formats as "10000-…", below every "2026-…" sort key, and lists everything.)
func TestAttackDeliveryListAnswersNever500(t *testing.T) {
	t.Parallel()
	e, _ := newDeliveryEnv(t)
	key, otherKey := e.key("ws"), e.key("other")
	sub := e.createWebhook(key, map[string]any{"url": "https://example.com/a", "events": []string{"*"}})
	sib := e.createWebhook(key, map[string]any{"url": "https://example.com/b", "events": []string{"*"}})
	foreign := e.createWebhook(otherKey, map[string]any{"url": "https://example.com/c", "events": []string{"*"}})
	mine := map[string]bool{}
	for range 3 {
		e.clk.add(time.Second)
		mine[e.failedDelivery("ws", sub.ID).ID] = true
		e.delivery("ws", sib.ID)
		e.delivery("other", foreign.ID)
	}
	list := "GET /v1/webhooks/{id}/deliveries"
	var page struct {
		Data       []json.RawMessage `json:"data"`
		NextCursor *string           `json:"next_cursor"`
	}
	e.must(200, call{route: list, params: map[string]string{"id": sub.ID}, key: key, query: map[string]string{"limit": "1"}}).decode(t, &page)
	if page.NextCursor == nil {
		t.Fatal("no next page")
	}
	b, _ := base64.RawURLEncoding.DecodeString(*page.NextCursor)
	var own map[string]string
	if err := json.Unmarshal(b, &own); err != nil {
		t.Fatal(err)
	}
	forge := func(change func(map[string]string)) string {
		c := map[string]string{}
		for k, v := range own {
			c[k] = v
		}
		change(c)
		j, _ := json.Marshal(c)
		return base64.RawURLEncoding.EncodeToString(j)
	}
	// A sibling delivery's id placed in this subscription's partition, and an id with no characters:
	// start keys inside the caller's own index partition.
	sibling := e.delivery("ws", sib.ID)
	at := own["gsi1sk"][:strings.LastIndexByte(own["gsi1sk"], '#')]
	queries := map[string]map[string]string{
		"since after until":        {"since": "2026-11-26T00:00:00Z", "until": "2026-11-25T00:00:00Z"},
		"until before year 0":      {"until": "0000-01-01T00:00:00+01:00"},
		"since after year 9999":    {"since": "9999-12-31T23:00:00-02:00"},
		"a lone surrogate cursor":  {"cursor": base64.RawURLEncoding.EncodeToString([]byte(`{"gsi1pk":"\ud800","gsi1sk":"x","pk":"y","sk":"z"}`))},
		"a padded cursor":          {"cursor": *page.NextCursor + "=="},
		"a std base64 cursor":      {"cursor": base64.StdEncoding.EncodeToString(b)},
		"a sibling's id":           {"cursor": forge(func(c map[string]string) { c["gsi1sk"] = at + "#" + sibling.ID; c["pk"] = "WS#ws#DLV#" + sibling.ID })},
		"an empty id":              {"cursor": forge(func(c map[string]string) { c["gsi1sk"] = at + "#"; c["pk"] = "WS#ws#DLV#" })},
		"a NUL id":                 {"cursor": forge(func(c map[string]string) { c["gsi1sk"] = at + "#\x00"; c["pk"] = "WS#ws#DLV#\x00" })},
		"the range's lowest key":   {"cursor": forge(func(c map[string]string) { c["gsi1sk"] = "0#x"; c["pk"] = "WS#ws#DLV#x" })},
		"a foreign workspace's pk": {"cursor": forge(func(c map[string]string) { c["gsi1sk"] = at + "#x"; c["pk"] = "WS#other#DLV#x" })},
		"an attempt's sort key":    {"cursor": forge(func(c map[string]string) { c["sk"] = "ATT#0000#0000" })},
		"status and cursor":        {"status": "failed", "cursor": *page.NextCursor, "limit": "100"},
		"limit over the max":       {"limit": "101"},
		"limit zero":               {"limit": "0"},
		"an unknown status":        {"status": "FAILED"},
	}
	for name, q := range queries {
		r := e.do(call{route: list, params: map[string]string{"id": sub.ID}, key: key, query: q})
		switch {
		case r.status >= 500:
			t.Errorf("%s: %d %s", name, r.status, r.body)
		case r.status == 200:
			var got struct {
				Data []map[string]any `json:"data"`
			}
			r.decode(t, &got)
			if name == "since after year 9999" && len(got.Data) != 0 {
				t.Errorf("%s: listed %d deliveries made in 2026", name, len(got.Data))
			}
			for _, d := range got.Data {
				if !mine[d["id"].(string)] || d["payload"] != nil || d["workspace_id"] != "ws" || d["subscription_id"] != sub.ID {
					t.Errorf("%s: listed %v", name, d)
				}
			}
		case r.status != 400:
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
}

// GET /v1/deliveries/{id} after a failure, a manual retry and its success lists each attempt
// once, with the response of the final one; a retry of the succeeded delivery is 409 and queues
// nothing; another workspace's key finds nothing.
func TestAttackDeliveryViewAfterRetries(t *testing.T) {
	t.Parallel()
	e, q := newDeliveryEnv(t)
	key := e.key("ws")
	sub := e.createWebhook(key, map[string]any{"url": "https://example.com/a", "events": []string{"*"}})
	d := e.failedDelivery("ws", sub.ID)
	ctx := context.Background()
	retry := call{route: "POST /v1/deliveries/{id}/retry", params: map[string]string{"id": d.ID}, key: key}
	e.must(202, retry)
	if _, ok, err := e.st.ClaimAttempt(ctx, "ws", d.ID, 0, time.Minute); !ok || err != nil {
		t.Fatal(ok, err)
	}
	odd := "ok \xff\xfe " + strings.Repeat("\U0001F600", 300) // as outbound would never hand it over
	if err := e.st.RecordAttempt(ctx, "ws", d.ID, store.Attempt{At: e.clk.now(), Series: 1, StatusCode: 200, LatencyMS: 7, ResponseSnippet: odd}, store.DeliverySucceeded, nil); err != nil {
		t.Fatal(err)
	}
	var view struct {
		Status     string          `json:"status"`
		Payload    json.RawMessage `json:"payload"`
		AttemptLog []store.Attempt `json:"attempt_log"`
	}
	get := call{route: "GET /v1/deliveries/{id}", params: map[string]string{"id": d.ID}, key: key}
	e.must(200, get).decode(t, &view)
	if view.Status != store.DeliverySucceeded || len(view.AttemptLog) != 2 || view.AttemptLog[0].StatusCode != 500 || view.AttemptLog[1].StatusCode != 200 ||
		len(view.AttemptLog[1].ResponseSnippet) > 1<<10+64 || len(view.Payload) == 0 {
		t.Fatalf("view: %+v", view)
	}
	q.reset()
	e.must(409, retry)
	if len(q.queued()) != 0 {
		t.Fatalf("a retry of a succeeded delivery queued %v", q.queued())
	}
	get.key = e.key("other")
	e.must(404, get)
}
