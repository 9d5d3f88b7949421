// Package emf reads CloudWatch Embedded Metric Format lines as CloudWatch Logs does: it checks a
// line's _aws block and extracts its metrics, and adds them up for local mode's /_local/metrics.
package emf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
)

// EMF's limits on one directive.
const (
	maxDimensions = 30
	maxMetrics    = 100
)

// Datum is one metric of one line: its name, unit, dimensions and values.
type Datum struct {
	Namespace  string
	Name       string
	Unit       string
	Dimensions map[string]string
	Values     []float64
}

// IsEMF reports whether line looks like an EMF object (has an _aws member), cheaply.
func IsEMF(line []byte) bool {
	line = bytes.TrimSpace(line)
	return len(line) > 0 && line[0] == '{' && bytes.Contains(line, []byte(`"_aws"`))
}

// Parse checks line against the EMF specification and returns its metrics: a JSON object whose
// _aws has a numeric Timestamp and CloudWatchMetrics directives, each with a Namespace, at most 30
// keys per dimension set, each a top-level string, and 1 to 100 metrics, each a top-level number
// or array of numbers.
func Parse(line []byte) ([]Datum, error) {
	var root map[string]json.RawMessage
	if err := json.Unmarshal(line, &root); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	var meta struct {
		Timestamp         *float64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit string `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	}
	raw, ok := root["_aws"]
	if !ok {
		return nil, errors.New("no _aws member")
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("_aws: %w", err)
	}
	if meta.Timestamp == nil || *meta.Timestamp <= 0 {
		return nil, errors.New("_aws.Timestamp is missing")
	}
	if len(meta.CloudWatchMetrics) == 0 {
		return nil, errors.New("_aws.CloudWatchMetrics is empty")
	}
	str := func(k string) (string, bool) {
		var s string
		v, ok := root[k]
		return s, ok && json.Unmarshal(v, &s) == nil
	}
	var out []Datum
	for _, d := range meta.CloudWatchMetrics {
		if d.Namespace == "" || len(d.Namespace) > 255 {
			return nil, errors.New("a directive has no Namespace")
		}
		if len(d.Metrics) == 0 || len(d.Metrics) > maxMetrics {
			return nil, fmt.Errorf("a directive has %d metrics (1 to %d)", len(d.Metrics), maxMetrics)
		}
		if len(d.Dimensions) == 0 {
			return nil, errors.New("a directive has no Dimensions")
		}
		for _, set := range d.Dimensions {
			if len(set) > maxDimensions {
				return nil, fmt.Errorf("a dimension set has %d keys (at most %d)", len(set), maxDimensions)
			}
			for _, k := range set {
				if _, ok := str(k); !ok {
					return nil, fmt.Errorf("dimension %q is not a top-level string", k)
				}
			}
		}
		for _, m := range d.Metrics {
			vals, err := values(root[m.Name])
			if err != nil {
				return nil, fmt.Errorf("metric %q: %w", m.Name, err)
			}
			for _, set := range d.Dimensions {
				dims := map[string]string{}
				for _, k := range set {
					dims[k], _ = str(k)
				}
				out = append(out, Datum{Namespace: d.Namespace, Name: m.Name, Unit: m.Unit, Dimensions: dims, Values: vals})
			}
		}
	}
	return out, nil
}

func values(raw json.RawMessage) ([]float64, error) {
	if raw == nil {
		return nil, errors.New("no top-level member")
	}
	var one float64
	if json.Unmarshal(raw, &one) == nil {
		return []float64{one}, nil
	}
	var many []float64
	if json.Unmarshal(raw, &many) != nil || len(many) == 0 || len(many) > 100 {
		return nil, errors.New("not a number or an array of 1 to 100 numbers")
	}
	return many, nil
}

// Stat is the aggregate of one metric with one set of dimension values.
type Stat struct {
	Name       string            `json:"name"`
	Unit       string            `json:"unit"`
	Dimensions map[string]string `json:"dimensions,omitempty"`
	Count      int               `json:"count"` // values seen
	Sum        float64           `json:"sum"`
	Max        float64           `json:"max"`
}

// Aggregator adds up the metrics of the EMF lines it is given. It is safe for concurrent use.
type Aggregator struct {
	mu    sync.Mutex
	stats map[string]*Stat
	bad   int
}

// NewAggregator returns an empty Aggregator.
func NewAggregator() *Aggregator { return &Aggregator{stats: map[string]*Stat{}} }

// Line adds an EMF line's metrics; a line that is not EMF is ignored, an invalid one counted.
func (a *Aggregator) Line(line []byte) {
	if !IsEMF(line) {
		return
	}
	ds, err := Parse(bytes.TrimSpace(line))
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.bad++
		return
	}
	for _, d := range ds {
		k := key(d.Name, d.Dimensions)
		s := a.stats[k]
		if s == nil {
			s = &Stat{Name: d.Name, Unit: d.Unit, Dimensions: d.Dimensions}
			a.stats[k] = s
		}
		for _, v := range d.Values {
			s.Count++
			s.Sum += v
			s.Max = max(s.Max, v)
		}
	}
}

func key(name string, dims map[string]string) string {
	ks := make([]string, 0, len(dims))
	for k, v := range dims {
		ks = append(ks, k+"="+v)
	}
	sort.Strings(ks)
	return name + "{" + strings.Join(ks, ",") + "}"
}

// Snapshot returns the aggregates, sorted by metric and dimensions, and the number of invalid
// EMF lines seen.
func (a *Aggregator) Snapshot() ([]Stat, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	keys := make([]string, 0, len(a.stats))
	for k := range a.stats {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]Stat, len(keys))
	for i, k := range keys {
		out[i] = *a.stats[k]
		out[i].Dimensions = maps.Clone(a.stats[k].Dimensions)
	}
	return out, a.bad
}

// Summary is one line of the aggregates: "Name{dims}=sum" for counts, "Name{dims} n=… avg=…ms"
// for durations.
func Summary(stats []Stat) string {
	var b strings.Builder
	for i, s := range stats {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(key(s.Name, s.Dimensions))
		if s.Unit == "Count" {
			fmt.Fprintf(&b, "=%g", s.Sum)
		} else {
			fmt.Fprintf(&b, "(n=%d avg=%.1fms)", s.Count, s.Sum/float64(s.Count))
		}
	}
	return b.String()
}

// ParseAll parses every non-empty line of b as EMF (see Parse).
func ParseAll(b []byte) ([]Datum, error) {
	var out []Datum
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		ds, err := Parse(line)
		if err != nil {
			return nil, fmt.Errorf("line %s: %w", line, err)
		}
		out = append(out, ds...)
	}
	return out, nil
}
