// Package httpapi serves HTTP routes locally the way an API Gateway HTTP API with Lambda proxy
// integrations (payload format 2.0) does, so functions see the same events and responses as on AWS.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// DefaultMaxBodyBytes is API Gateway's HTTP API payload quota (10 MB).
const DefaultMaxBodyBytes = 10 << 20

const (
	accountID    = "000000000000"
	apiID        = "local"
	defaultStage = "$default"
)

// Invoker runs a function synchronously and returns its response payload. Any error is a
// function error.
type Invoker interface {
	Invoke(ctx context.Context, function string, payload []byte) ([]byte, error)
}

// Route is one HTTP API route and the function it integrates with.
type Route struct {
	// Method is GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY (case-insensitive); empty or
	// ANY for the $default route.
	Method string
	// Path is a resource path such as /v1/x/{id} or /files/{proxy+}, or "$default".
	Path string
	// Function is the name the Invoker knows the function by.
	Function string
}

// Options configures a Gateway. The zero value serves the $default stage with API Gateway's limits.
type Options struct {
	// Stage is the stage name; "" means "$default", served at the root. Any other stage is
	// served under /{Stage}, and rawPath keeps that prefix, as on AWS.
	Stage string
	// MaxBodyBytes is the largest request body; larger bodies get 413 without an invocation.
	// Zero or less means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// Now is the clock for requestContext.time; nil means time.Now.
	Now func() time.Time
}

// Gateway is an http.Handler that routes requests to functions like an HTTP API.
type Gateway struct {
	router  *router
	inv     Invoker
	stage   string
	maxBody int64
	log     *slog.Logger
	now     func() time.Time
}

// New validates routes and returns a Gateway serving them. Two routes with the same method and
// path (variable names aside) are an error, as is a second $default route.
func New(routes []Route, inv Invoker, opts Options) (*Gateway, error) {
	if inv == nil {
		return nil, errors.New("httpapi: nil invoker")
	}
	rt, err := newRouter(routes)
	if err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	g := &Gateway{router: rt, inv: inv, stage: opts.Stage, maxBody: opts.MaxBodyBytes, log: opts.Logger, now: opts.Now}
	if g.stage == "" {
		g.stage = defaultStage
	}
	if g.stage != defaultStage && (strings.ContainsAny(g.stage, "/?#%") || strings.HasPrefix(g.stage, "$")) {
		return nil, fmt.Errorf("httpapi: invalid stage name %q", g.stage)
	}
	if g.maxBody <= 0 {
		g.maxBody = DefaultMaxBodyBytes
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	return g, nil
}

// ServeHTTP routes r, invokes the route's function with a payload 2.0 event and writes the
// function's response, or API Gateway's own error response.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := newRequestID()
	rawPath := rawPathOf(r.URL.EscapedPath())
	logAttrs := []slog.Attr{slog.String("method", r.Method), slog.String("path", rawPath), slog.String("request_id", reqID)}
	finish := func(status int, rt *route, extra ...slog.Attr) {
		attrs := append(logAttrs, slog.Int("status", status), slog.Duration("duration", time.Since(start)))
		if rt != nil {
			attrs = append(attrs, slog.String("route", rt.key), slog.String("function", rt.function))
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		g.log.LogAttrs(r.Context(), level, "apigw request", append(attrs, extra...)...)
	}

	if r.ContentLength > g.maxBody {
		writeMessage(w, reqID, http.StatusRequestEntityTooLarge)
		finish(http.StatusRequestEntityTooLarge, nil)
		return
	}
	var rt *route
	var params map[string]string
	if routePath, ok := g.routingPath(rawPath); ok {
		rt, params = g.router.match(r.Method, routePath)
	}
	if rt == nil {
		writeMessage(w, reqID, http.StatusNotFound)
		finish(http.StatusNotFound, nil)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, g.maxBody+1))
	if err != nil {
		writeMessage(w, reqID, http.StatusBadRequest)
		finish(http.StatusBadRequest, rt, slog.String("err", err.Error()))
		return
	}
	if int64(len(body)) > g.maxBody {
		writeMessage(w, reqID, http.StatusRequestEntityTooLarge)
		finish(http.StatusRequestEntityTooLarge, rt)
		return
	}

	ev := g.event(r, rt, params, rawPath, body, reqID)
	payload, err := json.Marshal(ev)
	if err != nil {
		writeMessage(w, reqID, http.StatusInternalServerError)
		finish(http.StatusInternalServerError, rt, slog.String("err", fmt.Sprintf("encode event: %v", err)))
		return
	}
	out, err := g.inv.Invoke(r.Context(), rt.function, payload)
	if err != nil {
		writeMessage(w, reqID, http.StatusInternalServerError)
		finish(http.StatusInternalServerError, rt, slog.String("err", fmt.Sprintf("function error: %v", err)))
		return
	}
	resp, err := decodeResponse(out)
	if err != nil {
		writeMessage(w, reqID, http.StatusInternalServerError)
		finish(http.StatusInternalServerError, rt, slog.String("err", fmt.Sprintf("malformed function response: %v", err)))
		return
	}
	dst := w.Header()
	for k, vs := range resp.header {
		dst[k] = vs
	}
	if _, ok := dst["Content-Type"]; !ok {
		dst["Content-Type"] = nil // API Gateway adds none; keep net/http from sniffing one
	}
	dst.Set("Apigw-Requestid", reqID)
	w.WriteHeader(resp.status)
	if _, err := w.Write(resp.body); err != nil {
		finish(resp.status, rt, slog.String("err", fmt.Sprintf("write response: %v", err)))
		return
	}
	finish(resp.status, rt)
}

// routingPath maps a rawPath to the path routes are matched against: extra leading slashes
// count as one (as on AWS), and a named stage's prefix is removed. ok is false when the path
// is outside the stage.
func (g *Gateway) routingPath(rawPath string) (string, bool) {
	p := "/" + strings.TrimLeft(rawPath, "/")
	if g.stage == defaultStage {
		return p, true
	}
	rest, ok := strings.CutPrefix(p, "/"+g.stage)
	if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
		return "", false
	}
	if rest == "" {
		rest = "/"
	}
	return rest, true
}

// writeMessage writes one of API Gateway's own responses: {"message":"<status text>"}.
func writeMessage(w http.ResponseWriter, reqID string, status int) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Apigw-Requestid", reqID)
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"message": http.StatusText(status)})
	_, _ = w.Write(b)
}

// newRequestID returns an id shaped like API Gateway's (16 base64 characters).
func newRequestID() string {
	var b [11]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.StdEncoding.EncodeToString(b[:])
}

// event builds the payload 2.0 event for r.
func (g *Gateway) event(r *http.Request, rt *route, params map[string]string, rawPath string, body []byte, reqID string) *events.APIGatewayV2HTTPRequest {
	now := g.now()
	headers, cookies := requestHeaders(r, body, now)
	ev := &events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              rt.key,
		RawPath:               rawPath,
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: queryParameters(r.URL.RawQuery),
		PathParameters:        params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     rt.key,
			AccountID:    accountID,
			Stage:        g.stage,
			RequestID:    reqID,
			APIID:        apiID,
			DomainName:   r.Host,
			DomainPrefix: domainPrefix(r.Host),
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      rawPath,
				Protocol:  r.Proto,
				SourceIP:  sourceIP(r),
				UserAgent: r.UserAgent(),
			},
		},
	}
	ev.Body, ev.IsBase64Encoded = encodeBody(r.Header.Get("Content-Type"), body)
	return ev
}
