package catalog

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compile compiles every schema of the catalog as JSON Schema draft 2020-12.
func compile(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	out := map[string]*jsonschema.Schema{}
	for _, et := range All() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(et.Schema))
		if err != nil {
			t.Fatalf("%s: schema is not JSON: %v", et.Name, err)
		}
		url := "catalog:///" + et.Name
		if err := c.AddResource(url, doc); err != nil {
			t.Fatalf("%s: %v", et.Name, err)
		}
		s, err := c.Compile(url)
		if err != nil {
			t.Fatalf("%s: schema does not compile: %v", et.Name, err)
		}
		out[et.Name] = s
	}
	return out
}

func TestCatalogIsWellFormed(t *testing.T) {
	schemas := compile(t)
	seen := map[string]bool{}
	for _, et := range All() {
		if seen[et.Name] {
			t.Errorf("%s is listed twice", et.Name)
		}
		seen[et.Name] = true
		if et.Description == "" {
			t.Errorf("%s has no description", et.Name)
		}
		var s map[string]any
		if err := json.Unmarshal(et.Schema, &s); err != nil || s["type"] != "object" {
			t.Errorf("%s: the schema of data must be an object's (%v)", et.Name, err)
		}
		if et.Family() {
			re := regexp.MustCompile(et.Pattern)
			if re.MatchString(et.Name) {
				t.Errorf("%s: a family's template must not match its own pattern", et.Name)
			}
			continue
		}
		if !regexp.MustCompile(`^[a-z]+(\.[a-z_]+)+$`).MatchString(et.Name) {
			t.Errorf("%s is not a lower-case dotted name", et.Name)
		}
		for _, f := range All() {
			if f.Family() && regexp.MustCompile(f.Pattern).MatchString(et.Name) && et.Name != "webhook.test" {
				t.Errorf("%s is also a name of the family %s", et.Name, f.Name)
			}
		}
	}
	if len(schemas) != len(All()) {
		t.Fatalf("%d schemas for %d types", len(schemas), len(All()))
	}
}

func TestLookup(t *testing.T) {
	for name, want := range map[string]string{
		"run.completed": "run.completed", "webhook.test": "webhook.test",
		"webhook.stripe.invoice_paid": "webhook.<source>.<type>", "webhook.my-app.x": "webhook.<source>.<type>",
		"telegram.edited_message": "telegram.<kind>", "endpoint.circuit_opened": "endpoint.circuit_opened",
	} {
		got, ok := Lookup(name)
		if !ok || got.Name != want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", name, got.Name, ok, want)
		}
		if got.Family() && !regexp.MustCompile(got.Pattern).MatchString(name) {
			t.Errorf("%s is found in %s, whose pattern does not match it", name, got.Name)
		}
	}
	for _, name := range []string{"", "run", "run.unknown", "webhook", "webhook.stripe", "webhook.stripe.a.b", "webhook..x", "telegram.", "telegram.A", "x.y"} {
		if got, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) = %q", name, got.Name)
		}
	}
	if Known("webhook.<source>.<type>") || !Known("run.failed") {
		t.Error("Known must take exact types only")
	}
}

// TestSchemasTakeWhatTheCodeRecords holds a sample of each type's data, as the code writes it,
// to its schema, and a broken one against it.
func TestSchemasTakeWhatTheCodeRecords(t *testing.T) {
	schemas := compile(t)
	valid := map[string]string{
		"run.completed":           `{"run_id":"run_1","thread_id":"thr_1","status":"completed","result":{"text":"hi"}}`,
		"message.received":        `{"thread_id":"t","message_id":"m","source":"generic","channel":"email","external_id":"a","text":"hi","data":null}`,
		"webhook.<source>.<type>": `{"source":"stripe","source_kind":"webhook.stripe","event_type":"x","event_type_slug":"x","role":"webhook.stripe.x","dedupe_key":"d","source_identifier":"s","payload":{}}`,
		"endpoint.circuit_opened": `{"subscription_id":"sub_1","origin":"https://example.com","next_probe_at":"2026-12-06T10:01:00Z","window_seconds":60,"failure_percent":80,"min_attempts":10}`,
	}
	invalid := map[string]string{
		"run.completed":    `{"run_id":"run_1","thread_id":"thr_1","status":"done"}`,
		"message.received": `{"thread_id":"t"}`,
		"webhook.test":     `{"subscription_id":1,"message":"x"}`,
	}
	for name, data := range valid {
		v, _ := jsonschema.UnmarshalJSON(strings.NewReader(data))
		if err := schemas[name].Validate(v); err != nil {
			t.Errorf("%s: %s refused: %v", name, data, err)
		}
	}
	for name, data := range invalid {
		v, _ := jsonschema.UnmarshalJSON(strings.NewReader(data))
		if err := schemas[name].Validate(v); err == nil {
			t.Errorf("%s: %s accepted", name, data)
		}
	}
}

// TestEveryEmittedTypeIsInTheCatalog reads the Go source of shared/: every string constant named
// Event… (the names the code records events under) must be a type of the catalog, and every
// event type built from a literal prefix ("telegram." + kind) a family's.
func TestEveryEmittedTypeIsInTheCatalog(t *testing.T) {
	fset := token.NewFileSet()
	var consts int
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, name := range n.Names {
					if !strings.HasPrefix(name.Name, "Event") || i >= len(n.Values) {
						continue
					}
					lit, ok := n.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, _ := strconv.Unquote(lit.Value)
					if !strings.Contains(v, ".") {
						continue
					}
					consts++
					if _, ok := Lookup(v); !ok {
						t.Errorf("%s: %s = %q is not in the catalog (shared/catalog)", fset.Position(name.Pos()), name.Name, v)
					}
				}
			case *ast.KeyValueExpr:
				// Type: "telegram." + kind, in an event's literal.
				if k, ok := n.Key.(*ast.Ident); !ok || k.Name != "Type" {
					return true
				}
				if bin, ok := n.Value.(*ast.BinaryExpr); ok && bin.Op == token.ADD {
					if lit, ok := bin.X.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						prefix, _ := strconv.Unquote(lit.Value)
						if _, ok := Lookup(prefix + "x"); !ok {
							t.Errorf("%s: event type %q… is no family of the catalog", fset.Position(n.Pos()), prefix)
						}
					}
				}
				if lit, ok := n.Value.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, _ := strconv.Unquote(lit.Value)
					if strings.Count(v, ".") == 1 && !strings.ContainsAny(v, " /") {
						if _, ok := Lookup(v); !ok {
							t.Errorf("%s: event type %q is not in the catalog", fset.Position(n.Pos()), v)
						}
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if consts < 15 {
		t.Fatalf("found only %d Event… constants in shared/: is the walk reading it?", consts)
	}
}

func TestFamilies(t *testing.T) {
	got := strings.Join(Families(), ",")
	if got != "message,run,binding,delivery,subscription,webhook,endpoint,telegram" {
		t.Fatalf("Families() = %s", got)
	}
}

func TestKnownAllocatesLittle(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { Known("run.completed") }); n > 1 {
		t.Fatalf("Known allocates %v times: it must not copy the schemas", n)
	}
}
