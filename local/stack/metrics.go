package stack

import (
	"encoding/json"
	"net/http"

	"github.com/hookgate/hookgate/local/emf"
)

// MetricsPath is local mode's metrics page: the sums of every function's EMF metrics since the
// stack started, as JSON {"metrics":[{name, unit, dimensions, count, sum, max}], "invalid_lines"}.
const MetricsPath = "/_local/metrics"

// MetricsPage is the body of MetricsPath.
type MetricsPage struct {
	Metrics      []emf.Stat `json:"metrics"`
	InvalidLines int        `json:"invalid_lines"` // EMF lines CloudWatch would reject
}

// Metrics returns the metrics the functions emitted so far.
func (s *Stack) Metrics() MetricsPage {
	stats, bad := s.metrics.Snapshot()
	return MetricsPage{Metrics: stats, InvalidLines: bad}
}

func (s *Stack) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(s.Metrics())
}
