// Package eventfilter is the payload filter a subscription may carry besides its event types: a
// small JSON language on dotted paths of the event's envelope (`type`, `data.amount`), compiled
// and bounded when a subscription is created. The fan-out reads an event once for all of a
// workspace's filters (Extractor: one pass, only their paths decoded), then evaluates each in time
// linear in its size.
//
//	{"data.amount": {"$gte": 100}, "data.currency": {"$in": ["eur", "usd"]}}
//	{"$or": [{"data.channel": "telegram"}, {"data.user": {"$exists": true}}]}
//
// A filter is a JSON object; all its keys must hold. A key is a dotted path or one of $and, $or
// (arrays of filters) and $not (a filter). A path's condition is a value it must equal (numbers
// as IEEE doubles, objects and arrays deeply), or an object of operators: $eq, $ne, $in, $nin
// (arrays of values), $gt, $gte, $lt, $lte (a number, or a string compared byte-wise, e.g. RFC 3339
// times), $exists (a boolean). A path part that is a decimal number indexes an array. A missing
// path equals nothing, so $ne and $nin match it and every comparison fails.
package eventfilter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Bounds of a filter, checked by Compile.
const (
	MaxBytes      = 4 << 10 // the filter's JSON
	MaxDepth      = 8       // nesting of objects and arrays in the filter
	MaxConditions = 64      // path conditions and operators, in all
	MaxPathParts  = 16
	MaxPathBytes  = 256
	MaxInValues   = 64
)

// Filter is a compiled filter. The zero value matches every event.
type Filter struct {
	root node
}

// Empty reports whether f filters nothing out.
func (f *Filter) Empty() bool { return f == nil || f.root == nil }

// Event is an event as filters read it: the values at their paths. Decode makes one of a whole
// event; an Extractor one of only the paths its filters read, in one pass.
type Event interface {
	// value returns the value at path (its parts joined by dots), and whether it exists.
	value(path string, parts []string) (any, bool)
}

// Match reports whether the event passes the filter.
func (f *Filter) Match(event Event) bool {
	if f.Empty() {
		return true
	}
	return f.root.match(event)
}

// decoded is a whole event, decoded.
type decoded struct{ v any }

func (d decoded) value(_ string, parts []string) (any, bool) { return lookup(d.v, parts) }

// Decode decodes a whole event's JSON for Match.
func Decode(raw []byte) (Event, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return decoded{v}, nil
}

// node is one compiled part of a filter.
type node interface{ match(event Event) bool }

type and []node
type or []node
type not struct{ n node }

func (a and) match(e Event) bool {
	for _, n := range a {
		if !n.match(e) {
			return false
		}
	}
	return true
}

func (o or) match(e Event) bool {
	for _, n := range o {
		if n.match(e) {
			return true
		}
	}
	return false
}

func (n not) match(e Event) bool { return !n.n.match(e) }

// cond is one path's operators, all of which must hold.
type cond struct {
	key  string // the path as written
	path []string
	ops  []op
}

type op struct {
	kind string // $eq $ne $in $nin $gt $gte $lt $lte $exists
	val  any    // the operand: a value, a list, or a bool for $exists
}

func (c cond) match(e Event) bool {
	v, ok := e.value(c.key, c.path)
	for _, o := range c.ops {
		if !o.match(v, ok) {
			return false
		}
	}
	return true
}

func (o op) match(v any, found bool) bool {
	switch o.kind {
	case "$exists":
		return found == o.val.(bool)
	case "$eq":
		return found && equal(v, o.val)
	case "$ne":
		return !found || !equal(v, o.val)
	case "$in", "$nin":
		in := false
		if found {
			for _, x := range o.val.([]any) {
				if equal(v, x) {
					in = true
					break
				}
			}
		}
		return in == (o.kind == "$in")
	}
	if !found {
		return false
	}
	var c int
	switch a := v.(type) {
	case float64:
		b, ok := o.val.(float64)
		if !ok {
			return false
		}
		c = cmpFloat(a, b)
	case string:
		b, ok := o.val.(string)
		if !ok {
			return false
		}
		c = strings.Compare(a, b)
	default:
		return false
	}
	switch o.kind {
	case "$gt":
		return c > 0
	case "$gte":
		return c >= 0
	case "$lt":
		return c < 0
	}
	return c <= 0 // $lte
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// equal compares decoded JSON values: scalars directly, objects and arrays deeply.
func equal(a, b any) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case nil:
		return b == nil
	}
	return reflect.DeepEqual(a, b)
}

// lookup follows path through objects (by key) and arrays (by a decimal index).
func lookup(v any, path []string) (any, bool) {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[p]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// Compile parses and checks a filter. Its errors say what is wrong and where (the path or
// operator at fault), so the API can answer 400 with them. An empty object is the empty filter.
func Compile(raw []byte) (*Filter, error) {
	if len(raw) > MaxBytes {
		return nil, fmt.Errorf("must be at most %d bytes of JSON", MaxBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errors.New("is not valid JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("must be a single JSON object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("must be a JSON object")
	}
	c := &compiler{}
	n, err := c.filter(obj, 1, "")
	if err != nil {
		return nil, err
	}
	if len(obj) == 0 {
		return &Filter{}, nil
	}
	return &Filter{root: n}, nil
}

type compiler struct{ conditions int }

func (c *compiler) count(where string) error {
	if c.conditions++; c.conditions > MaxConditions {
		return fmt.Errorf("%shas more than %d conditions", where, MaxConditions)
	}
	return nil
}

func at(where string) string {
	if where == "" {
		return ""
	}
	return where + ": "
}

// filter compiles an object of paths and $and/$or/$not, in key order (so errors are stable).
func (c *compiler) filter(obj map[string]any, depth int, where string) (node, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("%sis nested more than %d levels deep", at(where), MaxDepth)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var all and
	for _, k := range keys {
		v := obj[k]
		switch k {
		case "$and", "$or":
			list, ok := v.([]any)
			if !ok || len(list) == 0 {
				return nil, fmt.Errorf("%s%s takes a non-empty array of filters", at(where), k)
			}
			if depth+1 > MaxDepth {
				return nil, fmt.Errorf("%sis nested more than %d levels deep", at(join(where, k)), MaxDepth)
			}
			var subs []node
			for i, x := range list {
				sub, ok := x.(map[string]any)
				w := fmt.Sprintf("%s[%d]", join(where, k), i)
				if !ok || len(sub) == 0 {
					return nil, fmt.Errorf("%smust be a non-empty filter object", at(w))
				}
				n, err := c.filter(sub, depth+2, w)
				if err != nil {
					return nil, err
				}
				subs = append(subs, n)
			}
			if k == "$and" {
				all = append(all, and(subs))
			} else {
				all = append(all, or(subs))
			}
		case "$not":
			sub, ok := v.(map[string]any)
			if !ok || len(sub) == 0 {
				return nil, fmt.Errorf("%s$not takes a non-empty filter object", at(where))
			}
			n, err := c.filter(sub, depth+1, join(where, k))
			if err != nil {
				return nil, err
			}
			all = append(all, not{n})
		default:
			if strings.HasPrefix(k, "$") {
				return nil, fmt.Errorf("%s%s is not an operator here (a filter's keys are paths, $and, $or or $not)", at(where), quote(k))
			}
			n, err := c.cond(k, v, depth+1)
			if err != nil {
				return nil, err
			}
			all = append(all, n)
		}
	}
	if len(all) == 1 {
		return all[0], nil
	}
	return all, nil
}

func join(where, k string) string {
	if where == "" {
		return k
	}
	return where + "." + k
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}

// cond compiles one path's condition.
func (c *compiler) cond(path string, v any, depth int) (node, error) {
	parts, err := parsePath(path)
	if err != nil {
		return nil, err
	}
	where := "path " + quote(path)
	if err := c.count(at(where)); err != nil {
		return nil, err
	}
	ops, isOps := v.(map[string]any)
	if isOps {
		isOps = false
		for k := range ops {
			if strings.HasPrefix(k, "$") {
				isOps = true
			}
		}
	}
	if !isOps {
		val, err := value(v, depth, where)
		if err != nil {
			return nil, err
		}
		return cond{key: path, path: parts, ops: []op{{kind: "$eq", val: val}}}, nil
	}
	keys := make([]string, 0, len(ops))
	for k := range ops {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := cond{key: path, path: parts}
	for _, k := range keys {
		x := ops[k]
		w := where + " " + k
		if len(out.ops) > 0 {
			if err := c.count(at(where)); err != nil {
				return nil, err
			}
		}
		switch k {
		case "$eq", "$ne":
			val, err := value(x, depth+1, w)
			if err != nil {
				return nil, err
			}
			out.ops = append(out.ops, op{k, val})
		case "$in", "$nin":
			list, ok := x.([]any)
			if !ok {
				return nil, fmt.Errorf("%s takes an array of values", w)
			}
			if len(list) > MaxInValues {
				return nil, fmt.Errorf("%s takes at most %d values", w, MaxInValues)
			}
			val, err := value(list, depth+1, w)
			if err != nil {
				return nil, err
			}
			out.ops = append(out.ops, op{k, val})
		case "$gt", "$gte", "$lt", "$lte":
			switch n := x.(type) {
			case json.Number:
				f, err := n.Float64()
				if err != nil {
					return nil, fmt.Errorf("%s: %s is out of range", w, n)
				}
				out.ops = append(out.ops, op{k, f})
			case string:
				out.ops = append(out.ops, op{k, n})
			default:
				return nil, fmt.Errorf("%s takes a number or a string", w)
			}
		case "$exists":
			b, ok := x.(bool)
			if !ok {
				return nil, fmt.Errorf("%s takes true or false", w)
			}
			out.ops = append(out.ops, op{k, b})
		default:
			if strings.HasPrefix(k, "$") {
				return nil, fmt.Errorf("%s: %s is not an operator ($eq, $ne, $in, $nin, $gt, $gte, $lt, $lte, $exists)", where, quote(k))
			}
			return nil, fmt.Errorf("%s: operators and plain keys cannot be mixed (%s); to equal an object, use $eq", where, quote(k))
		}
	}
	return out, nil
}

// parsePath splits a dotted path: 1 to MaxPathParts non-empty parts, at most MaxPathBytes.
func parsePath(p string) ([]string, error) {
	switch {
	case len(p) > MaxPathBytes:
		return nil, fmt.Errorf("path %s is longer than %d bytes", quote(p), MaxPathBytes)
	case p == "":
		return nil, errors.New("a path is empty")
	}
	parts := strings.Split(p, ".")
	if len(parts) > MaxPathParts {
		return nil, fmt.Errorf("path %s has more than %d parts", quote(p), MaxPathParts)
	}
	for _, part := range parts {
		if part == "" {
			return nil, fmt.Errorf("path %s has an empty part", quote(p))
		}
	}
	return parts, nil
}

// value converts a decoded operand (json.Number inside) to what Decode yields (float64), within
// the depth bound.
func value(v any, depth int, where string) (any, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("%s is nested more than %d levels deep", where, MaxDepth)
	}
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("%s: %s is out of range", where, x)
		}
		return f, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = value(e, depth+1, where); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			var err error
			if out[k], err = value(e, depth+1, where); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return v, nil
}
