package openapi

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/hookgate/hookgate/local/template"
	"github.com/hookgate/hookgate/shared/catalog"
)

const root = "../.."

func load(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(filepath.Join(root, "openapi.yaml"))
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	return doc
}

func TestSpecIsValidOpenAPI31(t *testing.T) {
	doc := load(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("openapi: %q, want 3.1.x", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid OpenAPI 3.1: %v", err)
	}
}

// greedy is API Gateway's greedy path parameter, {name+}, which OpenAPI writes as {name} (the
// operation is marked x-greedy).
var greedy = regexp.MustCompile(`\{([A-Za-z0-9_]+)\+\}`)

// TestSpecDescribesEveryTemplateRoute fails when template.yaml has an HttpApi route openapi.yaml
// does not describe, or openapi.yaml describes one the template lacks.
func TestSpecDescribesEveryTemplateRoute(t *testing.T) {
	tpl, err := template.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, fn := range tpl.Functions() {
		for _, r := range fn.Routes {
			if r.Default {
				continue // $default: every other route, described in info.description
			}
			routes = append(routes, r.Method+" "+greedy.ReplaceAllString(r.Path, "{$1}"))
		}
	}
	doc := load(t)
	var described []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			described = append(described, method+" "+path)
		}
	}
	slices.Sort(routes)
	slices.Sort(described)
	for _, r := range routes {
		if !slices.Contains(described, r) {
			t.Errorf("template.yaml route %s is not in openapi.yaml", r)
		}
	}
	for _, d := range described {
		if !slices.Contains(routes, d) {
			t.Errorf("openapi.yaml describes %s, which template.yaml has no route for", d)
		}
	}
	if len(routes) < 40 {
		t.Fatalf("only %d routes in template.yaml: is the template parsed?", len(routes))
	}
	// A greedy route is marked so in the spec, and only those.
	for _, fn := range tpl.Functions() {
		for _, r := range fn.Routes {
			if r.Default {
				continue
			}
			op := doc.Paths.Find(greedy.ReplaceAllString(r.Path, "{$1}"))
			if op == nil || op.GetOperation(r.Method) == nil {
				continue // reported above
			}
			_, marked := op.GetOperation(r.Method).Extensions["x-greedy"]
			if marked != greedy.MatchString(r.Path) {
				t.Errorf("%s %s: x-greedy is %v, the template's path %s", r.Method, r.Path, marked, r.Path)
			}
		}
	}
}

// TestServedJSONIsCurrent fails when the JSON that GET /openapi.json serves is not openapi.yaml's.
func TestServedJSONIsCurrent(t *testing.T) {
	yml, err := os.ReadFile(filepath.Join(root, "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := JSON(yml)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, ServedPath))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not openapi.yaml's JSON form: run make openapi", ServedPath)
	}
	if _, err := openapi3.NewLoader().LoadFromData(got); err != nil {
		t.Fatalf("the served JSON does not load: %v", err)
	}
}

// TestEveryEventTypeHasOneSchema checks the outbound payloads against the catalog: each exact
// type of shared/catalog, and a name of each family (webhook.<source>.<type>, telegram.<kind>), is
// described by exactly one variant of the Event envelope, and every variant describes a type of
// the catalog.
func TestEveryEventTypeHasOneSchema(t *testing.T) {
	doc := load(t)
	ev := doc.Components.Schemas["Event"]
	if ev == nil || ev.Value == nil || len(ev.Value.OneOf) == 0 {
		t.Fatal("components.schemas.Event has no oneOf")
	}
	if _, ok := doc.Webhooks["event"]; !ok {
		t.Fatal("webhooks.event is missing")
	}
	types := append(catalog.Names(), "webhook.stripe.payment_intent_succeeded", "webhook.generic.received", "telegram.edited_message")
	for _, typ := range types {
		if _, ok := catalog.Lookup(typ); !ok {
			t.Fatalf("%s is not in the catalog", typ)
		}
		var matched []string
		for _, v := range ev.Value.OneOf {
			ts := v.Value.Properties["type"]
			if ts == nil {
				t.Fatalf("%s has no type property", v.Ref)
			}
			if doc.ValidateSchemaJSON(ts.Value, typ, openapi3.EnableJSONSchema2020()) == nil {
				matched = append(matched, v.Ref)
			}
		}
		if len(matched) != 1 {
			t.Errorf("event type %s matches %d event schemas %v, want 1", typ, len(matched), matched)
		}
	}
	for _, v := range ev.Value.OneOf {
		ts := v.Value.Properties["type"].Value
		var names []string
		switch {
		case ts.Const != nil:
			names = append(names, fmt.Sprint(ts.Const))
		case len(ts.Enum) > 0:
			for _, e := range ts.Enum {
				names = append(names, fmt.Sprint(e))
			}
		}
		for _, n := range names {
			if !catalog.Known(n) {
				t.Errorf("%s describes %s, which the catalog (shared/catalog) lacks", v.Ref, n)
			}
		}
	}
}
