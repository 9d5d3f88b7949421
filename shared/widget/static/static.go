// Package static serves the stack's static files: GET /widget.js, the one script a site embeds,
// GET /widget/demo, a page that embeds it, and GET /openapi.json, the API's OpenAPI document
// (openapi.yaml as JSON, written by make openapi; local/openapi's test fails when it is not
// current). The files are compiled into the function.
package static

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/apigw"
)

//go:embed files/widget.js files/demo.html files/openapi.json
var files embed.FS

type asset struct {
	body    string
	etag    string
	headers map[string]string
}

// Handler serves the widget's files by route key.
type Handler struct {
	assets map[string]asset
	log    *slog.Logger
}

// New returns the Handler. The demo page runs under a strict Content-Security-Policy: the widget
// needs no inline script, eval or third-party origin.
func New(log *slog.Logger) *Handler {
	h := &Handler{assets: map[string]asset{}, log: log}
	add := func(route, name string, headers map[string]string) {
		b, _ := files.ReadFile("files/" + name) // embedded: cannot fail
		sum := sha256.Sum256(b)
		headers["x-content-type-options"] = "nosniff"
		h.assets[route] = asset{body: string(b), etag: `"` + hex.EncodeToString(sum[:8]) + `"`, headers: headers}
	}
	add("GET /widget.js", "widget.js", map[string]string{
		"content-type":                 "text/javascript; charset=utf-8",
		"cache-control":                "public, max-age=300",
		"access-control-allow-origin":  "*", // a public script; the API routes check origins
		"cross-origin-resource-policy": "cross-origin",
	})
	add("GET /widget/demo", "demo.html", map[string]string{
		"content-type":            "text/html; charset=utf-8",
		"cache-control":           "no-cache",
		"content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
		"referrer-policy":         "no-referrer",
	})
	add("GET /openapi.json", "openapi.json", map[string]string{
		"content-type":                 "application/json",
		"cache-control":                "public, max-age=300",
		"access-control-allow-origin":  "*", // public, for API explorers and client generators in a browser
		"cross-origin-resource-policy": "cross-origin",
	})
	return h
}

// Handle is the Lambda handler.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	a, ok := h.assets[req.RouteKey]
	if !ok {
		return apigw.Error(ctx, h.log, apierr.New(apierr.NotFound, "no such file")), nil
	}
	headers := map[string]string{"etag": a.etag}
	for k, v := range a.headers {
		headers[k] = v
	}
	for _, tag := range strings.Split(apigw.Header(&req, "if-none-match"), ",") {
		if strings.TrimSpace(tag) == a.etag {
			return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusNotModified, Headers: headers}, nil
		}
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK, Headers: headers, Body: a.body}, nil
}
