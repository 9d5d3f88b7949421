package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/store"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// logView is the workspace's log as read so far, shard by shard: each shard's events by cursor,
// and its dense prefix. Each shard's cursors are its own, so each is dense on its own.
type logView struct {
	shards []*shardView
	from   []int64 // where each shard's reading starts (a shard not in from, at its beginning)
}

// shardView is one shard of the log as read so far.
type shardView struct {
	byCursor map[int64]store.Event
	dense    int64 // every cursor up to here was read (or given up: its successor is older than the gap grace)
}

// logReader is the part of the store the log's checks read.
type logReader interface {
	LogHead(ctx context.Context, ws string) ([]int64, error)
	ListShard(ctx context.Context, ws string, shard int, after int64, limit int) ([]store.Event, bool, error)
}

// newLogView is a view of the log that starts reading each shard after its cursor in from (a
// shard not in from, at its beginning).
func newLogView(from []int64) *logView { return &logView{from: from} }

// gapGiveUp is when a missing cursor is taken as given up: readers wait a minute (GapGrace).
const gapGiveUp = 70 * time.Second

// read reads every shard of the log (LogHead names them) from its dense prefix on.
func (l *logView) read(ctx context.Context, st logReader) error {
	head, err := st.LogHead(ctx, workspace)
	if err != nil {
		return err
	}
	for len(l.shards) < len(head) {
		sv := &shardView{byCursor: map[int64]store.Event{}}
		if sh := len(l.shards); sh < len(l.from) {
			sv.dense = l.from[sh]
		}
		l.shards = append(l.shards, sv)
	}
	for sh, sv := range l.shards {
		if err := sv.read(ctx, st, sh); err != nil {
			return err
		}
	}
	return nil
}

func (sv *shardView) read(ctx context.Context, st logReader, shard int) error {
	after := sv.dense
	for {
		page, more, err := st.ListShard(ctx, workspace, shard, after, 1000)
		if err != nil {
			return err
		}
		for _, ev := range page {
			sv.byCursor[ev.Cursor] = ev
		}
		if len(page) > 0 {
			after = page[len(page)-1].Cursor
		}
		if !more {
			break
		}
	}
	for {
		if _, ok := sv.byCursor[sv.dense+1]; ok {
			sv.dense++
			continue
		}
		// A gap: skip it once the event after it is older than readers wait.
		next, ok := sv.byCursor[sv.dense+2]
		if ok && time.Since(next.CreatedAt) > gapGiveUp {
			sv.dense++
			continue
		}
		return nil
	}
}

// shardCount is what the audit counted of one shard of the log.
type shardCount struct{ events, gaps int }

func (n shardCount) String() string { return fmt.Sprintf("%d/%d", n.events, n.gaps) }

// ends is the highest cursor read of each shard.
func (l *logView) ends() []int64 {
	out := make([]int64, len(l.shards))
	for sh, sv := range l.shards {
		for c := range sv.byCursor {
			out[sh] = max(out[sh], c)
		}
	}
	return out
}

// owedEvents calls fn with each event read that came after its shard's start cursor (every event
// of a shard not in start).
func (l *logView) owedEvents(start []int64, fn func(shard int, c int64, ev store.Event)) {
	for sh, sv := range l.shards {
		for c, ev := range sv.byCursor {
			if sh >= len(start) || c > start[sh] {
				fn(sh, c, ev)
			}
		}
	}
}

// audit counts the events read and the cursors missing before each shard's highest (gaps), in all
// and of each shard, and notes every event id read at two places (of one shard or two).
func (l *logView) audit() (events, gaps int, byShard []shardCount, doubled []string) {
	at := map[string]string{}
	for sh, sv := range l.shards {
		var last int64
		for c, ev := range sv.byCursor {
			last = max(last, c)
			here := fmt.Sprintf("shard %d cursor %d", sh, c)
			if prev, ok := at[ev.ID]; ok {
				doubled = append(doubled, fmt.Sprintf("event %s at %s and %s", ev.ID, prev, here))
			}
			at[ev.ID] = here
		}
		n := shardCount{events: len(sv.byCursor)}
		for c := int64(1); c <= last; c++ {
			if _, ok := sv.byCursor[c]; !ok {
				n.gaps++
			}
		}
		events, gaps, byShard = events+n.events, gaps+n.gaps, append(byShard, n)
	}
	return events, gaps, byShard, doubled
}

// owes reports whether the fan-out owes subscription s event ev: it matches, and it is not a
// report about s itself (a circuit's opening or closing, a delivery exhausted), which the fan-out
// never sends to the endpoint it is about, nor a delivery.exhausted about another one.
func (s subscription) owes(ev store.Event) bool {
	if !s.match(ev.Type) {
		return false
	}
	switch ev.Type {
	case "endpoint.circuit_opened", "endpoint.circuit_closed", "delivery.exhausted":
		var about struct {
			SubscriptionID string `json:"subscription_id"`
			EventType      string `json:"event_type"`
		}
		_ = json.Unmarshal(ev.Data, &about)
		return about.SubscriptionID != s.id && !(ev.Type == "delivery.exhausted" && about.EventType == "delivery.exhausted")
	}
	return true
}

// owed lists the (subscription, event id) pairs the log says are owed and not yet received.
func owed(l *logView, subs []subscription, start []int64) (missing int, sample string) {
	l.owedEvents(start, func(_ int, _ int64, ev store.Event) {
		for _, s := range subs {
			if !s.owes(ev) {
				continue
			}
			s.recv.mu.Lock()
			_, ok := s.recv.byID[ev.ID]
			s.recv.mu.Unlock()
			if !ok {
				missing++
				sample = s.name + " " + ev.Type + " " + ev.ID
			}
		}
	})
	return missing, sample
}

// waitQuiet waits until the work queues are empty, every accepted message's run has reached its
// final event at the runs subscriber and every event of the log reached each matching
// subscription, or until ConvergeLimit. It reports whether it got there.
func (r *run) waitQuiet(ctx context.Context, msgs []*message, subs []subscription, start []int64, loadEnd time.Time) bool {
	l := newLogView(start)
	deadline := loadEnd.Add(r.c.ConvergeLimit)
	lastNote := time.Now()
	for ctx.Err() == nil {
		_ = l.read(ctx, r.store)
		missing, sample := owed(l, subs, start)
		finals := map[string]bool{}
		runs := subs[1].recv
		runs.mu.Lock()
		for _, rc := range runs.byID {
			finals[rc.runID] = true
		}
		runs.mu.Unlock()
		open := 0
		for _, m := range msgs {
			if m.status == http.StatusAccepted && !finals[m.runIDs[0]] {
				open++
			}
		}
		left := 0
		var qs []string
		for _, q := range []string{"InboundQueue", "DeliveryQueue"} {
			c, err := queueCounts(ctx, r.sqs, r.stack.Queues[q].URL)
			if err != nil {
				left++
				continue
			}
			left += c.total()
			qs = append(qs, fmt.Sprintf("%s %d/%d/%d", q, c.visible, c.notVisible, c.delayed))
		}
		if missing == 0 && open == 0 && left == 0 {
			r.logf("quiet %s after the load", time.Since(loadEnd).Round(time.Second))
			return true
		}
		if time.Since(lastNote) > 15*time.Second {
			lastNote = time.Now()
			r.logf("converging: %d deliveries owed (e.g. %s), %d runs without a final event, queues (visible/in flight/delayed) %s",
				missing, sample, open, strings.Join(qs, ", "))
		}
		if time.Now().After(deadline) {
			r.logf("not quiet %s after the load: giving up", r.c.ConvergeLimit)
			return false
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	return false
}

// Report is what one run found.
type Report struct {
	Messages, Connections int
	Faults                string

	Accepted     int            // 202
	OddKept      int            // odd texts accepted (and checked faithful)
	OddRefused   int            // odd texts refused with their 400
	Unexpected   map[string]int // final answers that were not what the message deserved, by status
	Lost         int            // accepted, no run
	Doubled      int            // a message with two runs, or an event twice in the log
	Stuck        int            // runs not final; messages left in the work queues
	FailedRuns   int            // final but failed
	Unfaithful   int            // completed with another text than the one sent
	LogEvents    int
	LogGaps      int
	LogByShard   []shardCount // of each shard of the log
	Expected     int          // deliveries the log owes the subscriptions
	Missing      int
	DupBefore    int // deliveries taken more than once for one webhook-id
	DupAfter     int // after dedup by webhook-id: receipts of events not in the log
	DLQ          map[string]int
	DLQSample    []string
	QueuesLeft   map[string]int
	FiveXX       map[string]int
	LoadTime     time.Duration // first post to last answer
	FaultsAfter  time.Duration // faults still firing after the last answer
	Converge     time.Duration // end of the load (and of the faults) to the last delivery
	Quiet        bool
	P50, P99     time.Duration
	Stalls       []Stall
	Injected     []string
	Receiver     string
	Failures     []string
	Notes        []string
	lastDelivery time.Time
}

// Failed reports whether anything was lost, doubled, stuck or unexplained.
func (rep *Report) Failed() bool { return len(rep.Failures) > 0 }

func (r *run) check(ctx context.Context, msgs []*message, subs []subscription, start []int64, quiet bool) (*Report, error) {
	rep := &Report{Unexpected: map[string]int{}, DLQ: map[string]int{}, QueuesLeft: map[string]int{}}
	// A message with no run is lost once nothing is left in the inbound queue to make one.
	inbound, err := queueCounts(ctx, r.sqs, r.stack.Queues["InboundQueue"].URL)
	if err != nil {
		return nil, fmt.Errorf("count the inbound queue: %w", err)
	}
	pending := !quiet && inbound.total() > 0
	// The load's answers and the runs in the table.
	var accepted []*message
	for _, m := range msgs {
		switch {
		case m.odd && m.refused && m.status == http.StatusBadRequest:
			rep.OddRefused++
		case m.status == http.StatusAccepted && !m.refused:
			rep.Accepted++
			accepted = append(accepted, m)
			if m.odd {
				rep.OddKept++
			}
			if len(m.runIDs) > 1 {
				rep.Doubled++
				rep.Notes = append(rep.Notes, fmt.Sprintf("message %d answered with runs %v", m.i, m.runIDs))
			}
		default:
			rep.Unexpected[fmt.Sprintf("%d (odd %t)", m.status, m.odd)]++
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan *message)
	for range 16 {
		wg.Go(func() {
			for m := range work {
				run, err := r.store.GetRun(ctx, workspace, m.runIDs[0])
				mu.Lock()
				switch {
				case apierr.CodeOf(err) == apierr.NotFound && pending:
					rep.Stuck++ // perhaps still in the inbound queue
					rep.Notes = append(rep.Notes, "no run yet: message "+m.key+" run "+m.runIDs[0])
				case apierr.CodeOf(err) == apierr.NotFound:
					rep.Lost++
					rep.Notes = append(rep.Notes, "lost: message "+m.key+" run "+m.runIDs[0])
				case err != nil:
					rep.Stuck++
					rep.Notes = append(rep.Notes, "run unreadable: "+err.Error())
				case !run.Terminal():
					rep.Stuck++
					rep.Notes = append(rep.Notes, "stuck: run "+run.ID+" "+run.Status)
				case run.Status != store.RunCompleted:
					rep.FailedRuns++
					rep.Notes = append(rep.Notes, "run "+run.ID+" "+run.Status+": "+run.Error)
				case run.Result == nil || run.Result.Text != m.want:
					rep.Unfaithful++
					rep.Notes = append(rep.Notes, fmt.Sprintf("run %s result %q, sent %q", run.ID, run.Result, m.want))
				}
				mu.Unlock()
			}
		})
	}
	for _, m := range accepted {
		work <- m
	}
	close(work)
	wg.Wait()

	// The whole log: each shard dense, each event once, one run per message.
	l := newLogView(nil)
	if err := l.read(ctx, r.store); err != nil {
		return nil, err
	}
	var doubled []string
	rep.LogEvents, rep.LogGaps, rep.LogByShard, doubled = l.audit()
	rep.Doubled += len(doubled)
	rep.Notes = append(rep.Notes, doubled...)
	ids := map[string]bool{}
	runsOf := map[string]map[string]bool{} // message id → run ids created for it
	for _, sv := range l.shards {
		for _, ev := range sv.byCursor {
			ids[ev.ID] = true
			if ev.Type != "run.created" {
				continue
			}
			var d struct {
				RunID     string `json:"run_id"`
				MessageID string `json:"message_id"`
			}
			_ = json.Unmarshal(ev.Data, &d)
			if runsOf[d.MessageID] == nil {
				runsOf[d.MessageID] = map[string]bool{}
			}
			runsOf[d.MessageID][d.RunID] = true
		}
	}
	for msg, runs := range runsOf {
		if len(runs) > 1 {
			rep.Doubled++
			rep.Notes = append(rep.Notes, fmt.Sprintf("message %s has %d runs in the log", msg, len(runs)))
		}
	}

	// Deliveries: every event after the subscriptions to each matching one.
	for _, s := range subs {
		s.recv.mu.Lock()
		l.owedEvents(start, func(sh int, c int64, ev store.Event) {
			if !s.owes(ev) {
				return
			}
			rep.Expected++
			if _, ok := s.recv.byID[ev.ID]; !ok {
				rep.Missing++
				if rep.Missing <= 5 {
					rep.Notes = append(rep.Notes, fmt.Sprintf("missing: %s to %s (shard %d cursor %d)", ev.Type, s.name, sh, c))
				}
			}
		})
		for id, rc := range s.recv.byID {
			rep.DupBefore += rc.ok - 1
			if !ids[id] {
				rep.DupAfter++
				rep.Notes = append(rep.Notes, "received an event the log does not hold: "+id)
			}
		}
		if s.recv.last.After(rep.lastDelivery) {
			rep.lastDelivery = s.recv.last
		}
		s.recv.mu.Unlock()
	}

	// Queues: the work queues empty, the dead-letter queues empty or shown.
	for _, q := range []string{"InboundQueue", "DeliveryQueue", "InboundDLQ", "DeliveryDLQ", "FanoutDLQ"} {
		c, err := queueCounts(ctx, r.sqs, r.stack.Queues[q].URL)
		if err != nil {
			return nil, fmt.Errorf("count %s: %w", q, err)
		}
		if strings.HasSuffix(q, "DLQ") {
			rep.DLQ[q] = c.total()
			if c.total() > 0 {
				rep.DLQSample = append(rep.DLQSample, r.peek(ctx, q)...)
			}
		} else if c.total() > 0 {
			rep.QueuesLeft[q] = c.total()
			rep.Stuck += c.total()
		}
	}
	return rep, nil
}

// peek shows a few messages of a dead-letter queue (they stay there).
func (r *run) peek(ctx context.Context, q string) []string {
	out, err := r.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(r.stack.Queues[q].URL), MaxNumberOfMessages: 3, VisibilityTimeout: 0})
	if err != nil {
		return []string{q + ": " + err.Error()}
	}
	var s []string
	for _, m := range out.Messages {
		b := aws.ToString(m.Body)
		if len(b) > 300 {
			b = b[:300] + "…"
		}
		s = append(s, q+": "+b)
	}
	return s
}

// judge lists the failures: anything lost, doubled, stuck, missing or unexplained.
func (rep *Report) judge() {
	fail := func(cond bool, format string, args ...any) {
		if cond {
			rep.Failures = append(rep.Failures, fmt.Sprintf(format, args...))
		}
	}
	fail(!rep.Quiet, "the system was not quiet within the convergence limit")
	fail(rep.Lost > 0, "%d accepted messages lost", rep.Lost)
	fail(rep.Doubled > 0, "%d doubled", rep.Doubled)
	fail(rep.Stuck > 0, "%d stuck", rep.Stuck)
	fail(rep.Missing > 0, "%d deliveries missing", rep.Missing)
	fail(rep.DupAfter > 0, "%d deliveries of events not in the log", rep.DupAfter)
	fail(rep.Unfaithful > 0, "%d runs with another text than sent", rep.Unfaithful)
	fail(rep.FailedRuns > 0, "%d runs failed", rep.FailedRuns)
	n := 0
	for _, v := range rep.Unexpected {
		n += v
	}
	fail(n > 0, "%d messages not answered as they deserved: %v", n, rep.Unexpected)
	d := 0
	for _, v := range rep.DLQ {
		d += v
	}
	fail(d > 0, "%d messages in dead-letter queues: %v", d, rep.DLQSample)
	u := 0
	for _, s := range rep.Stalls {
		if s.Explained == "" {
			u++
		}
	}
	fail(u > 0, "%d unexplained stalls", u)
}

// Table is the report as one Markdown table, then the faults injected, stalls and failures.
func (rep *Report) Table() string {
	var b strings.Builder
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, v) }
	fmt.Fprintf(&b, "| chaos: %d messages, %d connections, faults %s | |\n|---|---|\n", rep.Messages, rep.Connections, rep.Faults)
	row("accepted (202)", fmt.Sprint(rep.Accepted))
	row("odd bytes kept faithfully / refused with 400", fmt.Sprintf("%d / %d", rep.OddKept, rep.OddRefused))
	row("lost", fmt.Sprint(rep.Lost))
	row("doubled", fmt.Sprint(rep.Doubled))
	row("stuck (runs not final, messages left in work queues)", fmt.Sprint(rep.Stuck))
	row("runs failed / unfaithful", fmt.Sprintf("%d / %d", rep.FailedRuns, rep.Unfaithful))
	byShard := ""
	if len(rep.LogByShard) > 1 {
		byShard = fmt.Sprintf(" (by shard, events/gaps: %v)", rep.LogByShard)
	}
	row("log events / cursors given up (gaps)", fmt.Sprintf("%d / %d%s", rep.LogEvents, rep.LogGaps, byShard))
	row("deliveries owed / missing", fmt.Sprintf("%d / %d", rep.Expected, rep.Missing))
	row("duplicates before / after dedup by webhook-id", fmt.Sprintf("%d / %d", rep.DupBefore, rep.DupAfter))
	row("dead-letter queues", mapString(rep.DLQ))
	row("5xx and retried answers by code", mapString(rep.FiveXX))
	tput := 0.0
	if rep.LoadTime > 0 {
		tput = float64(rep.Accepted) / rep.LoadTime.Seconds()
	}
	row("load time / throughput", fmt.Sprintf("%s / %.0f accepted/s", rep.LoadTime.Round(100*time.Millisecond), tput))
	if rep.FaultsAfter > time.Second {
		row("faults still firing after the last answer", rep.FaultsAfter.Round(100*time.Millisecond).String())
	}
	row("accept latency p50 / p99 (first try to 202)", fmt.Sprintf("%s / %s", rep.P50.Round(time.Millisecond), rep.P99.Round(time.Millisecond)))
	conv := rep.Converge.Round(100 * time.Millisecond).String()
	if !rep.Quiet {
		conv += " (not quiet)"
	}
	row("time to converge (end of load and faults to last delivery)", conv)
	row("stalls (in flight, no invocation, past the function timeout)", fmt.Sprint(len(rep.Stalls)))
	if len(rep.Unexpected) > 0 {
		row("unexpected answers", mapString(rep.Unexpected))
	}
	if rep.Receiver != "" {
		fmt.Fprintf(&b, "\npeers: %s\n", rep.Receiver)
	}
	if len(rep.Injected) > 0 {
		fmt.Fprintf(&b, "injected:\n")
		for _, f := range rep.Injected {
			fmt.Fprintf(&b, "  - %s\n", f)
		}
	}
	for _, s := range rep.Stalls {
		fmt.Fprintf(&b, "stall: %s\n", s)
	}
	notes := rep.Notes
	if len(notes) > 20 {
		notes = append(slices.Clone(notes[:20]), fmt.Sprintf("… %d more", len(rep.Notes)-20))
	}
	for _, n := range notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if rep.Failed() {
		fmt.Fprintf(&b, "FAIL: %s\n", strings.Join(rep.Failures, "; "))
	} else {
		fmt.Fprintf(&b, "PASS: nothing lost, doubled or stuck\n")
	}
	return b.String()
}

func mapString(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
