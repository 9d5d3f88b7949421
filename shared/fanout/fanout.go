// Package fanout is FanoutFunction's handler: from the table's stream, each appended event becomes one
// delivery per matching subscription, and replies go to where the user is (replyUrl, Telegram).
package fanout

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/adapter"
	"github.com/hookgate/hookgate/shared/eventfilter"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/trace"
)

// Store is the part of the store the fan-out uses.
type Store interface {
	ListActiveSubscriptions(ctx context.Context, ws string) ([]store.Subscription, error)
	CreateDelivery(ctx context.Context, d store.Delivery) (store.Delivery, bool, error)
	GetRun(ctx context.Context, ws, id string) (store.Run, error)
}

// Queue takes first attempts of new deliveries: a FIFO subscription's one at a time, in order.
type Queue interface {
	SendDeliveries(ctx context.Context, ms []queue.Delivery) error
	SendOrdered(ctx context.Context, m queue.Delivery, subscriptionID string) error
}

// Matcher reports whether a subscription's event filter selects an event type.
type Matcher func(patterns []string, eventType string) bool

// Handler handles batches of the table's stream.
type Handler struct {
	store   Store
	queue   Queue
	match   Matcher
	metrics *metrics.Emitter
	now     func() time.Time
	log     *slog.Logger
	// onClaim: a new delivery that can go in its message is created by its first attempt's claim.
	onClaim bool
}

// CreateOnClaim makes the fan-out queue a new delivery to a subscription that delivers in parallel
// (not FIFO) as a message that carries it, when that message is at most queue.MaxNewDeliveryBody,
// without writing its item: the delivery function's claim of the first attempt creates the item
// (store.ClaimNewDelivery), claimed. A delivery that succeeds at once then writes 3 units (that put
// with its index copy, and its record), not 4 (the fan-out's put with its index copy, the claim,
// the record). Until its claim (normally milliseconds after its event) the delivery is its message
// and is not listed. Callbacks, Telegram replies, ordered deliveries and larger ones are written by
// the fan-out first, as without it.
func (h *Handler) CreateOnClaim() *Handler {
	h.onClaim = true
	return h
}

// WithMetrics makes the fan-out measure each queued delivery's lag behind its event's append
// (FanoutLag), flushed after each batch; now is the clock.
func (h *Handler) WithMetrics(m *metrics.Emitter, now func() time.Time) *Handler {
	h.metrics, h.now = m, now
	return h
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
	EventCircuitOpened     = "endpoint.circuit_opened"
	EventCircuitClosed     = "endpoint.circuit_closed"
)

// ChannelTelegram is the channel of Telegram threads; their external id is the chat id.
const ChannelTelegram = "telegram"

// parallel bounds the table writes and queue sends one batch makes at once.
const parallel = 16

// Handle fans out the batch's event inserts. The records are grouped into lanes by their item's
// partition key (a workspace's log shard): the lanes are planned side by side, each in record order
// (which deliveries each record needs); the deliveries of the whole batch are then created and
// queued concurrently. The first record whose planning, creation or queueing failed, of any lane, is
// reported, so the stream retries from there. A later record's deliveries, of its lane or another,
// may exist or even be queued by then: the retry finds them (creation is idempotent), queues a
// pending delivery never attempted again, and a duplicate loses the attempt claim. A delivery whose
// message carries it (CreateOnClaim) is queued again by each retry: the copy that comes second finds
// the item the first one's claim created, and loses the claim. With one lane (every record of one
// partition key), this is the order of one shard's log, as before lanes.
func (h *Handler) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	defer h.metrics.Flush()
	lanes, laneOf := groupLanes(ev.Records)
	auds := newAudiences() // per workspace, for this batch
	wants := make([][]store.Delivery, len(ev.Records))
	planFailed, planErrs := make([]int, len(lanes)), make([]error, len(lanes))
	forEach(len(lanes), func(l int) {
		for _, i := range lanes[l] {
			want, err := h.plan(ctx, ev.Records[i], auds)
			if err != nil {
				planFailed[l], planErrs[l] = i, err
				return // the lane's later records wait for the retry
			}
			wants[i] = want
		}
	})
	failed, cause := len(ev.Records), error(nil) // the first record that failed, and why
	for l, err := range planErrs {
		if err != nil && planFailed[l] < failed {
			failed, cause = planFailed[l], err
		}
	}
	type job struct {
		rec  int
		want store.Delivery
		send bool
		// carried is the message that carries the delivery, when its claim creates it.
		carried *queue.Delivery
	}
	var jobs []job
	for i, want := range wants[:failed] {
		for _, w := range want {
			jobs = append(jobs, job{rec: i, want: w})
		}
	}
	errs := make([]error, len(jobs))
	forEach(len(jobs), func(j int) {
		if m, ok := h.carry(jobs[j].want, eventTrace(ev.Records[jobs[j].rec])); ok {
			jobs[j].carried, jobs[j].send = &m, true
			return
		}
		d, _, err := h.store.CreateDelivery(ctx, jobs[j].want)
		// A delivery that exists and is still at its first attempt may never have been queued
		// (a crash after the write): queue it again. Duplicates lose the attempt claim.
		jobs[j].send = err == nil && d.Status == store.DeliveryPending && d.Attempts == 0 && d.Series == 0
		errs[j] = err
	})
	for j, err := range errs {
		if err != nil && jobs[j].rec < failed {
			failed, cause = jobs[j].rec, err
		}
	}
	// Queue, in record order, what the records before the first failure need, ten to a request.
	// A FIFO subscription's deliveries go one by one, in record order, per lane: each (subscription,
	// lane) chain beside the others and the batches. A send that failed stops its chain, so none of
	// its lane passes it, and the stream's retry sends it again in place (SQS deduplicates those sent
	// already, of that lane and the others).
	type chain struct {
		sub  string
		lane int
	}
	var chunks, ordered [][]job
	orderedOf := map[chain]int{} // a chain's index in ordered
	for _, jb := range jobs {
		if jb.rec >= failed || !jb.send {
			continue
		}
		if jb.want.FIFO {
			k := chain{jb.want.SubscriptionID, laneOf[jb.rec]}
			i, ok := orderedOf[k]
			if !ok {
				i, orderedOf[k] = len(ordered), len(ordered)
				ordered = append(ordered, nil)
			}
			ordered[i] = append(ordered[i], jb)
			continue
		}
		if n := len(chunks); n == 0 || len(chunks[n-1]) == 10 {
			chunks = append(chunks, nil)
		}
		chunks[len(chunks)-1] = append(chunks[len(chunks)-1], jb)
	}
	message := func(jb job) queue.Delivery {
		if jb.carried != nil {
			return *jb.carried
		}
		return queue.Delivery{WorkspaceID: jb.want.WorkspaceID, DeliveryID: jb.want.ID, Trace: eventTrace(ev.Records[jb.rec])}
	}
	// The first failed send of each chunk and each FIFO chain, by its record.
	sendFailed := make([]int, len(chunks)+len(ordered))
	sendErrs := make([]error, len(chunks)+len(ordered))
	forEach(len(chunks)+len(ordered), func(c int) {
		if c >= len(chunks) {
			for _, jb := range ordered[c-len(chunks)] {
				if err := h.queue.SendOrdered(ctx, message(jb), jb.want.SubscriptionID); err != nil {
					sendFailed[c], sendErrs[c] = jb.rec, err
					return
				}
				h.lag(ev.Records[jb.rec], jb.want)
			}
			return
		}
		ms := make([]queue.Delivery, len(chunks[c]))
		for i, jb := range chunks[c] {
			ms[i] = message(jb)
		}
		sendFailed[c], sendErrs[c] = chunks[c][0].rec, h.queue.SendDeliveries(ctx, ms)
		if sendErrs[c] == nil {
			for _, jb := range chunks[c] {
				h.lag(ev.Records[jb.rec], jb.want)
			}
		}
	})
	for c, err := range sendErrs {
		if err != nil && sendFailed[c] < failed {
			failed, cause = sendFailed[c], err
		}
	}
	if failed < len(ev.Records) {
		rec := ev.Records[failed]
		h.log.ErrorContext(ctx, "fan-out failed; the stream will retry from this record",
			"sequence_number", rec.Change.SequenceNumber, "err", cause)
		return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{
			{ItemIdentifier: rec.Change.SequenceNumber},
		}}, nil
	}
	return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{}}, nil
}

// groupLanes groups records into lanes by their item's partition key (Keys.pk: a workspace's log
// shard), in order of each lane's first record. It returns each lane's record indices, in record
// order, and each record's lane. Records without a string pk share one lane.
func groupLanes(recs []events.DynamoDBEventRecord) (lanes [][]int, laneOf []int) {
	laneOf = make([]int, len(recs))
	byKey := map[string]int{}
	for i, rec := range recs {
		pk := stringAttr(rec.Change.Keys, "pk")
		l, ok := byKey[pk]
		if !ok {
			l, byKey[pk] = len(lanes), len(lanes)
			lanes = append(lanes, nil)
		}
		lanes[l] = append(lanes[l], i)
		laneOf[i] = l
	}
	return lanes, laneOf
}

// carry returns the message of new delivery d's first attempt that carries d (CreateOnClaim), and
// whether d goes that way: a subscription's delivery that is not ordered, in a message of at most
// queue.MaxNewDeliveryBody that holds its payload byte for byte.
func (h *Handler) carry(d store.Delivery, tp string) (queue.Delivery, bool) {
	switch {
	case !h.onClaim || d.Target != "" || d.FIFO || !utf8.Valid(d.Payload):
		return queue.Delivery{}, false
	case d.SubscriptionID == "" || d.SubscriptionID == store.TargetCallback || d.SubscriptionID == store.TargetTelegram:
		// Names the delivery function refuses in a message: they would derive a target's id.
		return queue.Delivery{}, false
	}
	m := queue.Delivery{WorkspaceID: d.WorkspaceID, DeliveryID: d.ID, Trace: tp, New: &queue.NewDelivery{
		SubscriptionID: d.SubscriptionID, EventID: d.EventID, EventType: d.EventType, Payload: string(d.Payload),
	}}
	body, err := m.Body()
	return m, err == nil && len(body) <= queue.MaxNewDeliveryBody
}

// lag measures how long after its event's append a delivery was queued (FanoutLag).
func (h *Handler) lag(rec events.DynamoDBEventRecord, d store.Delivery) {
	if h.now == nil {
		return
	}
	if at, err := time.Parse(time.RFC3339Nano, stringAttr(rec.Change.NewImage, "created_at")); err == nil {
		h.metrics.Millis(metrics.FanoutLag, h.now().Sub(at), "Target", metrics.Target(d.Target))
	}
}

// forEach calls fn(0) … fn(n-1), at most parallel at once, and returns when all have returned.
func forEach(n int, fn func(int)) {
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(i)
		}()
	}
	wg.Wait()
}

// plan returns the deliveries one stream record calls for: one per matching subscription, and the
// reply to where the user is.
func (h *Handler) plan(ctx context.Context, rec events.DynamoDBEventRecord, auds *audiences) ([]store.Delivery, error) {
	img := rec.Change.NewImage
	if rec.EventName != "INSERT" || img["kind"].DataType() != events.DataTypeString || img["kind"].String() != store.KindEvent {
		return nil, nil // not an event-log insert (the template's stream filter normally drops these)
	}
	env, err := envelope(img)
	if err != nil {
		h.log.ErrorContext(ctx, "unreadable event item; skipped", "err", err)
		return nil, nil
	}
	var about struct {
		SubscriptionID string `json:"subscription_id"`
		EventType      string `json:"event_type"`
	}
	switch env.Type {
	case EventDeliveryExhausted:
		_ = json.Unmarshal(env.Data, &about)
		if about.EventType == EventDeliveryExhausted {
			return nil, nil // never report a failed report: two failing endpoints would feed each other
		}
	case EventCircuitOpened, EventCircuitClosed:
		_ = json.Unmarshal(env.Data, &about) // not to the endpoint whose circuit it is
	}
	aud, err := auds.get(env.WorkspaceID, func() (*audience, error) { return h.audience(ctx, env.WorkspaceID) })
	if err != nil {
		return nil, err
	}
	payload, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode envelope %s: %w", env.ID, err)
	}
	var want []store.Delivery
	var event eventfilter.Event // what the filters read of the envelope, once, when one needs it
	for _, s := range aud.subs {
		sub := s.sub
		if !h.match(sub.Events, env.Type) || sub.ID == about.SubscriptionID {
			continue
		}
		if s.filter != nil {
			if event == nil {
				if event, err = aud.extract.Extract(payload); err != nil {
					// Unreadable for the filters (a number encoding/json cannot hold): no retry
					// can change that, so the filtered subscriptions get nothing of it.
					h.log.WarnContext(ctx, "an event the payload filters cannot read; filtered subscriptions skip it", "event_id", env.ID, "err", err)
					event = unreadable{}
				}
			}
			if _, bad := event.(unreadable); bad || !s.filter.Match(event) {
				continue
			}
		}
		want = append(want, store.Delivery{
			ID:          store.DeliveryID(env.WorkspaceID, env.ID, sub.ID),
			WorkspaceID: env.WorkspaceID, SubscriptionID: sub.ID, EventID: env.ID, EventType: env.Type, Payload: payload,
			FIFO: sub.FIFO,
		})
	}
	reply, err := h.reply(ctx, env)
	if err != nil {
		return nil, err
	}
	if reply != nil {
		want = append(want, *reply)
	}
	return want, nil
}

// unreadable stands for an event the payload filters could not read.
type unreadable struct{ eventfilter.Event }

// subscriber is an active subscription with its payload filter compiled (nil: none).
type subscriber struct {
	sub    store.Subscription
	filter *eventfilter.Filter
}

// audience is a workspace's active subscriptions, and what their payload filters read of an
// event, extracted in one pass.
type audience struct {
	subs    []subscriber
	extract *eventfilter.Extractor
}

// audiences are the audiences of the workspaces of one batch, each read once, by the lane that
// needs it first; lanes that need it meanwhile wait for that read (its error too).
type audiences struct {
	mu sync.Mutex
	m  map[string]*audienceLoad
}

func newAudiences() *audiences { return &audiences{m: map[string]*audienceLoad{}} }

// audienceLoad is one workspace's audience, read once.
type audienceLoad struct {
	once sync.Once
	aud  *audience
	err  error
}

// get returns the workspace's audience, reading it with load if no lane has.
func (a *audiences) get(ws string, load func() (*audience, error)) (*audience, error) {
	a.mu.Lock()
	l, ok := a.m[ws]
	if !ok {
		l = &audienceLoad{}
		a.m[ws] = l
	}
	a.mu.Unlock()
	l.once.Do(func() { l.aud, l.err = load() })
	return l.aud, l.err
}

// audience reads the workspace's active subscriptions and compiles their payload filters. A
// stored filter that does not compile (the API validates every one) selects nothing: the
// subscription asked not to get what it would let through.
func (h *Handler) audience(ctx context.Context, ws string) (*audience, error) {
	subs, err := h.store.ListActiveSubscriptions(ctx, ws)
	if err != nil {
		return nil, err
	}
	aud := &audience{subs: make([]subscriber, 0, len(subs))}
	var filters []*eventfilter.Filter
	for _, sub := range subs {
		s := subscriber{sub: sub}
		if sub.Filter != "" {
			f, err := eventfilter.Compile([]byte(sub.Filter))
			if err != nil {
				h.log.ErrorContext(ctx, "a stored payload filter does not compile; the subscription gets nothing", "subscription_id", sub.ID, "err", err)
				continue
			}
			if !f.Empty() {
				s.filter = f
				filters = append(filters, f)
			}
		}
		aud.subs = append(aud.subs, s)
	}
	aud.extract = eventfilter.NewExtractor(filters...)
	return aud, nil
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
		// CallbackQueryID is the Telegram button press the reply answers.
		CallbackQueryID string `json:"callback_query_id"`
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
			ID: store.DeliveryID(env.WorkspaceID, env.ID, store.TargetCallback), WorkspaceID: env.WorkspaceID,
			Target: store.TargetCallback, Destination: run.ReplyURL, Adapter: run.Adapter,
			EventID: env.ID, EventType: env.Type, Payload: body,
		}, nil
	case env.Type == EventMessageSent:
		// Only a reply on a thread the Telegram door created goes to Telegram (a channel named
		// telegram by another door does not), through the bot of the source that received it.
		if json.Unmarshal(env.Data, &data) != nil || data.TelegramSource == "" || data.Channel != ChannelTelegram || data.ExternalID == "" || data.Text == "" {
			return nil, nil
		}
		payload := map[string]string{"chat_id": data.ExternalID, "text": data.Text, "source": data.TelegramSource}
		if data.CallbackQueryID != "" {
			payload["callback_query_id"] = data.CallbackQueryID
		}
		body, err := json.Marshal(payload)
		if err != nil {
			return nil, fmt.Errorf("encode telegram reply of %s: %w", env.ID, err)
		}
		return &store.Delivery{
			ID: store.DeliveryID(env.WorkspaceID, env.ID, store.TargetTelegram), WorkspaceID: env.WorkspaceID,
			Target: store.TargetTelegram, Destination: data.ExternalID, EventID: env.ID, EventType: env.Type, Payload: body,
		}, nil
	}
	return nil, nil
}

// stringAttr is the string attribute name of img, or "".
func stringAttr(img map[string]events.DynamoDBAttributeValue, name string) string {
	if v, ok := img[name]; ok && v.DataType() == events.DataTypeString {
		return v.String()
	}
	return ""
}

// eventTrace is the traceparent the worker stored on the event, if valid; "" otherwise (the
// delivery then starts a trace of its own).
func eventTrace(rec events.DynamoDBEventRecord) string {
	if p, ok := trace.Parse(stringAttr(rec.Change.NewImage, "trace")); ok {
		return p.String()
	}
	return ""
}

// envelope rebuilds the event from its log item: pk WS#<ws>#EV[#<shard>], sk the cursor.
func envelope(img map[string]events.DynamoDBAttributeValue) (Envelope, error) {
	get := func(name string) string {
		if v, ok := img[name]; ok && v.DataType() == events.DataTypeString {
			return v.String()
		}
		return ""
	}
	ws, _, ok := store.ParseEventPK(get("pk"))
	e := Envelope{ID: get("event_id"), Type: get("type"), CreatedAt: get("created_at"), WorkspaceID: ws, Data: json.RawMessage(get("data"))}
	if !ok || e.ID == "" || e.Type == "" || !json.Valid(e.Data) {
		return Envelope{}, fmt.Errorf("event item %q/%q lacks id, type, workspace or valid data", get("pk"), get("sk"))
	}
	return e, nil
}
