package e2e_test

import (
	"sync"
	"testing"
)

// The lanes: each names one stack whose default workspace its tests share.
const (
	laneShared        = "shared"
	laneOnce          = "once" // onceStack: the tests that count the agent's runs
	laneAdapter       = "adapter"
	laneLive          = "live"
	laneBudget        = "budget"
	laneLoops         = "loops"
	laneWidgetLimited = "widgetLimited"
)

var (
	lanesMu sync.Mutex
	lanes   = map[string]chan struct{}{} // per lane: closed when its latest test has ended
)

// inLane makes t a parallel test that runs alone in its lane, after the lane's earlier tests in
// the order they are declared: tests that share a stack's default workspace (and would disturb
// each other's counts, sources and limits) run one at a time, while the lanes, and the tests with
// stacks or workspaces of their own, run side by side.
func inLane(t *testing.T, name string) {
	t.Helper()
	done := make(chan struct{})
	lanesMu.Lock() // before t.Parallel: the tests reach here one by one, in order
	prev := lanes[name]
	lanes[name] = done
	lanesMu.Unlock()
	t.Cleanup(func() { close(done) })
	t.Parallel()
	if prev != nil {
		<-prev
	}
}
