// Package fanout is FanoutFunction's handler: from the table's stream, each appended event becomes one
// delivery per matching subscription, and replies go to where the user is (replyUrl, Telegram).
package fanout

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/adapter"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
)

// Store is the part of the store the fan-out uses.
type Store interface {
	ListActiveSubscriptions(ctx context.Context, ws string) ([]store.Subscription, error)
	CreateDelivery(ctx context.Context, d store.Delivery) (store.Delivery, bool, error)
	GetRun(ctx context.Context, ws, id string) (store.Run, error)
}

// Queue takes first attempts of new deliveries.
type Queue interface {
	SendDeliveries(ctx context.Context, ms []queue.Delivery) error
}

// Matcher reports whether a subscription's event filter selects an event type.
type Matcher func(patterns []string, eventType string) bool

// Handler handles batches of the table's stream.
type Handler struct {
	store Store
	queue Queue
	match Matcher
	log   *slog.Logger
}

// New returns a Handler.
func New(st Store, q Queue, match Matcher, log *slog.Logger) *Handler {
	return &Handler{store: st, queue: q, match: match, log: log}
}

// Envelope is the JSON body every subscriber receives.
type Envelope struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	CreatedAt   string          `json:"created_at"`
	WorkspaceID string          `json:"workspace_id"`
	Data        json.RawMessage `json:"data"`
}

// Event types the fan-out looks into.
const (
	EventDeliveryExhausted = "delivery.exhausted" // recorded when a delivery used up its schedule
	EventMessageSent       = "message.sent"       // an agent's reply
)

// ChannelTelegram is the channel of Telegram threads; their external id is the chat id.
const ChannelTelegram = "telegram"

// Handle fans out the batch's event inserts in order. At the first record that fails it stops and
// reports that record, so the stream retries from there (records already done are idempotent).
func (h *Handler) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	subs := map[string][]store.Subscription{} // per workspace, for this batch
	for _, rec := range ev.Records {
		if err := h.record(ctx, rec, subs); err != nil {
			h.log.ErrorContext(ctx, "fan-out failed; the stream will retry from this record",
				"sequence_number", rec.Change.SequenceNumber, "err", err)
			return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{
				{ItemIdentifier: rec.Change.SequenceNumber},
			}}, nil
		}
	}
	return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{}}, nil
}

func (h *Handler) record(ctx context.Context, rec events.DynamoDBEventRecord, cache map[string][]store.Subscription) error {
	img := rec.Change.NewImage
	if rec.EventName != "INSERT" || img["kind"].DataType() != events.DataTypeString || img["kind"].String() != store.KindEvent {
		return nil // not an event-log insert (the template's stream filter normally drops these)
	}
	env, err := envelope(img)
	if err != nil {
		h.log.ErrorContext(ctx, "unreadable event item; skipped", "err", err)
		return nil
	}
	var about struct {
		SubscriptionID string `json:"subscription_id"`
		EventType      string `json:"event_type"`
	}
	if env.Type == EventDeliveryExhausted {
		_ = json.Unmarshal(env.Data, &about)
		if about.EventType == EventDeliveryExhausted {
			return nil // never report a failed report: two failing endpoints would feed each other
		}
	}
	subs, ok := cache[env.WorkspaceID]
	if !ok {
		if subs, err = h.store.ListActiveSubscriptions(ctx, env.WorkspaceID); err != nil {
			return err
		}
		cache[env.WorkspaceID] = subs
	}
	payload, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("encode envelope %s: %w", env.ID, err)
	}
	var want []store.Delivery
	for _, sub := range subs {
		if !h.match(sub.Events, env.Type) || sub.ID == about.SubscriptionID {
			continue
		}
		want = append(want, store.Delivery{
			ID:          ids.Derive("dlv", env.WorkspaceID, env.ID, sub.ID),
			WorkspaceID: env.WorkspaceID, SubscriptionID: sub.ID, EventID: env.ID, EventType: env.Type, Payload: payload,
		})
	}
	reply, err := h.reply(ctx, env)
	if err != nil {
		return err
	}
	if reply != nil {
		want = append(want, *reply)
	}
	var send []queue.Delivery
	for _, w := range want {
		d, _, err := h.store.CreateDelivery(ctx, w)
		if err != nil {
			return err
		}
		// A delivery that exists and is still at its first attempt may never have been queued
		// (a crash after the write): queue it again. Duplicates lose the attempt claim.
		if d.Status == store.DeliveryPending && d.Attempts == 0 && d.Series == 0 {
			send = append(send, queue.Delivery{WorkspaceID: env.WorkspaceID, DeliveryID: d.ID})
		}
	}
	if len(send) == 0 {
		return nil
	}
	return h.queue.SendDeliveries(ctx, send)
}

// Event types that end a run's turn: a run started with a replyUrl is POSTed there after each.
var callbackTypes = map[string]bool{
	"run.completed": true, "run.failed": true, "run.cancelled": true, "run.denied": true, "run.requires_approval": true,
}

// reply returns the delivery that takes an event to where the user is, if it calls for one: a
// finished adapter run to its replyUrl, an agent's reply to the Telegram door's message to the chat.
func (h *Handler) reply(ctx context.Context, env Envelope) (*store.Delivery, error) {
	var data struct {
		RunID      string `json:"run_id"`
		Callback   bool   `json:"callback"`
		Channel    string `json:"channel"`
		ExternalID string `json:"external_id"`
		Text       string `json:"text"`
		// TelegramSource is set by the worker only on replies to the Telegram door's messages.
		TelegramSource string `json:"telegram_source"`
	}
	switch {
	case callbackTypes[env.Type]:
		if json.Unmarshal(env.Data, &data) != nil || !data.Callback || data.RunID == "" {
			return nil, nil
		}
		run, err := h.store.GetRun(ctx, env.WorkspaceID, data.RunID)
		if err != nil || run.ReplyURL == "" {
			return nil, err
		}
		view, err := json.Marshal(adapter.View(run))
		if err != nil {
			return nil, fmt.Errorf("encode run %s: %w", run.ID, err)
		}
		body, err := json.Marshal(Envelope{ID: env.ID, Type: env.Type, CreatedAt: env.CreatedAt, WorkspaceID: env.WorkspaceID, Data: view})
		if err != nil {
			return nil, fmt.Errorf("encode callback of %s: %w", env.ID, err)
		}
		return &store.Delivery{
			ID: ids.Derive("dlv", env.WorkspaceID, env.ID, store.TargetCallback), WorkspaceID: env.WorkspaceID,
			Target: store.TargetCallback, Destination: run.ReplyURL, Adapter: run.Adapter,
			EventID: env.ID, EventType: env.Type, Payload: body,
		}, nil
	case env.Type == EventMessageSent:
		// Only a reply on a thread the Telegram door created goes to Telegram (a channel named
		// telegram by another door does not), through the bot of the source that received it.
		if json.Unmarshal(env.Data, &data) != nil || data.TelegramSource == "" || data.Channel != ChannelTelegram || data.ExternalID == "" || data.Text == "" {
			return nil, nil
		}
		body, err := json.Marshal(map[string]string{"chat_id": data.ExternalID, "text": data.Text, "source": data.TelegramSource})
		if err != nil {
			return nil, fmt.Errorf("encode telegram reply of %s: %w", env.ID, err)
		}
		return &store.Delivery{
			ID: ids.Derive("dlv", env.WorkspaceID, env.ID, store.TargetTelegram), WorkspaceID: env.WorkspaceID,
			Target: store.TargetTelegram, Destination: data.ExternalID, EventID: env.ID, EventType: env.Type, Payload: body,
		}, nil
	}
	return nil, nil
}

// envelope rebuilds the event from its log item: pk WS#<ws>#EV, sk the cursor.
func envelope(img map[string]events.DynamoDBAttributeValue) (Envelope, error) {
	get := func(name string) string {
		if v, ok := img[name]; ok && v.DataType() == events.DataTypeString {
			return v.String()
		}
		return ""
	}
	ws, ok := strings.CutPrefix(get("pk"), "WS#")
	ws, ok2 := strings.CutSuffix(ws, "#EV")
	e := Envelope{ID: get("event_id"), Type: get("type"), CreatedAt: get("created_at"), WorkspaceID: ws, Data: json.RawMessage(get("data"))}
	if !ok || !ok2 || e.ID == "" || e.Type == "" || !json.Valid(e.Data) {
		return Envelope{}, fmt.Errorf("event item %q/%q lacks id, type, workspace or valid data", get("pk"), get("sk"))
	}
	return e, nil
}
