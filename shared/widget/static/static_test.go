package static

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func TestFiles(t *testing.T) {
	h := New(slog.New(slog.DiscardHandler))
	js, err := h.Handle(context.Background(), events.APIGatewayV2HTTPRequest{RouteKey: "GET /widget.js"})
	if err != nil || js.StatusCode != 200 || js.Headers["content-type"] != "text/javascript; charset=utf-8" || js.Headers["etag"] == "" ||
		!strings.Contains(js.Body, "/v1/web/session") || !strings.Contains(js.Body, "EventSource") {
		t.Fatalf("widget.js: %d %v %.80q %v", js.StatusCode, js.Headers, js.Body, err)
	}
	if len(js.Body) > 20_000 {
		t.Errorf("widget.js is %d bytes: keep it small", len(js.Body))
	}
	// The widget is dependency-free and loads nothing but the API it came from; the one innerHTML
	// is its own constant template (network text goes through textContent).
	code := js.Body[strings.Index(js.Body, "*/")+2:]
	for _, banned := range []string{"import ", "require(", "eval(", "new Function", "document.write", "http://", "https://"} {
		if strings.Contains(code, banned) {
			t.Errorf("widget.js contains %q", banned)
		}
	}
	if n := strings.Count(code, "innerHTML"); n != 1 {
		t.Errorf("widget.js uses innerHTML %d times", n)
	}
	again, _ := h.Handle(context.Background(), events.APIGatewayV2HTTPRequest{RouteKey: "GET /widget.js", Headers: map[string]string{"if-none-match": js.Headers["etag"]}})
	if again.StatusCode != 304 || again.Body != "" {
		t.Fatalf("conditional GET: %d", again.StatusCode)
	}
	demo, _ := h.Handle(context.Background(), events.APIGatewayV2HTTPRequest{RouteKey: "GET /widget/demo"})
	if demo.StatusCode != 200 || !strings.HasPrefix(demo.Headers["content-type"], "text/html") || !strings.Contains(demo.Body, `<script src="../widget.js"`) ||
		!strings.Contains(demo.Headers["content-security-policy"], "default-src 'self'") {
		t.Fatalf("demo: %d %v", demo.StatusCode, demo.Headers)
	}
	spec, _ := h.Handle(context.Background(), events.APIGatewayV2HTTPRequest{RouteKey: "GET /openapi.json"})
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if spec.StatusCode != 200 || spec.Headers["content-type"] != "application/json" || json.Unmarshal([]byte(spec.Body), &doc) != nil ||
		doc.OpenAPI != "3.1.0" || doc.Paths["/openapi.json"] == nil {
		t.Fatalf("openapi.json: %d %v %q", spec.StatusCode, spec.Headers, doc.OpenAPI)
	}
	if r, _ := h.Handle(context.Background(), events.APIGatewayV2HTTPRequest{RouteKey: "GET /other"}); r.StatusCode != 404 {
		t.Fatalf("unknown file: %d", r.StatusCode)
	}
}
