package delivery

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/trace"
)

// A FIFO subscription's deliveries wait in the FIFO delivery queue, one message group per
// subscription, in the order the fan-out read their events. SQS hands a group's messages out one at
// a time and holds the rest of the group while one is in flight. So the handler never sends such a
// message again: a wait (a retry's, or the limits' or the circuit's deferral) keeps the message in
// flight with its visibility timeout set to the wait, and the whole group waits with it. The
// message only points at its delivery; each time it arrives, the delivery's state in the table says
// which attempt is due and when. The message is deleted when the delivery has ended (succeeded,
// exhausted, or dropped), and the group's next delivery goes.

// Visibility postpones the redelivery of received messages of the FIFO delivery queue.
type Visibility interface {
	Postpone(ctx context.Context, receiptHandles []string, d time.Duration) error
}

// WithOrdered makes the handler take messages of the FIFO delivery queue, whose waits it makes
// with v.
func (h *Handler) WithOrdered(v Visibility) *Handler {
	h.visibility = v
	return h
}

// ErrorHold is how long a FIFO delivery whose bookkeeping failed holds its group before it is
// tried again.
const ErrorHold = 10 * time.Second

// maxHold is the longest wait one receive of a FIFO message makes: SQS refuses a visibility that
// ends over 12 h after the receive, and the batch (at most Lambda's 15 minutes) has used some.
// A longer wait returns early and waits the rest (processOrdered).
const maxHold = queue.MaxVisibility - 15*time.Minute

// ordered reports whether rec came from a FIFO queue.
func ordered(rec events.SQSMessage) bool { return rec.Attributes["MessageGroupId"] != "" }

// handleOrdered handles the batch's messages of the FIFO delivery queue: the groups in parallel,
// each group's messages in order. The first message that must wait (or failed) is handed back with
// the rest of its group, all visible again after the wait, so the group keeps its order. So is a
// later message that the invocation has less than an attempt's lease left for, visible again at once.
func (h *Handler) handleOrdered(ctx context.Context, recs []events.SQSMessage, subs *subCache, fail func(events.SQSMessage)) {
	var wg sync.WaitGroup
	for _, group := range queue.ByGroup(recs) {
		wg.Add(1)
		go func(recs []events.SQSMessage) {
			defer wg.Done()
			for i, rec := range recs {
				if deadline, ok := ctx.Deadline(); ok && i > 0 && deadline.Sub(h.now()) < h.cfg.Lease {
					h.log.InfoContext(ctx, "too little time left for another ordered delivery; handing the rest of its group back", "sqs_message_id", rec.MessageId, "handed_back", len(recs)-i)
					h.handBack(ctx, recs[i:], 0, fail)
					return
				}
				hold, err := h.processOrdered(ctx, rec, subs)
				if err != nil {
					h.log.ErrorContext(ctx, "ordered delivery message failed; its group waits and SQS redelivers it", "sqs_message_id", rec.MessageId, "err", err)
					hold = ErrorHold
				}
				if hold > 0 {
					h.handBack(ctx, recs[i:], hold, fail)
					return
				}
			}
		}(group)
	}
	wg.Wait()
}

// handBack reports recs as failed and makes them visible again after hold, rounded up to SQS's
// whole seconds (so none returns before its time) and capped at maxHold.
func (h *Handler) handBack(ctx context.Context, recs []events.SQSMessage, hold time.Duration, fail func(events.SQSMessage)) {
	handles := make([]string, 0, len(recs))
	for _, r := range recs {
		fail(r)
		handles = append(handles, r.ReceiptHandle)
	}
	hold = min((hold + time.Second - 1).Truncate(time.Second), maxHold)
	if h.visibility == nil {
		h.log.ErrorContext(ctx, "a FIFO delivery message, but no FIFO delivery queue is configured; it returns after the queue's visibility timeout")
	} else if err := h.visibility.Postpone(ctx, handles, hold); err != nil {
		h.log.WarnContext(ctx, "could not postpone an ordered delivery; its group returns after the queue's visibility timeout", "err", err)
	}
}

// processOrdered moves the delivery of FIFO message rec on by one step: it returns how long the
// message must wait before the next (0: the delivery has ended, delete the message).
func (h *Handler) processOrdered(ctx context.Context, rec events.SQSMessage, subs *subCache) (time.Duration, error) {
	m, created, err := decode(rec.Body)
	if err != nil {
		return 0, err
	}
	if created != nil {
		// The fan-out writes an ordered delivery's item before it queues it: each receive of its
		// message reads the attempt due from it.
		return 0, fmt.Errorf("delivery message %s refused: an ordered delivery's message cannot carry it", m.DeliveryID)
	}
	p, ok := trace.Parse(m.Trace)
	if !ok {
		p = trace.New()
	}
	m.Trace, ctx = p.String(), trace.NewContext(ctx, p)
	// The message is never sent again, so it never waits in a chain of its own: its waits are made
	// here, and the limits reserve no rate slot past the moment (see admit).
	m.Requeues = h.cfg.MaxRequeues
	for range 2 { // the message's attempt, then the delivery's current one
		d, claimed, err := h.store.ClaimAttempt(ctx, m.WorkspaceID, m.DeliveryID, m.Attempt, h.cfg.Lease)
		switch {
		case err != nil && apierr.CodeOf(err) == apierr.NotFound:
			h.log.WarnContext(ctx, "delivery no longer exists; message dropped", "delivery_id", m.DeliveryID)
			return 0, nil
		case err != nil:
			return 0, err
		case claimed:
			return h.attempt(ctx, m, d, subs, true)
		case d.Status != store.DeliveryPending:
			return 0, nil // ended: the group's next delivery goes
		case d.Attempts == m.Attempt:
			// Another receive holds the attempt: SQS handed the message out again while that
			// one ran, or this is the message back after its own try failed past its claim.
			// Wait out what is left of that lease: the holder ends it by recording the
			// attempt, or it runs out and the next look claims.
			return leaseLeft(d, h.now(), h.cfg.Lease), nil
		}
		// A later attempt is due: the message arrived again after a wait (its body still names the
		// first), or the delivery was retried by hand.
		m.Attempt = d.Attempts
		if d.NextAttemptAt != nil {
			if wait := d.NextAttemptAt.Sub(h.now()); wait > spinWait {
				return wait, nil
			}
			m.NotBefore = *d.NextAttemptAt
		}
	}
	return ErrorHold, fmt.Errorf("delivery %s moved on while its message claimed it", m.DeliveryID)
}

// leaseLeft is how long the claim on d's attempt still runs: at least a second (the claim was
// refused, so it had not quite run out), at most a lease (the whole lease when d names no end).
func leaseLeft(d store.Delivery, now time.Time, lease time.Duration) time.Duration {
	if d.LeaseUntil.IsZero() {
		return lease
	}
	return min(max(d.LeaseUntil.Sub(now), time.Second), lease)
}
