package manage

import (
	"strings"
	"testing"
)

// fifo is chosen at creation, shown on every read (false by default), and refused on update with a
// 400 that says why; a value that is not a boolean is a 400 too.
func TestWebhookFIFO(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	key := e.key("ws")
	var v struct {
		ID   string `json:"id"`
		FIFO *bool  `json:"fifo"`
	}
	r := e.must(201, call{route: "POST /v1/webhooks", key: key, body: map[string]any{"url": "https://example.com/h", "events": []string{"*"}, "fifo": true}})
	r.decode(t, &v)
	if v.FIFO == nil || !*v.FIFO {
		t.Fatalf("created %s", r.body)
	}
	id := map[string]string{"id": v.ID}
	r = e.must(200, call{route: "GET /v1/webhooks/{id}", key: key, params: id})
	if r.decode(t, &v); v.FIFO == nil || !*v.FIFO {
		t.Fatalf("read %s", r.body)
	}
	r = e.must(400, call{route: "PATCH /v1/webhooks/{id}", key: key, params: id, body: `{"fifo":false}`})
	if !strings.Contains(r.body, "fifo is chosen when a subscription is created") {
		t.Fatalf("patch: %s", r.body)
	}
	r = e.must(200, call{route: "GET /v1/webhooks/{id}", key: key, params: id})
	if r.decode(t, &v); !*v.FIFO {
		t.Fatalf("the refused patch changed it: %s", r.body)
	}
	r = e.must(201, call{route: "POST /v1/webhooks", key: key, body: map[string]any{"url": "https://example.com/h", "events": []string{"*"}}})
	if r.decode(t, &v); v.FIFO == nil || *v.FIFO {
		t.Fatalf("default %s", r.body)
	}
	e.must(400, call{route: "POST /v1/webhooks", key: key, body: `{"url":"https://example.com/h","events":["*"],"fifo":"yes"}`})
}
