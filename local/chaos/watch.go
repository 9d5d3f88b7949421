package chaos

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/hookgate/hookgate/local/template"
)

// invocations counts what each function is doing, from the stack's invocation hooks.
type invocations struct {
	mu       sync.Mutex
	inFlight map[string]int
	last     map[string]time.Time // the latest start or end of an invocation
	lastBad  map[string]time.Time // the latest failed invocation or kill ("*": DynamoDB Local)
}

func newInvocations() *invocations {
	return &invocations{inFlight: map[string]int{}, last: map[string]time.Time{}, lastBad: map[string]time.Time{}}
}

func (v *invocations) start(fn string) {
	v.mu.Lock()
	v.inFlight[fn]++
	v.last[fn] = time.Now()
	v.mu.Unlock()
}

func (v *invocations) end(fn string, err error) {
	v.mu.Lock()
	v.inFlight[fn]--
	v.last[fn] = time.Now()
	if err != nil {
		v.lastBad[fn] = time.Now()
	}
	v.mu.Unlock()
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

// idle returns since when fn has had no invocation running (zero time: one runs now), and the
// latest failure or kill that may explain messages waiting out their visibility timeout.
func (v *invocations) idle(fn string) (since, bad time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	bad = v.lastBad[fn]
	if b := v.lastBad["*"]; b.After(bad) {
		bad = b
	}
	if v.inFlight[fn] > 0 {
		return time.Time{}, bad
	}
	return v.last[fn], bad
}

// Stall is a time messages of a queue were in flight while their consumer ran nothing for longer
// than its function timeout (Config.StallAfter): received but handed to no invocation.
type Stall struct {
	Queue     string
	Messages  int
	Began     time.Time // when the consumer's last invocation ended
	Lasted    time.Duration
	Explained string // a kill or failed invocation of the consumer within the visibility timeout before; "" when none
}

func (s Stall) String() string {
	why := "unexplained: no kill or failed invocation before it"
	if s.Explained != "" {
		why = s.Explained
	}
	return fmt.Sprintf("%s: %d messages in flight for %s with no invocation (%s)", s.Queue, s.Messages, s.Lasted.Round(time.Second), why)
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
	idleSince, bad := w.r.inv.idle(q.fn)
	stalled := counts.notVisible > 0 && counts.visible == 0 && !idleSince.IsZero() && now.Sub(idleSince) > q.after
	switch {
	case stalled && q.open == nil:
		s := &Stall{Queue: q.name, Messages: counts.notVisible, Began: idleSince}
		if !bad.IsZero() && idleSince.Sub(bad) < q.visibility {
			s.Explained = "after a kill or a failed invocation " + idleSince.Sub(bad).Round(time.Second).String() + " before: the batch waits out its visibility timeout"
		}
		q.open = s
		w.r.logf("stall: %s", s.Queue+": "+strconv.Itoa(s.Messages)+" messages in flight, no invocation of "+q.fn+" for "+now.Sub(idleSince).Round(time.Second).String())
	case stalled:
		q.open.Messages = max(q.open.Messages, counts.notVisible)
	case q.open != nil:
		w.close(q, now)
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
