package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/local/streamesm"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/catalog"
)

// Issue 15, items 4 to 6: custom headers per subscription, payload filters and the event catalog,
// each on a workspace of its own on the shared stack. Events come in through the SaaS webhook door
// (source generic, shared secret), as webhook.generic.<type> with the body as data.payload.

// shapeWS makes a workspace with an API key and a generic source; it returns the workspace, the
// management headers and the door's headers.
func shapeWS(t *testing.T, e *env, prefix string) (ws string, mgmt, door map[string]string) {
	t.Helper()
	ws = uniqueWS(prefix)
	mgmt = map[string]string{"x-api-key": apiKeyFor(t, e, ws), "content-type": "application/json"}
	createSource(t, e, ws, "generic", "shared_secret", secretFor("shared_secret"))
	return ws, mgmt, signers["shared_secret"](secretFor("shared_secret"), "", time.Now(), "")
}

// sendPayload posts one SaaS webhook; its type becomes the event type webhook.generic.<typ>.
func sendPayload(t *testing.T, e *env, ws string, door map[string]string, typ, body string) {
	t.Helper()
	r := postWebhook(t, e, ws, "source=generic", door, fmt.Sprintf(`{"type":%q,"id":"%s-%d",%s`, typ, typ, time.Now().UnixNano(), strings.TrimPrefix(body, "{")))
	if r.status != 202 {
		t.Fatalf("webhook %s: %d %s", typ, r.status, r.raw)
	}
}

// subscribeWith creates a subscription of the workspace for r with the given fields added to
// {url, events}; on success the receiver learns its secret.
func subscribeWith(t *testing.T, e *env, mgmt map[string]string, r *receiver, events, extra string) reply {
	t.Helper()
	body := fmt.Sprintf(`{"url":%q,"events":%s%s}`, r.srv.URL+"/hook", events, extra)
	resp := do(t, http.MethodPost, e.stack.URL+"/v1/webhooks", mgmt, body)
	if resp.status == 201 {
		r.mu.Lock()
		r.secret, _ = resp.body["secret"].(string)
		r.mu.Unlock()
	}
	return resp
}

func listSubs(t *testing.T, e *env, mgmt map[string]string) []map[string]any {
	t.Helper()
	resp := do(t, http.MethodGet, e.stack.URL+"/v1/webhooks?limit=100", mgmt, "")
	if resp.status != 200 {
		t.Fatalf("list subscriptions: %d %s", resp.status, resp.raw)
	}
	var out []map[string]any
	for _, s := range resp.body["data"].([]any) {
		out = append(out, s.(map[string]any))
	}
	return out
}

// errMessage is the message of an error reply.
func errMessage(r reply) string {
	e, _ := r.body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

func names(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// receivedTypes is the event types r took, sorted.
func receivedTypes(r *receiver) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, typ := range r.types {
		out = append(out, typ)
	}
	slices.Sort(out)
	return out
}

// Custom headers arrive on every attempt (the first fails, the retry succeeds), never replace the
// delivery's own headers, are shown by name only, and a PATCH replaces them all.
func TestCustomHeadersArriveOnEveryAttempt(t *testing.T) {
	t.Parallel()
	e := sharedStack(t)
	ws, mgmt, door := shapeWS(t, e, "hdr")
	token := fmt.Sprintf("hdr-token-%d", time.Now().UnixNano())
	r := newReceiver(t, func(_ string, seen int) int { return http.StatusOK })
	tries := map[string]int{}
	r.respond = func(id string, _ int) int {
		if tries[id]++; tries[id] == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	resp := subscribeWith(t, e, mgmt, r, `["webhook.generic.*"]`, fmt.Sprintf(`,"headers":{"authorization":"Bearer %s","X-Tenant":"acme"}`, token))
	if resp.status != 201 {
		t.Fatalf("create: %d %s", resp.status, resp.raw)
	}
	sub := resp.body["id"].(string)
	got := do(t, http.MethodGet, e.stack.URL+"/v1/webhooks/"+sub, mgmt, "")
	for _, rr := range []reply{resp, got} {
		if !slices.Equal(names(rr.body["header_names"]), []string{"Authorization", "X-Tenant"}) || strings.Contains(rr.raw, token) || strings.Contains(rr.raw, "acme") {
			t.Fatalf("the view shows %s, want the names Authorization and X-Tenant and no value", rr.raw)
		}
	}

	sendPayload(t, e, ws, door, "first", `{"n":1}`)
	waitFor(t, "the retried delivery", time.Minute, func() bool { return len(receivedTypes(r)) == 1 })
	r.mu.Lock()
	var id string
	for k := range r.types {
		id = k
	}
	reqs := slices.Clone(r.headers[id])
	r.mu.Unlock()
	if len(reqs) < 2 {
		t.Fatalf("%d requests for %s, want the failed first attempt and the retry", len(reqs), id)
	}
	for i, h := range reqs {
		if h.Get("Authorization") != "Bearer "+token || h.Get("X-Tenant") != "acme" || h.Get("Content-Type") != "application/json" ||
			!strings.HasPrefix(h.Get("User-Agent"), "Hookgate/") || h.Get("Webhook-Id") != id {
			t.Fatalf("attempt %d headers %v", i+1, h)
		}
	}

	// PATCH replaces every custom header.
	p := do(t, http.MethodPatch, e.stack.URL+"/v1/webhooks/"+sub, mgmt, `{"headers":{"x-tenant":"beta"}}`)
	if p.status != 200 || !slices.Equal(names(p.body["header_names"]), []string{"X-Tenant"}) {
		t.Fatalf("patch: %d %s", p.status, p.raw)
	}
	sendPayload(t, e, ws, door, "second", `{"n":2}`)
	waitFor(t, "the second event", time.Minute, func() bool { return len(receivedTypes(r)) == 2 })
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, typ := range r.types {
		if typ != "webhook.generic.second" {
			continue
		}
		for _, h := range r.headers[k] {
			if h.Get("X-Tenant") != "beta" || h.Get("Authorization") != "" {
				t.Fatalf("after the patch: %v", h)
			}
		}
	}
}

// A custom header the delivery sets, a hop-by-hop header, or a malformed one is refused with a 400
// naming it, at create and at update: nothing is stored, and what is sent keeps the delivery's own.
func TestForbiddenCustomHeadersAreRefused(t *testing.T) {
	t.Parallel()
	e := sharedStack(t)
	ws, mgmt, door := shapeWS(t, e, "hdrbad")
	r := newReceiver(t, func(string, int) int { return http.StatusOK })
	forbidden := []struct{ name, value, want string }{
		{"Host", "evil.example", `"Host"`},
		{"content-length", "1", `"content-length"`},
		{"Content-Type", "text/plain", `"Content-Type"`},
		{"User-Agent", "forged", `"User-Agent"`},
		{"X-Webhook-Signature", "sha256=forged", `"X-Webhook-Signature"`},
		{"webhook-signature", "v1,forged", `"webhook-signature"`},
		{"Webhook-Id", "forged", `"Webhook-Id"`},
		{"Connection", "close", `"Connection"`},
		{"Transfer-Encoding", "chunked", `"Transfer-Encoding"`},
		{"Hookgate-Hop", "0", `"Hookgate-Hop"`},
		{"traceparent", "00-forged", `"traceparent"`},
		{"X-Split", "a\r\nX-Injected: yes", `"X-Split"`},
		{"X-Nul", "a\u0000b", `"X-Nul"`},
		{"Bad Name", "x", `"Bad Name"`},
	}
	for _, f := range forbidden {
		hdr, _ := json.Marshal(map[string]string{f.name: f.value})
		resp := subscribeWith(t, e, mgmt, r, `["webhook.generic.*"]`, `,"headers":`+string(hdr))
		if resp.status != 400 || resp.errorCode() != "invalid_request" || !strings.Contains(errMessage(resp), f.want) {
			t.Errorf("header %q: %d %s, want 400 naming it", f.name, resp.status, resp.raw)
		}
	}
	if subs := listSubs(t, e, mgmt); len(subs) != 0 {
		t.Fatalf("refused subscriptions were stored: %v", subs)
	}

	resp := subscribeWith(t, e, mgmt, r, `["webhook.generic.*"]`, `,"headers":{"X-Ok":"fine"}`)
	if resp.status != 201 {
		t.Fatalf("create: %d %s", resp.status, resp.raw)
	}
	sub := resp.body["id"].(string)
	for _, f := range forbidden {
		hdr, _ := json.Marshal(map[string]any{"headers": map[string]string{f.name: f.value}})
		p := do(t, http.MethodPatch, e.stack.URL+"/v1/webhooks/"+sub, mgmt, string(hdr))
		if p.status != 400 || !strings.Contains(errMessage(p), f.want) {
			t.Errorf("patch header %q: %d %s, want 400 naming it", f.name, p.status, p.raw)
		}
	}
	if got := do(t, http.MethodGet, e.stack.URL+"/v1/webhooks/"+sub, mgmt, ""); !slices.Equal(names(got.body["header_names"]), []string{"X-Ok"}) {
		t.Fatalf("after refused patches: %s", got.raw)
	}
	sendPayload(t, e, ws, door, "probe", `{"n":1}`)
	waitFor(t, "the delivery", time.Minute, func() bool { return len(receivedTypes(r)) == 1 })
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.badSig != 0 {
		t.Fatalf("%d requests failed the signature or header checks", r.badSig)
	}
	for _, hs := range r.headers {
		for _, h := range hs {
			if h.Get("X-Ok") != "fine" || h.Get("X-Injected") != "" || h.Get("User-Agent") == "forged" || strings.Contains(h.Get("X-Webhook-Signature"), "forged") {
				t.Fatalf("sent headers %v", h)
			}
		}
	}
}

// Custom header values are sealed at rest (seal kind subscription.headers): neither the table's
// item nor the stream's images hold one, at create or after a PATCH.
func TestCustomHeaderValuesAreSealedAtRest(t *testing.T) {
	t.Parallel()
	e := sharedStack(t)
	ws, mgmt, _ := shapeWS(t, e, "hdrseal")
	n := time.Now().UnixNano()
	values := []string{fmt.Sprintf("sealed-header-one-%d", n), fmt.Sprintf("sealed-header-two-%d", n)}
	r := newReceiver(t, func(string, int) int { return http.StatusOK })
	resp := subscribeWith(t, e, mgmt, r, `["webhook.generic.*"]`, fmt.Sprintf(`,"headers":{"Authorization":"Bearer %s"}`, values[0]))
	if resp.status != 201 {
		t.Fatalf("create: %d %s", resp.status, resp.raw)
	}
	sub := resp.body["id"].(string)
	if p := do(t, http.MethodPatch, e.stack.URL+"/v1/webhooks/"+sub, mgmt, fmt.Sprintf(`{"headers":{"X-Api-Key":%q}}`, values[1])); p.status != 200 {
		t.Fatalf("patch: %d %s", p.status, p.raw)
	}
	if d := do(t, http.MethodPatch, e.stack.URL+"/v1/webhooks/"+sub, mgmt, `{"description":"rewritten, headers kept"}`); d.status != 200 {
		t.Fatalf("patch description: %d %s", d.status, d.raw)
	}

	cfg, err := awscfg.Load(context.Background(), func(k string) string {
		return map[string]string{awscfg.EnvDynamoEndpoint: e.stack.DynamoEndpoint, awscfg.EnvSQSEndpoint: e.stack.SQSEndpoint}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	prefix := "WS#" + ws + "#"
	in := &dynamodb.ScanInput{TableName: aws.String(e.stack.Tables["Table"]), ConsistentRead: aws.Bool(true)}
	var mine int
	for p := dynamodb.NewScanPaginator(cfg.DynamoDB(), in); p.HasMorePages(); {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			pk, _ := it["pk"].(*dbtypes.AttributeValueMemberS)
			if pk != nil && pk.Value == prefix+"SUBS" {
				mine++
				if _, sealed := it["headers"].(*dbtypes.AttributeValueMemberB); !sealed {
					t.Errorf("the subscription's headers attribute is %T, want sealed bytes", it["headers"])
				}
			}
			if leak := findSecret(dump(it), values); leak != "" {
				t.Errorf("table item %v holds a header value in clear (%s)", it["pk"], leak)
			}
		}
	}
	if mine != 1 {
		t.Fatalf("found %d subscription items of %s, want 1", mine, ws)
	}
	images := streamImages(t, streamesm.NewClient(cfg), e.stack.Streams["Table"], func(pk string) bool { return pk == prefix+"SUBS" }, values)
	if images < 3 {
		t.Fatalf("read %d stream images of the subscription, want at least 3", images)
	}
}

// Payload filters select among the events of the subscribed types: equality, $in, comparisons,
// $exists, $or and $not on dotted paths. Events are sent in order and the last matches every
// filter, so once each receiver has it, the fan-out has planned every earlier one.
func TestPayloadFiltersSelectEvents(t *testing.T) {
	t.Parallel()
	e := sharedStack(t)
	ws, mgmt, door := shapeWS(t, e, "filter")
	subs := []struct {
		filter string
		want   []string
	}{
		{`{"data.payload.amount":{"$gte":100}}`, []string{"p2", "p4", "p5"}},
		{`{"$or":[{"data.payload.currency":"eur"},{"data.payload.tags.0":"vip"}]}`, []string{"p3", "p4", "p5"}},
		{`{"$not":{"data.payload.kind":{"$in":["test","debug"]}},"data.payload.ref":{"$exists":true},"type":{"$ne":"webhook.generic.p1"}}`, []string{"p2", "p4", "p5"}},
		{`{"data.payload.customer":{"country":"DE","vip":true}}`, []string{"p5"}},
	}
	receivers := make([]*receiver, len(subs))
	ids := make([]string, len(subs))
	for i, s := range subs {
		receivers[i] = newReceiver(t, func(string, int) int { return http.StatusOK })
		resp := subscribeWith(t, e, mgmt, receivers[i], `["webhook.generic.*"]`, `,"filter":`+s.filter)
		if resp.status != 201 {
			t.Fatalf("create with filter %s: %d %s", s.filter, resp.status, resp.raw)
		}
		ids[i] = resp.body["id"].(string)
		var shown any
		_ = json.Unmarshal([]byte(s.filter), &shown)
		if fmt.Sprint(resp.body["filter"]) != fmt.Sprint(shown) {
			t.Fatalf("the view shows the filter %v, want %v", resp.body["filter"], shown)
		}
	}
	sendPayload(t, e, ws, door, "p1", `{"amount":5,"currency":"usd","kind":"test","ref":"r1"}`)
	sendPayload(t, e, ws, door, "p2", `{"amount":500,"currency":"usd","kind":"live","ref":"r2"}`)
	sendPayload(t, e, ws, door, "p3", `{"amount":50,"currency":"eur","tags":["x"]}`)
	sendPayload(t, e, ws, door, "p4", `{"amount":100,"tags":["vip"],"kind":"live","ref":"r4","customer":{"country":"DE"}}`)
	sendPayload(t, e, ws, door, "p5", `{"amount":1000,"currency":"eur","tags":["vip"],"kind":"live","ref":"r5","customer":{"vip":true,"country":"DE"}}`)
	for i, r := range receivers {
		var want []string
		for _, w := range subs[i].want {
			want = append(want, "webhook.generic."+w)
		}
		// Deliveries go in parallel: wait for every one the filter lets through (p5, sent last,
		// may come before p2), then check nothing else came.
		waitFor(t, "the matching events at every receiver", 2*time.Minute, func() bool {
			got := receivedTypes(r)
			for _, w := range want {
				if !slices.Contains(got, w) {
					return false
				}
			}
			return true
		})
		if got := receivedTypes(r); !slices.Equal(got, want) {
			t.Errorf("filter %s: received %v, want %v", subs[i].filter, got, want)
		}
		dl := do(t, http.MethodGet, e.stack.URL+"/v1/webhooks/"+ids[i]+"/deliveries?limit=100", mgmt, "")
		if n := len(dl.body["data"].([]any)); dl.status != 200 || n != len(want) {
			t.Errorf("filter %s: %d deliveries (%d), want %d: a filtered event makes none", subs[i].filter, n, dl.status, len(want))
		}
	}

	// PATCH replaces the filter; {} removes it.
	p := do(t, http.MethodPatch, e.stack.URL+"/v1/webhooks/"+ids[0], mgmt, `{"filter":{"data.payload.amount":{"$lt":10}}}`)
	if p.status != 200 || fmt.Sprint(p.body["filter"]) != "map[data.payload.amount:map[$lt:10]]" {
		t.Fatalf("patch filter: %d %s", p.status, p.raw)
	}
	if p = do(t, http.MethodPatch, e.stack.URL+"/v1/webhooks/"+ids[0], mgmt, `{"filter":{}}`); p.status != 200 || p.body["filter"] != nil {
		t.Fatalf("remove filter: %d %s", p.status, p.raw)
	}
}

// A filter that is not of the language, or over its bounds, is refused with a 400 that names the
// problem, at create and at update: nothing is stored, and the stored filter stays as it was.
func TestBadPayloadFiltersAreRefused(t *testing.T) {
	t.Parallel()
	e := sharedStack(t)
	_, mgmt, _ := shapeWS(t, e, "filterbad")
	r := newReceiver(t, func(string, int) int { return http.StatusOK })
	deep := `{"a":1}`
	for range 9 {
		deep = `{"$not":` + deep + `}`
	}
	bad := []struct{ filter, want string }{
		{`"amount > 5"`, "filter must be a JSON object"},
		{`[1]`, "filter must be a JSON object"},
		{`{"data.amount":{"$regex":"^1"}}`, `filter path "data.amount": "$regex" is not an operator`},
		{`{"$where":"sleep(1)"}`, `"$where" is not an operator here`},
		{`{"data.amount":{"$gt":true}}`, "$gt takes a number or a string"},
		{`{"data.kind":{"$in":"test"}}`, "$in takes an array"},
		{`{"data.x":{"$exists":"yes"}}`, "$exists takes true or false"},
		{`{"$or":[]}`, "$or takes a non-empty array"},
		{`{"data..x":1}`, "has an empty part"},
		{`{"` + strings.Repeat("a.", 16) + `a":1}`, "more than 16 parts"},
		{deep, "nested more than 8 levels"},
		{`{"$and":[` + strings.Repeat(`{"a":1},`, 64) + `{"a":1}]}`, "more than 64 conditions"},
		{`{"a":"` + strings.Repeat("x", 4100) + `"}`, "at most 4096 bytes"},
	}
	for _, b := range bad {
		resp := subscribeWith(t, e, mgmt, r, `["*"]`, `,"filter":`+b.filter)
		if resp.status != 400 || !strings.Contains(errMessage(resp), b.want) {
			t.Errorf("filter %.60s: %d %s, want 400 with %q", b.filter, resp.status, resp.raw, b.want)
		}
	}
	if subs := listSubs(t, e, mgmt); len(subs) != 0 {
		t.Fatalf("refused subscriptions were stored: %v", subs)
	}
	resp := subscribeWith(t, e, mgmt, r, `["*"]`, `,"filter":{"type":"webhook.generic.x"}`)
	if resp.status != 201 {
		t.Fatalf("create: %d %s", resp.status, resp.raw)
	}
	sub := resp.body["id"].(string)
	for _, b := range bad {
		p := do(t, http.MethodPatch, e.stack.URL+"/v1/webhooks/"+sub, mgmt, `{"filter":`+b.filter+`}`)
		if p.status != 400 || !strings.Contains(errMessage(p), b.want) {
			t.Errorf("patch filter %.60s: %d %s, want 400 with %q", b.filter, p.status, p.raw, b.want)
		}
	}
	if got := do(t, http.MethodGet, e.stack.URL+"/v1/webhooks/"+sub, mgmt, ""); fmt.Sprint(got.body["filter"]) != "map[type:webhook.generic.x]" {
		t.Fatalf("after refused patches the filter is %s", got.raw)
	}
}

// GET /v1/event-types is the catalog of shared/catalog, with every schema; subscribing to an exact
// type it lacks is refused, a family of it accepted.
func TestEventTypesListTheCatalog(t *testing.T) {
	t.Parallel()
	e := sharedStack(t)
	_, mgmt, _ := shapeWS(t, e, "catalog")
	if r := do(t, http.MethodGet, e.stack.URL+"/v1/event-types", nil, ""); r.status != 401 {
		t.Fatalf("without a key: %d %s", r.status, r.raw)
	}
	r := do(t, http.MethodGet, e.stack.URL+"/v1/event-types", mgmt, "")
	if r.status != 200 || r.body["next_cursor"] != nil {
		t.Fatalf("event types: %d %s", r.status, r.raw)
	}
	var got struct {
		Data []catalog.EventType `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.raw), &got); err != nil {
		t.Fatal(err)
	}
	want := catalog.All()
	if len(got.Data) != len(want) {
		t.Fatalf("%d event types, want %d", len(got.Data), len(want))
	}
	for i, w := range want {
		g := got.Data[i]
		var gs, ws any
		_ = json.Unmarshal(g.Schema, &gs)
		_ = json.Unmarshal(w.Schema, &ws)
		if g.Name != w.Name || g.Description != w.Description || g.Pattern != w.Pattern || fmt.Sprint(gs) != fmt.Sprint(ws) {
			t.Errorf("entry %d: %s, want %s", i, g.Name, w.Name)
		}
	}
	rcv := newReceiver(t, func(string, int) int { return http.StatusOK })
	if resp := subscribeWith(t, e, mgmt, rcv, `["run.completed","run.exploded"]`, ""); resp.status != 400 || !strings.Contains(errMessage(resp), `events[1] "run.exploded"`) {
		t.Fatalf("an unknown exact type: %d %s", resp.status, resp.raw)
	}
	if resp := subscribeWith(t, e, mgmt, rcv, `["endpoint.*","webhook.generic.*","endpoint.circuit_opened"]`, ""); resp.status != 201 {
		t.Fatalf("catalog families: %d %s", resp.status, resp.raw)
	}
}
