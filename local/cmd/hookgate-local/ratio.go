package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// benchLine is one result line of `go test -bench -benchmem`.
type benchLine struct {
	name          string
	ns, allocs, b float64
	metrics       []metric // the benchmark's own (b.ReportMetric), in the line's order
}

type metric struct {
	unit  string
	value float64
}

// ratios reads `go test -bench` output, echoes it, and for every benchmark with a "baseline"
// sub-benchmark prints each sibling's ns/op and allocs/op against it, measured in the same run.
func ratios(in io.Reader, out io.Writer) error {
	var lines []benchLine
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		fmt.Fprintln(out, sc.Text())
		if l, ok := parseBench(sc.Text()); ok {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	base := map[string]benchLine{}
	for _, l := range lines {
		if parent, sub, ok := strings.Cut(l.name, "/"); ok && sub == "baseline" {
			base[parent] = l
		}
	}
	if len(base) == 0 {
		return nil
	}
	fmt.Fprintf(out, "\n%-50s %12s %12s %10s %8s\n", "benchmark vs its baseline (same run)", "ns/op", "x baseline", "allocs/op", "x allocs")
	for _, l := range lines {
		parent, sub, ok := strings.Cut(l.name, "/")
		b, has := base[parent]
		if !ok || !has || sub == "baseline" {
			continue
		}
		allocRatio := "-"
		if b.allocs > 0 {
			allocRatio = fmt.Sprintf("%.2fx", l.allocs/b.allocs)
		}
		fmt.Fprintf(out, "%-50s %12.0f %11.2fx %10.0f %8s\n", l.name, l.ns, l.ns/b.ns, l.allocs, allocRatio)
		for _, m := range l.metrics {
			ratio := "-" // the baseline has none, or zero
			for _, bm := range b.metrics {
				if bm.unit == m.unit && bm.value != 0 {
					ratio = fmt.Sprintf("%.2fx", m.value/bm.value)
				}
			}
			fmt.Fprintf(out, "    %-46s %12.4g %12s\n", m.unit, m.value, ratio)
		}
	}
	return nil
}

// parseBench parses "BenchmarkX/sub-2   100   123 ns/op   45 B/op   6 allocs/op".
func parseBench(s string) (benchLine, bool) {
	f := strings.Fields(s)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
		return benchLine{}, false
	}
	name := strings.TrimPrefix(f[0], "Benchmark")
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i]
		}
	}
	l := benchLine{name: name}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			continue
		}
		switch f[i+1] {
		case "ns/op":
			l.ns = v
		case "allocs/op":
			l.allocs = v
		case "B/op":
			l.b = v
		default:
			l.metrics = append(l.metrics, metric{f[i+1], v})
		}
	}
	return l, l.ns > 0
}
