package eventfilter

import (
	"bytes"
	"encoding/json"
	"encoding/json/jsontext"
	"strconv"
	"strings"
)

// Extractor reads, in one pass over an event's JSON, only the values at the paths a set of
// filters reads: the rest is skipped without being decoded. The fan-out makes one per batch and
// workspace; it is not safe for concurrent use.
type Extractor struct {
	root *trie
	dec  *jsontext.Decoder
	rd   bytes.Reader
	vals map[string]any
}

// decodeOptions read what encoding/json reads: a name given twice (the last one wins) and
// invalid UTF-8 in strings.
var decodeOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// trie is the filters' paths, part by part.
type trie struct {
	path     string // the path to this node, when a filter reads it
	leaf     bool
	children map[string]*trie
	below    []*trie // every leaf under this node (to fill from a leaf's decoded value)
}

// NewExtractor returns an Extractor of the paths the filters read.
func NewExtractor(filters ...*Filter) *Extractor {
	x := &Extractor{root: &trie{}, dec: jsontext.NewDecoder(bytes.NewReader(nil), decodeOptions...), vals: map[string]any{}}
	for _, f := range filters {
		if !f.Empty() {
			walkConds(f.root, x.add)
		}
	}
	return x
}

func walkConds(n node, fn func(cond)) {
	switch n := n.(type) {
	case and:
		for _, c := range n {
			walkConds(c, fn)
		}
	case or:
		for _, c := range n {
			walkConds(c, fn)
		}
	case not:
		walkConds(n.n, fn)
	case cond:
		fn(n)
	}
}

func (x *Extractor) add(c cond) {
	n := x.root
	var path []*trie
	for _, p := range c.path {
		path = append(path, n)
		next := n.children[p]
		if next == nil {
			if n.children == nil {
				n.children = map[string]*trie{}
			}
			next = &trie{}
			n.children[p] = next
		}
		n = next
	}
	if n.leaf {
		return
	}
	n.leaf, n.path = true, c.key
	for _, up := range path {
		up.below = append(up.below, n)
	}
}

// extracted is an event as an Extractor read it: the value of every path its filters read that
// the event has.
type extracted map[string]any

func (e extracted) value(path string, _ []string) (any, bool) {
	v, ok := e[path]
	return v, ok
}

// Extract reads the event's JSON. The Event it returns is valid until the next call.
func (x *Extractor) Extract(raw []byte) (Event, error) {
	clear(x.vals)
	x.rd.Reset(raw)
	x.dec.Reset(&x.rd, decodeOptions...)
	if err := x.walk(x.root); err != nil {
		return nil, err
	}
	return extracted(x.vals), nil
}

// walk reads the next value: captured when n is a leaf, searched when it has children, else skipped.
func (x *Extractor) walk(n *trie) error {
	if n.leaf {
		raw, err := x.dec.ReadValue()
		if err != nil {
			return err
		}
		v, err := scalar(raw)
		if err != nil {
			return err
		}
		x.vals[n.path] = v
		// Leaves under this one are read from its value.
		for _, l := range n.below {
			rel := strings.Split(strings.TrimPrefix(l.path, n.path+"."), ".")
			if lv, ok := lookup(v, rel); ok {
				x.vals[l.path] = lv
			}
		}
		return nil
	}
	if len(n.children) == 0 {
		return x.dec.SkipValue()
	}
	switch x.dec.PeekKind() {
	case '{':
		if _, err := x.dec.ReadToken(); err != nil {
			return err
		}
		for x.dec.PeekKind() != '}' {
			name, err := x.dec.ReadValue()
			if err != nil {
				return err
			}
			child := n.children[string(unquote(name))]
			if child == nil {
				err = x.dec.SkipValue()
			} else {
				err = x.walk(child)
			}
			if err != nil {
				return err
			}
		}
		_, err := x.dec.ReadToken()
		return err
	case '[':
		if _, err := x.dec.ReadToken(); err != nil {
			return err
		}
		for i := 0; x.dec.PeekKind() != ']'; i++ {
			var err error
			if child := n.children[strconv.Itoa(i)]; child != nil {
				err = x.walk(child)
			} else {
				err = x.dec.SkipValue()
			}
			if err != nil {
				return err
			}
		}
		_, err := x.dec.ReadToken()
		return err
	}
	return x.dec.SkipValue()
}

// scalar decodes a value as encoding/json into an any would: strings, numbers, booleans and
// null directly (the common case), objects and arrays through encoding/json.
func scalar(raw jsontext.Value) (any, error) {
	switch raw.Kind() {
	case '"':
		return string(unquote(raw)), nil
	case '0':
		f, _ := strconv.ParseFloat(string(raw), 64) // out of range: ±Inf, still ordered
		return f, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case 'n':
		return nil, nil
	}
	var v any
	err := json.Unmarshal(raw, &v)
	return v, err
}

// unquote returns a JSON string's contents: without copying when it has no escape.
func unquote(q jsontext.Value) []byte {
	if bytes.IndexByte(q, '\\') < 0 && len(q) >= 2 {
		return q[1 : len(q)-1]
	}
	b, err := jsontext.AppendUnquote(nil, q)
	if err != nil {
		return nil
	}
	return b
}
