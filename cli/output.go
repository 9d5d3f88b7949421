package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// printer writes a command's result: the API's JSON as is with --json, else a table or a record.
type printer struct {
	w    io.Writer
	json bool
}

// raw writes JSON on one line.
func (p printer) raw(v []byte) {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		b.Reset()
		b.Write(v)
	}
	b.WriteByte('\n')
	p.w.Write(b.Bytes())
}

// value writes v as one line of JSON.
func (p printer) value(v any) {
	raw, _ := json.Marshal(v)
	p.raw(raw)
}

// table writes rows of objects under the given columns (JSON keys).
func (p printer) table(items []map[string]any, columns []string) {
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	head := make([]string, len(columns))
	for i, c := range columns {
		head[i] = strings.ToUpper(c)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, it := range items {
		cells := make([]string, len(columns))
		for i, c := range columns {
			cells[i] = cell(it[c])
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

// record writes one object as "key  value" lines, keys first in the given order then sorted.
func (p printer) record(obj map[string]any, order ...string) {
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	seen := map[string]bool{}
	keys := []string{}
	for _, k := range order {
		if _, ok := obj[k]; ok && !seen[k] {
			keys = append(keys, k)
			seen[k] = true
		}
	}
	var rest []string
	for k := range obj {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range append(keys, rest...) {
		fmt.Fprintf(tw, "%s\t%s\n", k, cell(obj[k]))
	}
	tw.Flush()
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		if x == "" {
			return "-"
		}
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = cell(e)
		}
		return strings.Join(parts, ",")
	default:
		raw, _ := json.Marshal(x)
		return string(raw)
	}
}
