package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Every request the end-to-end tests send through apiClient (do, the stream readers, the widget's
// routes) and every response they get is checked against openapi.yaml, so that the document cannot
// drift from what the stack does:
//
//   - The response always: its status must be documented for the route (an undocumented status
//     fails), its headers and its JSON body must match; of an SSE response (text/event-stream) the
//     status and headers only, the stream is left unread. A request for a route the document does not
//     have must get the $default route's 404 error envelope.
//   - The request too. The tests also send requests that are wrong on purpose (attack tests, bad
//     input); those fail the request's validation, and that is their point. So a request the document
//     refuses must be refused by the gateway, with a documented 4xx: the same request answered with a
//     2xx (or a 5xx) fails the test, as the document then refuses what the gateway accepts. A request
//     the document accepts may still be refused (a wrong secret is a well-formed request).
//
// Any violation is reported with t.Errorf: the method, the path, the status and the validator's error.

// spec is openapi.yaml, loaded once per test binary.
var spec = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromFile(filepath.Join("..", "..", "openapi.yaml"))
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.yaml is not valid: %w", err)
	}
	return doc, nil
})

// specRouters holds one router per stack address (kin-openapi's legacy router: it prefers a concrete
// path only for the methods it has, as API Gateway does, where gorillamux stops at the concrete path
// with "method not allowed"; the document's servers are the deployed API and
// make dev's, the tests' stacks listen on ports of their own.
var specRouters sync.Map // "http://host:port" → routers.Router

func routerFor(base string) (routers.Router, *openapi3.T, error) {
	doc, err := spec()
	if err != nil {
		return nil, nil, err
	}
	if r, ok := specRouters.Load(base); ok {
		return r.(routers.Router), doc, nil
	}
	local := *doc
	local.Servers = openapi3.Servers{{URL: base}}
	r, err := legacy.NewRouter(&local)
	if err != nil {
		return nil, nil, err
	}
	specRouters.Store(base, r)
	return r, doc, nil
}

// apiClient returns a client whose requests and responses are checked against openapi.yaml; a
// violation fails t.
func apiClient(t testing.TB) *http.Client {
	return &http.Client{Transport: &specTransport{base: http.DefaultTransport, report: t.Errorf}}
}

type specTransport struct {
	base   http.RoundTripper
	report func(format string, args ...any)
}

func (s *specTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	if strings.HasPrefix(req.URL.Path, "/_local/") { // local mode's own pages: not the API's
		return s.base.RoundTrip(req)
	}
	base := req.URL.Scheme + "://" + req.URL.Host
	router, doc, err := routerFor(base)
	if err != nil {
		s.report("openapi: %v", err)
		return s.base.RoundTrip(req)
	}
	where := req.Method + " " + req.URL.Path

	// Validate a copy of the request, so that the one sent is exactly the test's.
	check := req.Clone(req.Context())
	check.Body = io.NopCloser(bytes.NewReader(body))
	if len(body) > 0 && check.Header.Get("Content-Type") == "" {
		// The handlers read every body as JSON whatever its Content-Type (openapi.yaml says so).
		check.Header.Set("Content-Type", "application/json")
	}
	route, params, routeErr := router.FindRoute(check)
	var input *openapi3filter.RequestValidationInput
	var reqErr error
	if routeErr == nil {
		input = &openapi3filter.RequestValidationInput{
			Request: check, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: presented, IncludeResponseStatus: true},
		}
		reqErr = openapi3filter.ValidateRequest(req.Context(), input)
	}

	resp, err := s.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if routeErr != nil {
		// Not a route of the document: only the $default route's 404 envelope may answer it.
		raw, rerr := readBack(resp)
		if rerr != nil {
			return nil, rerr
		}
		if resp.StatusCode != http.StatusNotFound || !isErrorEnvelope(doc, raw) {
			s.report("openapi: %s → %d: not a route of openapi.yaml (%v), and not the $default route's 404 error envelope: %.300s", where, resp.StatusCode, routeErr, raw)
		}
		return resp, nil
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		out.Options.ExcludeResponseBody = true // status and headers; the stream stays unread
		out.Body = io.NopCloser(strings.NewReader(""))
	} else {
		raw, rerr := readBack(resp)
		if rerr != nil {
			return nil, rerr
		}
		out.Body = io.NopCloser(bytes.NewReader(raw))
	}
	if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
		s.report("openapi: %s → %d: the response does not match openapi.yaml: %v", where, resp.StatusCode, err)
	}
	if reqErr != nil && (resp.StatusCode < 400 || resp.StatusCode >= 500) {
		s.report("openapi: %s → %d: openapi.yaml refuses this request, but the gateway did not refuse it: %v", where, resp.StatusCode, reqErr)
	}
	return resp, nil
}

// readBack reads a response's body and puts it back for the test to read.
func readBack(resp *http.Response) ([]byte, error) {
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return raw, err
}

func isErrorEnvelope(doc *openapi3.T, raw []byte) bool {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return false
	}
	return doc.ValidateSchemaJSON(doc.Components.Schemas["Error"].Value, v, openapi3.EnableJSONSchema2020()) == nil
}

// presented checks that the request carries the credential a security scheme names (its value is
// the gateway's to judge: a wrong one is a well-formed request).
func presented(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s, r := in.SecurityScheme, in.RequestValidationInput.Request
	switch {
	case s.Type == "http" && s.Scheme == "bearer":
		if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
			return nil
		}
	case s.Type == "apiKey" && s.In == "header":
		if r.Header.Get(s.Name) != "" {
			return nil
		}
	case s.Type == "apiKey" && s.In == "query":
		if r.URL.Query().Get(s.Name) != "" {
			return nil
		}
	}
	return errors.New("credential not presented")
}

// TestSpecValidatorCatchesDrift shows the checks above fail a test where the gateway and the
// document disagree: an undocumented status, a body that breaks its schema, a request the
// document refuses that the gateway accepts, a route the document lacks. And that they pass an
// answer that matches, and a refused bad request.
func TestSpecValidatorCatchesDrift(t *testing.T) {
	t.Parallel()
	answers := map[string]struct {
		status int
		body   string
	}{
		"/v1/webhooks":             {201, `{"id":"sub_1","url":"https://x.example/h","events":["*"],"description":"","status":"active","consecutive_failures":0,"active_secret_count":1,"header_names":[],"fifo":false,"created_at":"2026-12-06T00:00:00Z","updated_at":"2026-12-06T00:00:00Z","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`},
		"/v1/api-keys":             {418, `{"error":{"code":"internal","message":"teapot"}}`},
		"/v1/sources":              {200, `{"data":[{"name":"x"}],"next_cursor":null}`},
		"/v1/inbound/generic":      {202, `{"thread_id":"thr_1","message_id":"msg_1","run_id":"run_1"}`},
		"/v1/integrations/trigger": {400, `{"error":{"code":"invalid_request","message":"channel is required"}}`},
		"/nowhere":                 {200, `{}`},
		"/also/nowhere":            {404, `{"error":{"code":"not_found","message":"no route"}}`},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[r.URL.Path]
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	defer srv.Close()
	cases := []struct {
		method, path, body string
		headers            map[string]string
		want               string // "" when nothing is reported
	}{
		{"POST", "/v1/webhooks", `{"url":"https://x.example/h","events":["*"]}`, map[string]string{"X-API-Key": "k"}, ""},
		{"POST", "/v1/api-keys", `{"name":"n"}`, map[string]string{"X-API-Key": "k"}, "status is not supported"},
		{"GET", "/v1/sources", "", map[string]string{"X-API-Key": "k"}, "doesn't match schema"},
		{"POST", "/v1/inbound/generic", `{"channel":"c","text":"no external_id"}`, map[string]string{"X-Hookgate-Inbound-Secret": "s"}, "did not refuse it"},
		{"POST", "/v1/integrations/trigger", `{"text":"no channel"}`, map[string]string{"X-Hookgate-Signature": "sha256=00"}, ""},
		{"GET", "/nowhere", "", nil, "not a route of openapi.yaml"},
		{"GET", "/also/nowhere", "", nil, ""},
	}
	for _, c := range cases {
		var got []string
		client := &http.Client{Transport: &specTransport{base: http.DefaultTransport, report: func(f string, a ...any) { got = append(got, fmt.Sprintf(f, a...)) }}}
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		for k, v := range c.headers {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch {
		case c.want == "" && len(got) > 0:
			t.Errorf("%s %s: reported %q, want nothing", c.method, c.path, got)
		case c.want != "" && (len(got) != 1 || !strings.Contains(got[0], c.want)):
			t.Errorf("%s %s: reported %q, want one report with %q", c.method, c.path, got, c.want)
		}
	}
}

// The stack serves openapi.yaml as JSON at GET /openapi.json, from the template's route (the
// widget assets function), byte for byte the generated file, with an ETag that answers 304.
func TestOpenAPIServedByTheStack(t *testing.T) {
	t.Parallel()
	e := sharedStack(t)
	r := do(t, http.MethodGet, e.stack.URL+"/openapi.json", nil, "")
	want, err := os.ReadFile(filepath.Join("..", "..", "shared", "widget", "static", "files", "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.status != 200 || r.raw != string(want) || r.body["openapi"] != "3.1.0" || r.header.Get("ETag") == "" {
		t.Fatalf("GET /openapi.json: %d %v %.80s", r.status, r.header, r.raw)
	}
	req, _ := http.NewRequest(http.MethodGet, e.stack.URL+"/openapi.json", nil)
	req.Header.Set("If-None-Match", r.header.Get("ETag"))
	again, err := apiClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional GET: %d", again.StatusCode)
	}
}
