// Package metrics writes CloudWatch Embedded Metric Format (EMF) lines: JSON objects on stdout that
// CloudWatch Logs turns into metrics. A handler records into an Emitter during an invocation and
// flushes once at its end; dimensions are few and bounded (door, reason, outcome, target).
package metrics

import (
	"encoding/json"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultNamespace is the CloudWatch namespace when none is configured.
const DefaultNamespace = "Hookgate"

// Metric names, the same in every function.
const (
	InboundAccepted = "InboundAccepted" // {Door}: a door queued a message (2xx)
	InboundRefused  = "InboundRefused"  // {Door, Reason}: a door answered 4xx/5xx; Reason is the error code
	Runs            = "Runs"            // {Outcome}: a run's turn ended: completed, failed, waiting_approval, retry
	AgentLatency    = "AgentLatency"    // {Outcome}: one agent call, ok or error, in milliseconds
	Deliveries      = "Deliveries"      // {Target, Outcome}: one attempt's outcome: delivered, retry, exhausted, disabled, dropped
	AttemptLatency  = "AttemptLatency"  // {Target}: one outbound attempt, in milliseconds
	FanoutLag       = "FanoutLag"       // {Target}: event appended → delivery queued, in milliseconds
	RetriesWaiting  = "RetriesWaiting"  // {Target}: deliveries that went into a retry wait
)

// Units (CloudWatch's names).
const (
	UnitCount        = "Count"
	UnitMilliseconds = "Milliseconds"
)

// EMF's limits on one directive.
const (
	MaxDimensions = 30
	MaxMetrics    = 100
	maxValues     = 100 // values of one metric in one line
)

// Emitter collects metrics of one invocation and writes them as EMF lines on Flush. Its methods
// may be called concurrently; a nil Emitter records nothing.
type Emitter struct {
	w   io.Writer
	ns  string
	now func() time.Time

	mu   sync.Mutex
	sets map[string]*set // by dimension names and values
	keys []string        // in first-recorded order
}

// set is the metrics of one combination of dimension values: one EMF line.
type set struct {
	dims   []string // name, value, name, value, …
	units  map[string]string
	names  []string
	values map[string][]float64
	counts map[string]float64
}

// New returns an Emitter writing to w (os.Stdout in a function) in namespace ns.
func New(w io.Writer, ns string, now func() time.Time) *Emitter {
	if ns == "" {
		ns = DefaultNamespace
	}
	return &Emitter{w: w, ns: ns, now: now, sets: map[string]*set{}}
}

// Count adds n to a counter. dims are name, value pairs; values must come from a bounded set.
func (e *Emitter) Count(name string, n float64, dims ...string) {
	e.record(name, UnitCount, n, true, dims)
}

// Millis records one duration in milliseconds.
func (e *Emitter) Millis(name string, d time.Duration, dims ...string) {
	e.record(name, UnitMilliseconds, float64(d.Microseconds())/1000, false, dims)
}

func (e *Emitter) record(name, unit string, v float64, sum bool, dims []string) {
	if e == nil || len(dims)%2 != 0 || len(dims)/2 > MaxDimensions {
		return
	}
	key := strings.Join(dims, "\x00")
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.sets[key]
	if s == nil {
		s = &set{dims: slices.Clone(dims), units: map[string]string{}, values: map[string][]float64{}, counts: map[string]float64{}}
		e.sets[key] = s
		e.keys = append(e.keys, key)
	}
	if _, ok := s.units[name]; !ok {
		if len(s.names) == MaxMetrics {
			return
		}
		s.units[name] = unit
		s.names = append(s.names, name)
	}
	if sum {
		s.counts[name] += v
	} else if len(s.values[name]) < maxValues {
		s.values[name] = append(s.values[name], v)
	}
}

// Flush writes one EMF line per combination of dimension values recorded since the last Flush,
// and forgets them.
func (e *Emitter) Flush() {
	if e == nil {
		return
	}
	e.mu.Lock()
	sets, keys := e.sets, e.keys
	e.sets, e.keys = map[string]*set{}, nil
	e.mu.Unlock()
	ts := e.now().UnixMilli()
	for _, k := range keys {
		line, err := sets[k].line(e.ns, ts)
		if err == nil {
			_, _ = e.w.Write(line)
		}
	}
}

type metricDef struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type directive struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []metricDef `json:"Metrics"`
}

type awsMeta struct {
	Timestamp         int64       `json:"Timestamp"`
	CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
}

func (s *set) line(ns string, ts int64) ([]byte, error) {
	obj := make(map[string]any, 1+len(s.dims)/2+len(s.names))
	d := directive{Namespace: ns, Dimensions: [][]string{{}}}
	for i := 0; i < len(s.dims); i += 2 {
		d.Dimensions[0] = append(d.Dimensions[0], s.dims[i])
		obj[s.dims[i]] = s.dims[i+1]
	}
	for _, n := range s.names {
		d.Metrics = append(d.Metrics, metricDef{Name: n, Unit: s.units[n]})
		if vs, ok := s.values[n]; ok {
			if len(vs) == 1 {
				obj[n] = vs[0]
			} else {
				obj[n] = vs
			}
		} else {
			obj[n] = s.counts[n]
		}
	}
	obj["_aws"] = awsMeta{Timestamp: ts, CloudWatchMetrics: []directive{d}}
	b, err := json.Marshal(obj)
	return append(b, '\n'), err
}

// Target is a delivery's Target dimension: webhook (a subscription), callback or telegram.
func Target(t string) string {
	switch t {
	case "":
		return "webhook"
	case "callback", "telegram":
		return t
	}
	return "other"
}

// FromEnv returns the Emitter of a function: EMF lines on stdout (Lambda sends them to CloudWatch
// Logs, which extracts the metrics) in namespace HOOKGATE_METRICS_NAMESPACE (default Hookgate).
func FromEnv(getenv func(string) string) *Emitter {
	return New(os.Stdout, getenv("HOOKGATE_METRICS_NAMESPACE"), time.Now)
}
