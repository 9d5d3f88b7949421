package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// fakeInvoker records every invocation and answers with respond (by default a 200 "ok").
type fakeInvoker struct {
	mu      sync.Mutex
	calls   []invocation
	respond func(function string, payload []byte) ([]byte, error)
}

type invocation struct {
	function string
	event    events.APIGatewayV2HTTPRequest
}

func (f *fakeInvoker) Invoke(_ context.Context, function string, payload []byte) ([]byte, error) {
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.calls = append(f.calls, invocation{function: function, event: ev})
	f.mu.Unlock()
	if f.respond == nil {
		return []byte(`{"statusCode":200,"body":"ok"}`), nil
	}
	return f.respond(function, payload)
}

func (f *fakeInvoker) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeInvoker) last(t *testing.T) invocation {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		t.Fatal("no invocation")
	}
	return f.calls[len(f.calls)-1]
}

func respondWith(payload string, err error) func(string, []byte) ([]byte, error) {
	return func(string, []byte) ([]byte, error) { return []byte(payload), err }
}

func newGateway(t *testing.T, routes []Route, inv Invoker, opts Options) *Gateway {
	t.Helper()
	g, err := New(routes, inv, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

// do serves one request built from method, target and body through g.
func do(g http.Handler, method, target string, body io.Reader, header http.Header) *http.Response {
	req := httptest.NewRequest(method, target, body)
	maps.Copy(req.Header, header)
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	return rec.Result()
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

func TestRoutingPrecedence(t *testing.T) {
	routes := []Route{
		{"GET", "/pets/dog/1", "exact"},
		{"GET", "/pets/dog/{id}", "dogParam"},
		{"GET", "/pets/{proxy+}", "petsGreedy"},
		{"ANY", "/{proxy+}", "rootGreedy"},
		{"", "$default", "default"},
		{"GET", "/items", "itemsGet"},
		{"ANY", "/items", "itemsAny"},
		{"GET", "/a/{x}/c", "aXc"},
		{"GET", "/{y}/b/c", "yBc"},
		{"GET", "/{p}/q/r", "pQr"},
		{"get", "/deep/{proxy+}", "deepGreedy"},
		{"GET", "/deep/er/{rest+}", "deeperGreedy"},
		{"POST", "/v1/inbound/generic", "inbound"},
		{"GET", "/webhook/{name}/threads/{threadId}/runs/{runId}", "runStatus"},
		{"GET", "/", "root"},
	}
	tests := []struct {
		method, path string
		function     string
		routeKey     string
		params       map[string]string
	}{
		{"GET", "/pets/dog/1", "exact", "GET /pets/dog/1", nil},
		{"GET", "/pets/dog/2", "dogParam", "GET /pets/dog/{id}", map[string]string{"id": "2"}},
		{"GET", "/pets/cat/1", "petsGreedy", "GET /pets/{proxy+}", map[string]string{"proxy": "cat/1"}},
		{"POST", "/pets/cat/1", "rootGreedy", "ANY /{proxy+}", map[string]string{"proxy": "pets/cat/1"}},
		{"POST", "/pets/dog/1", "rootGreedy", "ANY /{proxy+}", map[string]string{"proxy": "pets/dog/1"}},
		{"GET", "/items", "itemsGet", "GET /items", nil},
		{"DELETE", "/items", "itemsAny", "ANY /items", nil},
		{"GET", "//items", "itemsGet", "GET /items", nil},
		{"GET", "/items/", "rootGreedy", "ANY /{proxy+}", map[string]string{"proxy": "items/"}},
		{"GET", "/a/b/c", "aXc", "GET /a/{x}/c", map[string]string{"x": "b"}},
		{"GET", "/z/b/c", "yBc", "GET /{y}/b/c", map[string]string{"y": "z"}},
		{"GET", "/deep/q/r", "pQr", "GET /{p}/q/r", map[string]string{"p": "deep"}},
		{"GET", "/deep/er/x/y", "deeperGreedy", "GET /deep/er/{rest+}", map[string]string{"rest": "x/y"}},
		{"GET", "/deep/x/y/z", "deepGreedy", "GET /deep/{proxy+}", map[string]string{"proxy": "x/y/z"}},
		{"POST", "/deep/x", "rootGreedy", "ANY /{proxy+}", map[string]string{"proxy": "deep/x"}},
		{"GET", "/", "root", "GET /", nil},
		{"POST", "/", "default", "$default", nil},
		{"POST", "/v1/inbound/generic", "inbound", "POST /v1/inbound/generic", nil},
		{"GET", "/webhook/gh/threads/t1/runs/r1", "runStatus", "GET /webhook/{name}/threads/{threadId}/runs/{runId}",
			map[string]string{"name": "gh", "threadId": "t1", "runId": "r1"}},
	}
	inv := &fakeInvoker{}
	g := newGateway(t, routes, inv, Options{})
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp := do(g, tt.method, tt.path, nil, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200", resp.StatusCode)
			}
			got := inv.last(t)
			if got.function != tt.function {
				t.Errorf("function = %q, want %q", got.function, tt.function)
			}
			if got.event.RouteKey != tt.routeKey || got.event.RequestContext.RouteKey != tt.routeKey {
				t.Errorf("routeKey = %q / %q, want %q", got.event.RouteKey, got.event.RequestContext.RouteKey, tt.routeKey)
			}
			if !maps.Equal(got.event.PathParameters, tt.params) || (tt.params == nil) != (got.event.PathParameters == nil) {
				t.Errorf("pathParameters = %v, want %v", got.event.PathParameters, tt.params)
			}
			if got.event.RawPath != tt.path {
				t.Errorf("rawPath = %q, want %q", got.event.RawPath, tt.path)
			}
		})
	}
}

func TestFallbackAndNotFound(t *testing.T) {
	specific := []Route{
		{"POST", "/v1/inbound/generic", "inbound"},
		{"GET", "/v1/things/{id}", "thing"},
	}
	t.Run("default route", func(t *testing.T) {
		inv := &fakeInvoker{}
		g := newGateway(t, append(slices.Clone(specific), Route{Path: "$default", Function: "notfound"}), inv, Options{})
		for _, c := range []struct{ method, path string }{
			{"GET", "/v1/inbound/generic"}, // method mismatch on a known path
			{"GET", "/v1/things/"},         // a variable needs a non-empty segment
			{"GET", "/v1/things/a/b"},
			{"PUT", "/elsewhere"},
		} {
			resp := do(g, c.method, c.path, nil, nil)
			got := inv.last(t)
			if resp.StatusCode != http.StatusOK || got.function != "notfound" || got.event.RouteKey != "$default" {
				t.Errorf("%s %s: status %d, function %q, routeKey %q; want the $default route", c.method, c.path, resp.StatusCode, got.function, got.event.RouteKey)
			}
			if got.event.PathParameters != nil {
				t.Errorf("%s %s: pathParameters = %v, want none", c.method, c.path, got.event.PathParameters)
			}
		}
	})
	t.Run("no default route", func(t *testing.T) {
		inv := &fakeInvoker{}
		g := newGateway(t, specific, inv, Options{})
		for _, c := range []struct{ method, path string }{
			{"GET", "/v1/inbound/generic"},
			{"GET", "/nope"},
			{"GET", "/"},
		} {
			resp := do(g, c.method, c.path, nil, nil)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s: status = %d, want 404", c.method, c.path, resp.StatusCode)
			}
			if body := readBody(t, resp); body != `{"message":"Not Found"}` {
				t.Errorf("%s %s: body = %s", c.method, c.path, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content-type = %q", ct)
			}
			if resp.Header.Get("Apigw-Requestid") == "" {
				t.Error("no apigw-requestid header")
			}
		}
		if n := inv.count(); n != 0 {
			t.Errorf("invoked %d times, want 0", n)
		}
	})
}

func TestEventMapping(t *testing.T) {
	inv := &fakeInvoker{}
	now := time.Date(2026, 3, 12, 19, 3, 58, 390_000_000, time.UTC)
	g := newGateway(t, []Route{{"POST", "/v1/things/{id}/files/{proxy+}", "files"}}, inv, Options{Now: func() time.Time { return now }})
	srv := httptest.NewServer(g)
	defer srv.Close()

	const query = "b=2&a=1&a=%20two&flag&x=y%3Dz"
	req, err := http.NewRequest("POST", srv.URL+"/v1/things/a%20b/files/x%2Fy%252Ez?"+query, strings.NewReader(`{"k":"v"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	req.Header.Add("Cookie", "a=1; b=2")
	req.Header.Add("Cookie", "c=3")
	req.Header.Set("User-Agent", "test-agent/1")
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	ev := inv.last(t).event
	host := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := net.SplitHostPort(host)

	check := func(name string, got, want any) {
		t.Helper()
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if !bytes.Equal(gb, wb) {
			t.Errorf("%s = %s, want %s", name, gb, wb)
		}
	}
	check("version", ev.Version, "2.0")
	check("routeKey", ev.RouteKey, "POST /v1/things/{id}/files/{proxy+}")
	check("rawPath", ev.RawPath, "/v1/things/a b/files/x/y%252Ez")
	check("rawQueryString", ev.RawQueryString, query)
	check("cookies", ev.Cookies, []string{"a=1", "b=2", "c=3"})
	check("queryStringParameters", ev.QueryStringParameters, map[string]string{"a": "1, two", "b": "2", "flag": "", "x": "y=z"})
	check("pathParameters", ev.PathParameters, map[string]string{"id": "a b", "proxy": "x/y%2Ez"})
	check("body", ev.Body, `{"k":"v"}`)
	check("isBase64Encoded", ev.IsBase64Encoded, false)

	if _, ok := ev.Headers["cookie"]; ok {
		t.Error("cookie header should be left out of headers")
	}
	for k := range ev.Headers {
		if k != strings.ToLower(k) {
			t.Errorf("header name %q is not lower case", k)
		}
	}
	for k, want := range map[string]string{
		"x-multi":           "one,two",
		"host":              host,
		"content-type":      "application/json",
		"content-length":    "9",
		"user-agent":        "test-agent/1",
		"x-forwarded-for":   "127.0.0.1",
		"x-forwarded-proto": "http",
		"x-forwarded-port":  port,
	} {
		if got := ev.Headers[k]; got != want {
			t.Errorf("headers[%q] = %q, want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(ev.Headers["x-amzn-trace-id"], "Root=1-") {
		t.Errorf("x-amzn-trace-id = %q", ev.Headers["x-amzn-trace-id"])
	}

	rc := ev.RequestContext
	check("accountId", rc.AccountID, accountID)
	check("apiId", rc.APIID, "local")
	check("domainName", rc.DomainName, host)
	check("domainPrefix", rc.DomainPrefix, "127.0.0.1")
	check("routeKey", rc.RouteKey, ev.RouteKey)
	check("stage", rc.Stage, "$default")
	check("time", rc.Time, "12/Mar/2026:19:03:58 +0000")
	check("timeEpoch", rc.TimeEpoch, now.UnixMilli())
	check("http", rc.HTTP, events.APIGatewayV2HTTPRequestContextHTTPDescription{
		Method: "POST", Path: "/v1/things/a b/files/x/y%252Ez", Protocol: "HTTP/1.1", SourceIP: "127.0.0.1", UserAgent: "test-agent/1",
	})
	if id := resp.Header.Get("Apigw-Requestid"); id == "" || id != rc.RequestID {
		t.Errorf("apigw-requestid header %q, event requestId %q", id, rc.RequestID)
	}
}

func TestEmptyRequest(t *testing.T) {
	inv := &fakeInvoker{}
	g := newGateway(t, []Route{{"GET", "/x", "fn"}}, inv, Options{})
	do(g, "GET", "/x", nil, nil)
	ev := inv.last(t).event
	if ev.Body != "" || ev.IsBase64Encoded || ev.QueryStringParameters != nil || ev.Cookies != nil || ev.RawQueryString != "" {
		t.Errorf("empty request mapped to body %q b64 %v query %v cookies %v raw %q",
			ev.Body, ev.IsBase64Encoded, ev.QueryStringParameters, ev.Cookies, ev.RawQueryString)
	}
	if _, ok := ev.Headers["content-length"]; ok {
		t.Error("content-length for an empty body")
	}
}

func TestRequestIDsAreUnique(t *testing.T) {
	inv := &fakeInvoker{}
	g := newGateway(t, []Route{{"GET", "/x", "fn"}}, inv, Options{})
	seen := map[string]bool{}
	for range 50 {
		resp := do(g, "GET", "/x", nil, nil)
		id := resp.Header.Get("Apigw-Requestid")
		if len(id) != 16 || seen[id] {
			t.Fatalf("request id %q: bad length or repeated", id)
		}
		seen[id] = true
		if ev := inv.last(t).event; ev.RequestContext.RequestID != id {
			t.Fatalf("event requestId %q, header %q", ev.RequestContext.RequestID, id)
		}
	}
}

func TestRequestBodyEncoding(t *testing.T) {
	tests := []struct {
		name, contentType string
		body              []byte
		base64            bool
	}{
		{"json", "application/json", []byte(`{"a":1}`), false},
		{"json with charset", "application/json; charset=utf-8", []byte(`{"a":"é"}`), false},
		{"text", "text/plain; charset=utf-8", []byte("héllo"), false},
		{"xml", "application/xml", []byte("<a/>"), false},
		{"javascript", "application/javascript", []byte("f()"), false},
		{"octet-stream", "application/octet-stream", []byte{0, 1, 2, 0xff}, true},
		{"image", "image/png", []byte("\x89PNG"), true},
		{"form", "application/x-www-form-urlencoded", []byte("a=1&b=2"), true},
		{"no content type", "", []byte("hello"), true},
		{"json but not utf-8", "application/json", []byte{0xff, 0xfe, '{'}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := &fakeInvoker{}
			g := newGateway(t, []Route{{"POST", "/up", "fn"}}, inv, Options{})
			h := http.Header{}
			if tt.contentType != "" {
				h.Set("Content-Type", tt.contentType)
			}
			do(g, "POST", "/up", bytes.NewReader(tt.body), h)
			ev := inv.last(t).event
			if ev.IsBase64Encoded != tt.base64 {
				t.Fatalf("isBase64Encoded = %v, want %v", ev.IsBase64Encoded, tt.base64)
			}
			got := []byte(ev.Body)
			if ev.IsBase64Encoded {
				var err error
				if got, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
					t.Fatalf("body is not base64: %v", err)
				}
			}
			if !bytes.Equal(got, tt.body) {
				t.Errorf("body = %q, want %q", got, tt.body)
			}
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	inv := &fakeInvoker{}
	g := newGateway(t, []Route{{"POST", "/up", "fn"}}, inv, Options{MaxBodyBytes: 16})
	for _, tc := range []struct {
		name        string
		size        int
		knownLength bool
		want        int
	}{
		{"at the limit", 16, true, http.StatusOK},
		{"over, content-length", 17, true, http.StatusRequestEntityTooLarge},
		{"over, chunked", 17, false, http.StatusRequestEntityTooLarge},
		{"at the limit, chunked", 16, false, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := inv.count()
			req := httptest.NewRequest("POST", "/up", bytes.NewReader(bytes.Repeat([]byte("a"), tc.size)))
			req.Header.Set("Content-Type", "text/plain")
			if !tc.knownLength {
				req.ContentLength = -1
			}
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, req)
			resp := rec.Result()
			if resp.StatusCode != tc.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.want)
			}
			invoked := inv.count() - before
			if tc.want == http.StatusRequestEntityTooLarge {
				if body := readBody(t, resp); body != `{"message":"Request Entity Too Large"}` {
					t.Errorf("body = %s", body)
				}
				if invoked != 0 {
					t.Error("function invoked for a body over the limit")
				}
			} else if invoked != 1 {
				t.Errorf("invoked %d times, want 1", invoked)
			}
		})
	}
}

func TestResponseMapping(t *testing.T) {
	png := []byte{0x89, 'P', 'N', 'G', 0, 0xff}
	tests := []struct {
		name       string
		payload    string
		status     int
		header     http.Header // expected values; a nil value means the header must be absent
		body       []byte
		setCookies []string
	}{
		{
			name: "structured",
			payload: `{"statusCode":201,"headers":{"content-type":"application/json","x-one":"1","X-Both":"b"},
				"multiValueHeaders":{"x-many":["m1","m2"],"x-both":["a","b"]},"cookies":["s=1; Path=/","t=2"],"body":"{\"ok\":true}"}`,
			status: 201,
			header: http.Header{"Content-Type": {"application/json"}, "X-One": {"1"}, "X-Many": {"m1", "m2"}, "X-Both": {"a", "b"}},
			body:   []byte(`{"ok":true}`), setCookies: []string{"s=1; Path=/", "t=2"},
		},
		{
			name:    "cookies before a set-cookie header",
			payload: `{"statusCode":200,"headers":{"set-cookie":"h=0"},"cookies":["c=1"]}`,
			status:  200, header: http.Header{"Content-Type": nil}, setCookies: []string{"c=1", "h=0"},
		},
		{
			name:    "base64 body",
			payload: `{"statusCode":200,"headers":{"content-type":"image/png"},"isBase64Encoded":true,"body":"` + base64.StdEncoding.EncodeToString(png) + `"}`,
			status:  200, header: http.Header{"Content-Type": {"image/png"}}, body: png,
		},
		{
			name:    "status code as a string",
			payload: `{"statusCode":"204"}`,
			status:  204, header: http.Header{"Content-Type": nil},
		},
		{
			name:    "gateway-owned headers are dropped",
			payload: `{"statusCode":200,"headers":{"content-length":"999","apigw-requestid":"spoof"},"body":"abc"}`,
			status:  200, header: http.Header{"Content-Length": nil}, body: []byte("abc"),
		},
		{
			name:    "no statusCode: object",
			payload: `{"message":"Hello from Lambda!"}`,
			status:  200, header: http.Header{"Content-Type": {"application/json"}}, body: []byte(`{"message":"Hello from Lambda!"}`),
		},
		{
			name:    "no statusCode: object with body fields",
			payload: `{"body":"x","headers":{"a":"b"}}`,
			status:  200, header: http.Header{"Content-Type": {"application/json"}, "A": nil}, body: []byte(`{"body":"x","headers":{"a":"b"}}`),
		},
		{
			name:    "null statusCode",
			payload: `{"statusCode":null,"n":1}`,
			status:  200, header: http.Header{"Content-Type": {"application/json"}}, body: []byte(`{"statusCode":null,"n":1}`),
		},
		{
			name:    "no statusCode: string",
			payload: `"Hello from Lambda!"`,
			status:  200, header: http.Header{"Content-Type": {"application/json"}}, body: []byte("Hello from Lambda!"),
		},
		{
			name:    "no statusCode: array",
			payload: `[1,2]`,
			status:  200, header: http.Header{"Content-Type": {"application/json"}}, body: []byte("[1,2]"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := &fakeInvoker{respond: respondWith(tt.payload, nil)}
			g := newGateway(t, []Route{{"GET", "/r", "fn"}}, inv, Options{})
			resp := do(g, "GET", "/r", nil, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			for k, want := range tt.header {
				if got := resp.Header.Values(k); !slices.Equal(got, want) {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if got := resp.Cookies(); len(got) != len(tt.setCookies) {
				t.Errorf("cookies = %v, want %v", got, tt.setCookies)
			}
			if got := resp.Header.Values("Set-Cookie"); !slices.Equal(got, tt.setCookies) {
				t.Errorf("set-cookie = %q, want %q", got, tt.setCookies)
			}
			if id := resp.Header.Values("Apigw-Requestid"); len(id) != 1 || id[0] != inv.last(t).event.RequestContext.RequestID {
				t.Errorf("apigw-requestid = %q", id)
			}
			if got := readBody(t, resp); got != string(tt.body) {
				t.Errorf("body = %q, want %q", got, tt.body)
			}
		})
	}
}

func TestFunctionFailures(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		err     error
	}{
		{"function error", `{"errorMessage":"boom"}`, errors.New("Unhandled: boom")},
		{"invalid JSON", `not json`, nil},
		{"empty response", ``, nil},
		{"truncated JSON", `{"statusCode":200`, nil},
		{"status code zero", `{"statusCode":0}`, nil},
		{"status code too large", `{"statusCode":700}`, nil},
		{"status code not a number", `{"statusCode":"abc"}`, nil},
		{"status code fraction", `{"statusCode":200.5}`, nil},
		{"body not a string", `{"statusCode":200,"body":{"a":1}}`, nil},
		{"headers not strings", `{"statusCode":200,"headers":{"a":1}}`, nil},
		{"bad base64", `{"statusCode":200,"isBase64Encoded":true,"body":"***"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := &fakeInvoker{respond: respondWith(tt.payload, tt.err)}
			g := newGateway(t, []Route{{"GET", "/r", "fn"}}, inv, Options{})
			resp := do(g, "GET", "/r", nil, nil)
			if resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("status = %d, want 500", resp.StatusCode)
			}
			if body := readBody(t, resp); body != `{"message":"Internal Server Error"}` {
				t.Errorf("body = %s", body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content-type = %q", ct)
			}
			if resp.Header.Get("Apigw-Requestid") == "" {
				t.Error("no apigw-requestid header")
			}
		})
	}
}

func TestNamedStage(t *testing.T) {
	inv := &fakeInvoker{}
	g := newGateway(t, []Route{{"GET", "/items", "items"}, {"GET", "/", "root"}}, inv, Options{Stage: "prod"})
	resp := do(g, "GET", "/prod/items", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	ev := inv.last(t).event
	if ev.RawPath != "/prod/items" || ev.RequestContext.HTTP.Path != "/prod/items" || ev.RequestContext.Stage != "prod" || ev.RouteKey != "GET /items" {
		t.Errorf("rawPath %q, http.path %q, stage %q, routeKey %q", ev.RawPath, ev.RequestContext.HTTP.Path, ev.RequestContext.Stage, ev.RouteKey)
	}
	do(g, "GET", "/prod", nil, nil)
	if got := inv.last(t).function; got != "root" {
		t.Errorf("/prod went to %q, want root", got)
	}
	for _, p := range []string{"/items", "/production/items", "/"} {
		if resp := do(g, "GET", p, nil, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status = %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestNewValidation(t *testing.T) {
	inv := &fakeInvoker{}
	tests := []struct {
		name   string
		routes []Route
	}{
		{"duplicate", []Route{{"GET", "/a", "f"}, {"GET", "/a", "g"}}},
		{"duplicate ignoring case of method", []Route{{"GET", "/a", "f"}, {"get", "/a", "g"}}},
		{"duplicate variable names aside", []Route{{"GET", "/a/{x}", "f"}, {"GET", "/a/{y}", "g"}}},
		{"duplicate greedy", []Route{{"ANY", "/{proxy+}", "f"}, {"ANY", "/{rest+}", "g"}}},
		{"duplicate $default", []Route{{"", "$default", "f"}, {"ANY", "$default", "g"}}},
		{"$default with a method", []Route{{"GET", "$default", "f"}}},
		{"bad method", []Route{{"FETCH", "/a", "f"}}},
		{"no method", []Route{{"", "/a", "f"}}},
		{"no function", []Route{{"GET", "/a", ""}}},
		{"relative path", []Route{{"GET", "a", "f"}}},
		{"empty segment", []Route{{"GET", "/a//b", "f"}}},
		{"trailing slash", []Route{{"GET", "/a/", "f"}}},
		{"greedy not last", []Route{{"GET", "/{proxy+}/a", "f"}}},
		{"partial segment variable", []Route{{"GET", "/a{id}", "f"}}},
		{"empty variable", []Route{{"GET", "/a/{}", "f"}}},
		{"repeated variable", []Route{{"GET", "/{id}/{id}", "f"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.routes, inv, Options{}); err == nil {
				t.Error("New accepted invalid routes")
			}
		})
	}
	if _, err := New(nil, nil, Options{}); err == nil {
		t.Error("New accepted a nil invoker")
	}
	if _, err := New(nil, inv, Options{Stage: "a/b"}); err == nil {
		t.Error("New accepted a stage with a slash")
	}
	ok := []Route{
		{"GET", "/a", "f"}, {"POST", "/a", "f"}, {"ANY", "/a", "f"}, {"GET", "/a/{x}", "f"},
		{"GET", "/{proxy+}", "f"}, {"GET", "/a/{proxy+}", "f"}, {"", "$default", "f"}, {"GET", "/", "f"},
	}
	if _, err := New(ok, inv, Options{}); err != nil {
		t.Errorf("New rejected valid routes: %v", err)
	}
}

func TestRawPathOf(t *testing.T) {
	for in, want := range map[string]string{
		"/plain":        "/plain",
		"/a%20b":        "/a b",
		"/a%2Fb":        "/a/b",
		"/a%252Eb":      "/a%252Eb",
		"/%25":          "/%25",
		"/caf%C3%A9":    "/café",
		"/bad%zz":       "/bad%zz",
		"/end%2":        "/end%2",
		"/mixed%41%25x": "/mixedA%25x",
	} {
		if got := rawPathOf(in); got != want {
			t.Errorf("rawPathOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestQueryParameters(t *testing.T) {
	got := queryParameters("a=1&a=2&b&&c=%26&d=x+y&e=%zz&;=s")
	want := map[string]string{"a": "1,2", "b": "", "c": "&", "d": "x y", "e": "%zz", ";": "s"}
	if !maps.Equal(got, want) {
		t.Errorf("queryParameters = %v, want %v", got, want)
	}
	if queryParameters("") != nil {
		t.Error("empty query should give nil")
	}
}
