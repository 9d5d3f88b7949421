package streamesm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// pattern is a compiled Lambda filter pattern: a record matches when every key does.
type pattern struct {
	fields map[string]*pattern       // keys whose pattern is an object: nested fields
	leaves map[string][]valueMatcher // keys whose pattern is a list: any matcher matches
}

// valueMatcher matches one field's value. exists, when set, is an {"exists": bool} matcher,
// which alone looks at absent fields; the others need the field present.
type valueMatcher struct {
	exists *bool
	match  func(v any) bool
}

// compileFilters compiles Lambda filter patterns (the JSON of FilterCriteria.Filters[].Pattern).
// Supported: nested keys; value lists of strings, numbers, booleans and null (exact match); and
// the operators prefix, suffix, equals-ignore-case, anything-but (values or a prefix), exists and
// numeric. numeric also reads numeric strings, such as DynamoDB's {"N":"42"}. An array in the
// record matches when any element does.
func compileFilters(patterns []string) ([]*pattern, error) {
	var out []*pattern
	for i, src := range patterns {
		dec := json.NewDecoder(strings.NewReader(src))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			return nil, fmt.Errorf("filter %d: pattern is not a JSON object: %w", i, err)
		}
		if obj == nil {
			return nil, fmt.Errorf("filter %d: pattern is not a JSON object", i)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("filter %d: text after the pattern's JSON object", i)
		}
		p, err := compilePattern(obj, "")
		if err != nil {
			return nil, fmt.Errorf("filter %d: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func compilePattern(obj map[string]any, path string) (*pattern, error) {
	if len(obj) == 0 {
		return nil, fmt.Errorf("%s: empty pattern", orRoot(path))
	}
	p := &pattern{fields: map[string]*pattern{}, leaves: map[string][]valueMatcher{}}
	for _, key := range sortedKeys(obj) {
		at := joinPath(path, key)
		switch v := obj[key].(type) {
		case map[string]any:
			sub, err := compilePattern(v, at)
			if err != nil {
				return nil, err
			}
			p.fields[key] = sub
		case []any:
			if len(v) == 0 {
				return nil, fmt.Errorf("%s: empty list of values", at)
			}
			for _, e := range v {
				m, err := compileMatcher(e, at)
				if err != nil {
					return nil, err
				}
				p.leaves[key] = append(p.leaves[key], m)
			}
		default:
			return nil, fmt.Errorf("%s: must be a list of values or an object, not %s", at, jsonText(v))
		}
	}
	return p, nil
}

func compileMatcher(e any, at string) (valueMatcher, error) {
	switch e := e.(type) {
	case string, bool, nil:
		return valueMatcher{match: func(v any) bool { return v == e }}, nil
	case json.Number:
		want, err := e.Float64()
		if err != nil {
			return valueMatcher{}, fmt.Errorf("%s: number %s: %w", at, e, err)
		}
		return valueMatcher{match: func(v any) bool {
			n, ok := v.(json.Number)
			f, err := n.Float64()
			return ok && err == nil && f == want
		}}, nil
	case map[string]any:
		if len(e) != 1 {
			return valueMatcher{}, fmt.Errorf("%s: an operator object has one key, not %s", at, jsonText(e))
		}
		for op, arg := range e {
			return compileOperator(op, arg, at)
		}
	}
	return valueMatcher{}, fmt.Errorf("%s: unsupported value %s", at, jsonText(e))
}

func compileOperator(op string, arg any, at string) (valueMatcher, error) {
	bad := func(want string) (valueMatcher, error) {
		return valueMatcher{}, fmt.Errorf("%s: %q needs %s, not %s", at, op, want, jsonText(arg))
	}
	str, isStr := arg.(string)
	switch op {
	case "prefix", "suffix", "equals-ignore-case":
		if !isStr {
			return bad("a string")
		}
		test := map[string]func(s, t string) bool{"prefix": strings.HasPrefix, "suffix": strings.HasSuffix, "equals-ignore-case": strings.EqualFold}[op]
		return valueMatcher{match: func(v any) bool {
			s, ok := v.(string)
			return ok && test(s, str)
		}}, nil
	case "exists":
		b, ok := arg.(bool)
		if !ok {
			return bad("true or false")
		}
		return valueMatcher{exists: &b}, nil
	case "anything-but":
		var excluded []valueMatcher
		switch a := arg.(type) {
		case string, json.Number:
			m, err := compileMatcher(a, at)
			if err != nil {
				return valueMatcher{}, err
			}
			excluded = append(excluded, m)
		case []any:
			if len(a) == 0 {
				return bad("values")
			}
			for _, x := range a {
				switch x.(type) {
				case string, json.Number:
				default:
					return bad("strings or numbers")
				}
				m, err := compileMatcher(x, at)
				if err != nil {
					return valueMatcher{}, err
				}
				excluded = append(excluded, m)
			}
		case map[string]any:
			if _, ok := a["prefix"]; !ok || len(a) != 1 {
				return bad(`values or {"prefix": ...}`)
			}
			m, err := compileOperator("prefix", a["prefix"], at)
			if err != nil {
				return valueMatcher{}, err
			}
			excluded = append(excluded, m)
		default:
			return bad("values or a prefix")
		}
		return valueMatcher{match: func(v any) bool {
			for _, m := range excluded {
				if m.match(v) {
					return false
				}
			}
			return true
		}}, nil
	case "numeric":
		cond, ok := arg.([]any)
		if !ok || (len(cond) != 2 && len(cond) != 4) {
			return bad(`[op, number] or [op, number, op, number]`)
		}
		var tests []func(float64) bool
		for i := 0; i < len(cond); i += 2 {
			o, _ := cond[i].(string)
			n, _ := cond[i+1].(json.Number)
			bound, err := n.Float64()
			if err != nil {
				return bad(`[op, number] or [op, number, op, number]`)
			}
			var t func(float64) bool
			switch o {
			case "=":
				t = func(f float64) bool { return f == bound }
			case "<":
				t = func(f float64) bool { return f < bound }
			case "<=":
				t = func(f float64) bool { return f <= bound }
			case ">":
				t = func(f float64) bool { return f > bound }
			case ">=":
				t = func(f float64) bool { return f >= bound }
			default:
				return bad(`an operator of =, <, <=, >, >=`)
			}
			tests = append(tests, t)
		}
		return valueMatcher{match: func(v any) bool {
			var f float64
			var err error
			switch v := v.(type) {
			case json.Number:
				f, err = v.Float64()
			case string:
				f, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
			default:
				return false
			}
			if err != nil {
				return false
			}
			for _, t := range tests {
				if !t(f) {
					return false
				}
			}
			return true
		}}, nil
	}
	return valueMatcher{}, fmt.Errorf("%s: unsupported filter operator %q", at, op)
}

// match reports whether a record (as generic JSON) matches the pattern. A missing field, or
// one that is not an object where the pattern has one, matches only {"exists": false}.
func (p *pattern) match(obj map[string]any) bool {
	for key, sub := range p.fields {
		child, _ := obj[key].(map[string]any)
		if !sub.match(child) {
			return false
		}
	}
	for key, ms := range p.leaves {
		v, present := obj[key]
		if !leafMatches(ms, v, present) {
			return false
		}
	}
	return true
}

func leafMatches(ms []valueMatcher, v any, present bool) bool {
	for _, m := range ms {
		if m.exists != nil {
			if *m.exists == present {
				return true
			}
			continue
		}
		if !present {
			continue
		}
		if list, ok := v.([]any); ok {
			for _, e := range list {
				if m.match(e) {
					return true
				}
			}
			continue
		}
		if m.match(v) {
			return true
		}
	}
	return false
}

// matches reports whether the mapping's filters let the record through: always without filters,
// else when any filter matches the record's JSON as the function would get it.
func (m *mapping) matches(it item) bool {
	if len(m.filters) == 0 {
		return true
	}
	doc, err := document(it.data)
	if err != nil {
		m.log.Error("stream esm cannot filter a record; sending it", "sequence_number", it.seq(), "err", err)
		return true
	}
	for _, p := range m.filters {
		if p.match(doc) {
			return true
		}
	}
	return false
}

// document is a record's JSON as generic values, numbers kept as json.Number.
func document(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	return doc, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "pattern"
	}
	return path
}

// jsonText renders a pattern value for messages.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
