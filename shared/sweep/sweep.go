// Package sweep is DeliverySweepFunction's handler: once a minute it queues the delivery retries
// whose time has come on the table's retry schedule, each message the start of a new chain.
package sweep

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// Store is the part of the store the sweep uses.
type Store interface {
	DueDeliveries(ctx context.Context, now time.Time, limit int) ([]store.ScheduledDelivery, bool, error)
	Unschedule(ctx context.Context, e store.ScheduledDelivery) error
}

// Queue sends delivery messages, ten per SQS batch.
type Queue interface {
	SendDeliveries(ctx context.Context, ms []queue.Delivery) error
}

// pageSize is how many due entries of each shard one round reads.
const pageSize = 100

// reserve is the part of the invocation's time left unused, so that a round never outlives it.
const reserve = 10 * time.Second

// Handler sweeps the retry schedule.
type Handler struct {
	store Store
	queue Queue
	log   *slog.Logger
	now   func() time.Time
}

// New returns a Handler.
func New(st Store, q Queue, log *slog.Logger, now func() time.Time) *Handler {
	return &Handler{store: st, queue: q, log: log, now: now}
}

// Handle queues every due entry, then deletes it from the schedule; it repeats while entries
// remain and time is left. An entry queued but not deleted (a failure between the two) is
// queued again by the next sweep, not this one: the delivery's attempt claim makes the duplicate
// message harmless.
func (h *Handler) Handle(ctx context.Context, _ events.EventBridgeEvent) error {
	queued, stuck := 0, false
	defer func() { h.log.InfoContext(ctx, "retry schedule swept", "queued", queued) }()
	for {
		due, more, err := h.store.DueDeliveries(ctx, h.now(), pageSize)
		if err != nil && len(due) == 0 {
			return err
		}
		for start := 0; start < len(due); start += 10 {
			chunk := due[start:min(start+10, len(due))]
			ms := make([]queue.Delivery, len(chunk))
			for i, e := range chunk {
				ms[i] = queue.Delivery{WorkspaceID: e.WorkspaceID, DeliveryID: e.DeliveryID, Attempt: e.Attempt, NotBefore: e.Due, Trace: e.Trace}
			}
			if serr := h.queue.SendDeliveries(ctx, ms); serr != nil {
				return errors.Join(serr, err) // the entries stay on the schedule for the next sweep
			}
			for _, e := range chunk {
				if uerr := h.store.Unschedule(ctx, e); uerr != nil {
					stuck = true
					h.log.WarnContext(ctx, "queued retry stays on the schedule; the next sweep queues it again", "delivery_id", e.DeliveryID, "err", uerr)
				}
			}
			queued += len(chunk)
		}
		if err != nil {
			return err
		}
		if stuck { // another round would read and queue the same entries again
			return nil
		}
		if dl, ok := ctx.Deadline(); !more || ok && time.Until(dl) < reserve {
			return nil
		}
	}
}
