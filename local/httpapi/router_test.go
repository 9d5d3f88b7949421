package httpapi

import (
	"maps"
	"regexp"
	"strings"
	"testing"
)

// fuzzRoutes overlap on purpose so that precedence decides most paths.
func fuzzRoutes() []Route {
	return []Route{
		{"GET", "/", "root"},
		{"GET", "/pets/dog/1", "f"},
		{"GET", "/pets/dog/{id}", "f"},
		{"GET", "/pets/{proxy+}", "f"},
		{"ANY", "/pets/{kind}/{id}", "f"},
		{"ANY", "/{proxy+}", "f"},
		{"GET", "/a/{x}/c", "f"},
		{"GET", "/{y}/b/c", "f"},
		{"POST", "/{p}/q/r", "f"},
		{"GET", "/deep/er/{rest+}", "f"},
		{"ANY", "/deep/{proxy+}", "f"},
		{"POST", "/v1/inbound/generic", "f"},
		{"GET", "/webhook/{name}/threads/{threadId}/runs/{runId}", "f"},
		{"GET", "/files/{path+}", "f"},
		{"", "$default", "default"},
	}
}

// oracle is an independent, regular-expression reading of one route.
type oracle struct {
	route *route
	re    *regexp.Regexp
	names []string
}

func newOracles(t testing.TB, rt *router) []oracle {
	var out []oracle
	for _, r := range rt.routes {
		var pat strings.Builder
		var names []string
		pat.WriteString("(?s)^")
		for part := range strings.SplitSeq(strings.TrimPrefix(r.path, "/"), "/") {
			pat.WriteString("/")
			switch {
			case strings.HasSuffix(part, "+}"):
				pat.WriteString("(.+)")
				names = append(names, part[1:len(part)-2])
			case strings.HasPrefix(part, "{"):
				pat.WriteString("([^/]+)")
				names = append(names, part[1:len(part)-1])
			default:
				pat.WriteString(regexp.QuoteMeta(part))
			}
		}
		pat.WriteString("$")
		re, err := regexp.Compile(pat.String())
		if err != nil {
			t.Fatalf("oracle for %s: %v", r.key, err)
		}
		out = append(out, oracle{route: r, re: re, names: names})
	}
	return out
}

// params returns the route's parameters for path (already %25-unescaped) and whether it matches.
func (o oracle) params(method, path string) (map[string]string, bool) {
	if o.route.method != method && o.route.method != "ANY" {
		return nil, false
	}
	m := o.re.FindStringSubmatch(path)
	if m == nil {
		return nil, false
	}
	var p map[string]string
	for i, n := range o.names {
		if p == nil {
			p = map[string]string{}
		}
		p[n] = m[i+1]
	}
	return p, true
}

// FuzzRouterMatch checks the router against the oracle: the route it picks matches with the
// same parameters, nothing matches when it falls back to $default, a greedy route is never
// picked over a full match, and no other matching route is more specific.
func FuzzRouterMatch(f *testing.F) {
	for _, seed := range []struct{ method, path string }{
		{"GET", "/"}, {"POST", "/"}, {"GET", "/pets/dog/1"}, {"GET", "/pets/dog/2"},
		{"GET", "/pets/cat/1"}, {"POST", "/pets/cat/1"}, {"DELETE", "/pets/cat"},
		{"GET", "/a/b/c"}, {"GET", "/z/b/c"}, {"POST", "/deep/q/r"}, {"GET", "/deep/er/x/y"},
		{"PUT", "/deep/x"}, {"GET", "/deep/er"}, {"POST", "/v1/inbound/generic"},
		{"GET", "/webhook/gh/threads/t1/runs/r1"}, {"GET", "/webhook/gh/threads//runs/r1"},
		{"GET", "/files/"}, {"GET", "/files//x"}, {"GET", "//pets//dog"}, {"GET", "/a%2Fb/c"},
		{"GET", "/pets/%25/1"}, {"GET", "/pets/%252F/x%20y"}, {"GET", "/%zz/%"}, {"OPTIONS", "/items/"},
	} {
		f.Add(seed.method, seed.path)
	}
	rt, err := newRouter(fuzzRoutes())
	if err != nil {
		f.Fatal(err)
	}
	oracles := newOracles(f, rt)

	f.Fuzz(func(t *testing.T, method, escaped string) {
		rawPath := rawPathOf(escaped)
		path := "/" + strings.TrimLeft(rawPath, "/")
		got, params := rt.match(method, path)
		if got == nil {
			t.Fatal("no route although $default is declared")
		}
		unescaped := unescapePercent(path)
		var matching []oracle
		for _, o := range oracles {
			if _, ok := o.params(method, unescaped); ok {
				matching = append(matching, o)
			}
		}
		if got == rt.def {
			if len(matching) > 0 {
				t.Fatalf("%s %s: fell back to $default but %s matches", method, path, matching[0].route.key)
			}
			if params != nil {
				t.Fatalf("$default got parameters %v", params)
			}
			return
		}
		var chosen *oracle
		for i := range matching {
			if matching[i].route == got {
				chosen = &matching[i]
			}
		}
		if chosen == nil {
			t.Fatalf("%s %s: picked %s, which the oracle says does not match", method, path, got.key)
		}
		want, _ := chosen.params(method, unescaped)
		if !maps.Equal(params, want) {
			t.Fatalf("%s %s via %s: params %v, oracle %v", method, path, got.key, params, want)
		}
		for _, o := range matching {
			if got.greedy && !o.route.greedy {
				t.Fatalf("%s %s: picked greedy %s over full match %s", method, path, got.key, o.route.key)
			}
			if o.route != got && o.route.beats(got) {
				t.Fatalf("%s %s: picked %s but %s is more specific", method, path, got.key, o.route.key)
			}
		}
	})
}
