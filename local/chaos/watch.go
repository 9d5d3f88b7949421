package chaos

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/hookgate/hookgate/local/template"
)

// invocations counts what each function is doing, from the stack's invocation hook: the
// invocations and queue messages in flight, and the latest failure (an error, a batch item
// failure, a kill) that leaves messages waiting out their visibility timeout.
type invocations struct {
	mu       sync.Mutex
	inFlight map[string]int
	msgs     map[string]int       // SQS messages inside running invocations
	last     map[string]time.Time // the latest start or end of an invocation
	lastBad  map[string]time.Time // "*": DynamoDB Local was killed
	took     map[string][]time.Duration
	records  map[string]int
}

func newInvocations() *invocations {
	return &invocations{inFlight: map[string]int{}, msgs: map[string]int{}, last: map[string]time.Time{}, lastBad: map[string]time.Time{},
		took: map[string][]time.Duration{}, records: map[string]int{}}
}

func (v *invocations) call(fn string, payload []byte) func([]byte, error) {
	n := bytes.Count(payload, []byte(`"receiptHandle"`))
	v.mu.Lock()
	v.inFlight[fn]++
	v.msgs[fn] += n
	v.last[fn] = time.Now()
	v.records[fn] += n
	v.mu.Unlock()
	began := time.Now()
	return func(out []byte, err error) {
		v.mu.Lock()
		v.took[fn] = append(v.took[fn], time.Since(began))
		v.inFlight[fn]--
		v.msgs[fn] -= n
		v.last[fn] = time.Now()
		if err != nil || bytes.Contains(out, []byte(`"itemIdentifier"`)) {
			v.lastBad[fn] = time.Now()
		}
		v.mu.Unlock()
	}
}

func (v *invocations) killed(fn string) {
	v.mu.Lock()
	v.lastBad[fn] = time.Now()
	v.mu.Unlock()
}

func (v *invocations) running(fn string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.inFlight[fn]
}

// held returns how many of fn's queue messages running invocations hold, and the latest failure
// that may explain others waiting out their visibility timeout.
func (v *invocations) held(fn string) (msgs int, bad time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	bad = v.lastBad[fn]
	if b := v.lastBad["*"]; b.After(bad) {
		bad = b
	}
	return v.msgs[fn], bad
}

// Stall is a time messages of a queue were in flight (received) while no invocation of their
// consumer held them, for longer than its function timeout (Config.StallAfter): received and
// handed to nobody.
type Stall struct {
	Queue     string
	Messages  int
	Began     time.Time // when the unheld messages were first seen
	Lasted    time.Duration
	Explained string // a kill or failed invocation of the consumer within the visibility timeout before; "" when none
}

func (s Stall) String() string {
	why := "unexplained: no kill or failed invocation before it"
	if s.Explained != "" {
		why = s.Explained
	}
	return fmt.Sprintf("%s: %d messages in flight for %s, held by no invocation (%s)", s.Queue, s.Messages, s.Lasted.Round(time.Second), why)
}

// watch samples the work queues each second and records stalls.
type watch struct {
	r      *run
	queues []watched

	mu   sync.Mutex
	done []Stall
}

type watched struct {
	name, url, fn string
	after         time.Duration // stall threshold
	visibility    time.Duration
	since         time.Time // since when messages in flight were held by no invocation
	open          *Stall
}

func newWatch(r *run, tpl *template.Template, stallAfter time.Duration) *watch {
	w := &watch{r: r}
	timeouts := map[string]time.Duration{}
	for _, fn := range tpl.Functions() {
		timeouts[fn.LogicalID] = time.Duration(fn.Timeout) * time.Second
	}
	vis := map[string]time.Duration{"InboundQueue": 540 * time.Second, "DeliveryQueue": 360 * time.Second}
	for q, fn := range map[string]string{"InboundQueue": "WorkerFunction", "DeliveryQueue": "DeliveryFunction"} {
		after := stallAfter
		if after <= 0 {
			after = timeouts[fn]
		}
		v := vis[q]
		if r.c.Visibility > 0 {
			v = r.c.Visibility
		}
		w.queues = append(w.queues, watched{name: q, url: r.stack.Queues[q].URL, fn: fn, after: after, visibility: v})
	}
	return w
}

func (w *watch) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			w.closeAll()
			return
		case <-t.C:
		}
		for i := range w.queues {
			w.sample(ctx, &w.queues[i])
		}
	}
}

func (w *watch) sample(ctx context.Context, q *watched) {
	counts, err := queueCounts(ctx, w.r.sqs, q.url)
	if err != nil {
		return // paused or restarting: sample again next second
	}
	now := time.Now()
	held, bad := w.r.inv.held(q.fn)
	unheld := counts.notVisible - held
	switch {
	case unheld <= 0:
		q.since = time.Time{}
		if q.open != nil {
			w.close(q, now)
		}
	case q.since.IsZero():
		q.since = now
	case q.open == nil && now.Sub(q.since) > q.after:
		s := &Stall{Queue: q.name, Messages: unheld, Began: q.since}
		// A kill or failure within one visibility timeout explains it: the batch it left in
		// flight waits that long. (The unheld count may have been above zero since before.)
		if d := now.Sub(bad); !bad.IsZero() && d < q.visibility {
			s.Explained = "a kill or a failed invocation of " + q.fn + " " + d.Round(time.Second).String() + " before it was seen: its batch waits out the visibility timeout"
		}
		q.open = s
		w.r.logf("stall: %s: %d messages in flight, held by no invocation of %s for %s", q.name, unheld, q.fn, now.Sub(q.since).Round(time.Second))
	case q.open != nil:
		q.open.Messages = max(q.open.Messages, unheld)
	}
}

func (w *watch) close(q *watched, now time.Time) {
	q.open.Lasted = now.Sub(q.open.Began)
	w.mu.Lock()
	w.done = append(w.done, *q.open)
	w.mu.Unlock()
	q.open = nil
}

func (w *watch) closeAll() {
	for i := range w.queues {
		if w.queues[i].open != nil {
			w.close(&w.queues[i], time.Now())
		}
	}
}

func (w *watch) stalls() []Stall {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Stall(nil), w.done...)
}

type counts struct{ visible, notVisible, delayed int }

func (c counts) total() int { return c.visible + c.notVisible + c.delayed }

func queueCounts(ctx context.Context, q *sqs.Client, url string) (counts, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{
		types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
	}})
	if err != nil {
		return counts{}, err
	}
	n := func(k types.QueueAttributeName) int { v, _ := strconv.Atoi(out.Attributes[string(k)]); return v }
	return counts{
		visible:    n(types.QueueAttributeNameApproximateNumberOfMessages),
		notVisible: n(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible),
		delayed:    n(types.QueueAttributeNameApproximateNumberOfMessagesDelayed),
	}, nil
}

// summary says, for the functions that read a queue, how many invocations ran, how many messages
// they got and how long they took.
func (v *invocations) summary() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var parts []string
	for _, fn := range []string{"WorkerFunction", "FanoutFunction", "DeliveryFunction"} {
		d := slices.Clone(v.took[fn])
		slices.Sort(d)
		if len(d) == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d invocations, %d queue messages, p50 %s p99 %s", fn, len(d), v.records[fn],
			percentile(d, 0.5).Round(time.Millisecond), percentile(d, 0.99).Round(time.Millisecond)))
	}
	return strings.Join(parts, "; ")
}
