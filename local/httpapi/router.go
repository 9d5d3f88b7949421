package httpapi

import (
	"fmt"
	"strings"
)

// defaultRouteKey is the route key, and the Path, of API Gateway's catch-all route.
const defaultRouteKey = "$default"

// validMethod reports whether m is a route method an HTTP API accepts.
func validMethod(m string) bool {
	switch m {
	case "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY":
		return true
	}
	return false
}

type segKind uint8

const (
	segLiteral segKind = iota // matches one segment equal to text
	segParam                  // {name}: matches one non-empty segment
	segGreedy                 // {name+}: matches the non-empty rest of the path; always last
)

type segment struct {
	kind segKind
	text string // the literal, or the parameter name
}

// route is one compiled route.
type route struct {
	method   string // upper case; "ANY" for the $default route
	path     string // as declared, or "$default"
	key      string // route key: "POST /v1/x/{id}" or "$default"
	function string
	segs     []segment
	greedy   bool
}

// router selects routes as API Gateway HTTP APIs do.
type router struct {
	routes []*route // every route but $default, in declaration order
	def    *route   // the $default route, if declared
}

// newRouter validates and compiles routes.
func newRouter(routes []Route) (*router, error) {
	rt := &router{}
	seen := map[string]string{} // method + shape -> path of the first route with it
	for i, r := range routes {
		if r.Function == "" {
			return nil, fmt.Errorf("route %d (%s %s): no function", i, r.Method, r.Path)
		}
		method := strings.ToUpper(strings.TrimSpace(r.Method))
		if r.Path == defaultRouteKey {
			if method != "" && method != "ANY" {
				return nil, fmt.Errorf("route %d: the $default route takes no method (got %q)", i, r.Method)
			}
			if rt.def != nil {
				return nil, fmt.Errorf("route %d: duplicate $default route", i)
			}
			rt.def = &route{method: "ANY", path: defaultRouteKey, key: defaultRouteKey, function: r.Function}
			continue
		}
		if !validMethod(method) {
			return nil, fmt.Errorf("route %d (%s): invalid method %q", i, r.Path, r.Method)
		}
		segs, err := parsePath(r.Path)
		if err != nil {
			return nil, fmt.Errorf("route %d (%s %s): %w", i, method, r.Path, err)
		}
		shape := method + " " + shapeOf(segs)
		if prev, ok := seen[shape]; ok {
			return nil, fmt.Errorf("route %d: %s %s duplicates %s %s", i, method, r.Path, method, prev)
		}
		seen[shape] = r.Path
		rt.routes = append(rt.routes, &route{
			method:   method,
			path:     r.Path,
			key:      method + " " + r.Path,
			function: r.Function,
			segs:     segs,
			greedy:   len(segs) > 0 && segs[len(segs)-1].kind == segGreedy,
		})
	}
	return rt, nil
}

// parsePath compiles a route path such as /v1/x/{id} or /files/{proxy+}.
func parsePath(p string) ([]segment, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("path must start with /")
	}
	if p == "/" {
		return nil, nil
	}
	parts := strings.Split(p[1:], "/")
	segs := make([]segment, 0, len(parts))
	names := map[string]bool{}
	for i, part := range parts {
		switch {
		case part == "":
			return nil, fmt.Errorf("empty path segment")
		case strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}"):
			name, greedy := part[1:len(part)-1], false
			if strings.HasSuffix(name, "+") {
				name, greedy = name[:len(name)-1], true
				if i != len(parts)-1 {
					return nil, fmt.Errorf("greedy variable {%s+} must be the last segment", name)
				}
			}
			if !validParamName(name) {
				return nil, fmt.Errorf("invalid path variable %q", part)
			}
			if names[name] {
				return nil, fmt.Errorf("duplicate path variable %q", name)
			}
			names[name] = true
			kind := segParam
			if greedy {
				kind = segGreedy
			}
			segs = append(segs, segment{kind: kind, text: name})
		case strings.ContainsAny(part, "{}+"):
			// HTTP APIs only take variables that fill a whole segment.
			return nil, fmt.Errorf("invalid path segment %q", part)
		default:
			segs = append(segs, segment{kind: segLiteral, text: part})
		}
	}
	return segs, nil
}

func validParamName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// shapeOf is the path with variable names erased: /a/{x} and /a/{y} are the same route to
// API Gateway.
func shapeOf(segs []segment) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		switch s.kind {
		case segLiteral:
			b.WriteString(s.text)
		case segParam:
			b.WriteString("{}")
		case segGreedy:
			b.WriteString("{+}")
		}
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// match selects the route for a request. path is the routing path: it starts with one "/" and
// its segments are percent-decoded except for %25, which stands for a literal "%" (see
// rawPathOf). It returns the route and its path parameters (nil when it has none); with no
// route and no $default route it returns nil.
//
// Priority, as API Gateway documents it: a full match of route and method (a path without a
// greedy variable), then a match with a greedy variable, then $default. Between two full
// matches the first segment where they differ decides (a literal beats a variable); between
// two greedy matches the one with more segments before its greedy variable wins, then the
// same segment rule; then an explicit method beats ANY. Method mismatch is no match.
func (rt *router) match(method, path string) (*route, map[string]string) {
	segs := splitPath(path)
	var best *route
	var bestParams map[string]string
	for _, r := range rt.routes {
		if r.method != method && r.method != "ANY" {
			continue
		}
		params, ok := r.matchSegments(segs)
		if !ok {
			continue
		}
		if best == nil || r.beats(best) {
			best, bestParams = r, params
		}
	}
	if best != nil {
		return best, bestParams
	}
	return rt.def, nil
}

// splitPath splits a routing path into its segments; "/" has none.
func splitPath(path string) []string {
	p := strings.TrimPrefix(path, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// unescapePercent turns the %25 that rawPathOf keeps back into "%".
func unescapePercent(s string) string { return strings.ReplaceAll(s, "%25", "%") }

func (r *route) matchSegments(segs []string) (map[string]string, bool) {
	fixed := len(r.segs)
	if r.greedy {
		fixed--
		if len(segs) <= fixed {
			return nil, false
		}
	} else if len(segs) != fixed {
		return nil, false
	}
	var params map[string]string
	set := func(name, v string) {
		if params == nil {
			params = make(map[string]string, len(r.segs))
		}
		params[name] = v
	}
	for i := 0; i < fixed; i++ {
		s, v := r.segs[i], unescapePercent(segs[i])
		switch s.kind {
		case segLiteral:
			if v != s.text {
				return nil, false
			}
		case segParam:
			if v == "" {
				return nil, false
			}
			set(s.text, v)
		}
	}
	if r.greedy {
		rest := unescapePercent(strings.Join(segs[fixed:], "/"))
		if rest == "" {
			return nil, false
		}
		set(r.segs[fixed].text, rest)
	}
	return params, true
}

// beats reports whether r is a more specific match than o for a path both match.
func (r *route) beats(o *route) bool {
	if r.greedy != o.greedy {
		return !r.greedy
	}
	if r.greedy && len(r.segs) != len(o.segs) {
		return len(r.segs) > len(o.segs)
	}
	// Both match the same path, so they have the same number of segments here.
	for i := range r.segs {
		if r.segs[i].kind != o.segs[i].kind {
			return r.segs[i].kind < o.segs[i].kind
		}
	}
	return r.method != "ANY" && o.method == "ANY"
}
