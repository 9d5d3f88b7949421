// Package queue defines the work items Hookgate carries on SQS and sends them: inbound messages
// go to the FIFO inbound queue grouped by thread, so one thread is handled in order.
package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/trace"
)

// InboundVersion is the version of the Inbound layout; the worker refuses others.
const InboundVersion = 1

// SourceTelegram is the Source of the messages the Telegram door queues, and of no other.
const SourceTelegram = "telegram"

// Inbound is one accepted inbound message, as queued for the worker. Its ids are fixed before it
// is queued, so the worker's writes are idempotent under redelivery.
type Inbound struct {
	Version     int             `json:"v"`
	WorkspaceID string          `json:"workspace_id"`
	ThreadID    string          `json:"thread_id"`
	MessageID   string          `json:"message_id"`
	RunID       string          `json:"run_id"`
	Source      string          `json:"source"`
	Channel     string          `json:"channel"`
	ExternalID  string          `json:"external_id"`
	Text        string          `json:"text"`
	User        string          `json:"user,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
	ReceivedAt  time.Time       `json:"received_at"`

	// CallbackQueryID is the Telegram callback_query the run answers (a pressed inline button):
	// the reply to the chat also answers it (answerCallbackQuery).
	CallbackQueryID string `json:"callback_query_id,omitempty"`

	// TelegramSource is the workspace's Telegram source (bot) that received the update; only the
	// Telegram door sets it, and the agent's replies go to the chat through that source's bot.
	TelegramSource string `json:"telegram_source,omitempty"`
	// Agent names the agent of the run when a route chose one; empty means the workspace's.
	Agent string `json:"agent,omitempty"`
	// Group is the FIFO message group of a message without a thread (an event that starts no run,
	// a binding report); messages with a thread are grouped by it.
	Group string `json:"group,omitempty"`
	// Event, when set, is recorded in the workspace's log first: a SaaS webhook, a Telegram update.
	// Without a RunID that is all; with one, the message also starts a run on ThreadID whose input
	// is the event.
	Event *Event `json:"event,omitempty"`
	// Binding, when set, is a connector's status report: stored, and recorded as binding.status.
	Binding *Binding `json:"binding,omitempty"`
	// Stored means the run, its message and its thread are in the table already (a webhook adapter
	// wrote them to hold an in-flight slot): the worker starts from the run.
	Stored bool `json:"stored,omitempty"`
	// LogShard is the log shard of a stored run's thread, as the sender that wrote the thread
	// learnt it: the worker appends the thread's events there without reading the thread first.
	// Absent: the worker reads it.
	LogShard *int `json:"log_shard,omitempty"`
	// Decided means a human approved or denied run RunID: the worker hands the decision recorded on
	// the run to the agent, and an approved run continues.
	Decided bool `json:"decided,omitempty"`
}

// Event is an event an inbound door asks the worker to record. Its id derives from Subject and
// Type (a delivery id, a dedupe key), so recording it again appends nothing.
type Event struct {
	Subject string `json:"subject"`
	Type    string `json:"type"`
	Data    string `json:"data"` // JSON text, carried as a string so that it stays byte for byte
}

// Binding is a connector's report on one of a channel's bindings.
type Binding struct {
	Channel    string    `json:"channel"`
	BindingID  string    `json:"binding_id"`
	Status     string    `json:"status"`
	Detail     string    `json:"detail,omitempty"`
	ReportedAt time.Time `json:"reported_at"`
}

// GroupID is m's FIFO message group: its thread, else its Group.
func (m *Inbound) GroupID() string {
	if m.ThreadID != "" {
		return m.ThreadID
	}
	return m.Group
}

// SendAPI is the part of the SQS client the sender uses.
type SendAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Sender sends inbound messages to the inbound FIFO queue.
type Sender struct {
	api SendAPI
	url string
}

// NewSender returns a Sender for the queue at url.
func NewSender(api SendAPI, url string) *Sender { return &Sender{api: api, url: url} }

// SendInbound queues m with the thread as its message group and the message id as its
// deduplication id, so a retried send within SQS's five-minute window is dropped by SQS itself.
func (s *Sender) SendInbound(ctx context.Context, m *Inbound) error {
	body, err := Marshal(m)
	if err == nil {
		body, err = SQSBody(body)
	}
	if err != nil {
		return fmt.Errorf("encode inbound %s: %w: %w", m.MessageID, ErrRefused, err)
	}
	_, err = s.api.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:               &s.url,
		MessageBody:            aws.String(string(body)),
		MessageGroupId:         aws.String(m.GroupID()),
		MessageDeduplicationId: &m.MessageID,
		MessageAttributes:      traceAttributes(ctx),
	})
	if err != nil {
		if permanent(err) {
			return fmt.Errorf("send inbound %s: %w: %w", m.MessageID, ErrRefused, err)
		}
		return fmt.Errorf("send inbound %s: %w", m.MessageID, err)
	}
	return nil
}

// traceAttributes carries ctx's trace to the receiver as the message attribute traceparent (nil
// when ctx carries none).
func traceAttributes(ctx context.Context) map[string]types.MessageAttributeValue {
	tp := trace.Outgoing(ctx)
	if tp == "" {
		return nil
	}
	return map[string]types.MessageAttributeValue{trace.Header: {DataType: aws.String("String"), StringValue: aws.String(tp)}}
}

// InboundTrace is the trace an inbound queue message carries in its traceparent attribute, when
// valid; else a new one (the attribute is only as trustworthy as whoever could send to the queue).
func InboundTrace(attrs map[string]events.SQSMessageAttribute) trace.Parent {
	if a, ok := attrs[trace.Header]; ok && a.StringValue != nil {
		return trace.From(*a.StringValue)
	}
	return trace.New()
}

// ErrRefused marks a message the queue refuses for what it is (its content, its size): sending
// it again gets the same answer, so the sender is told 4xx (SendFailure), not 503.
var ErrRefused = errors.New("the queue refuses this message")

// permanentCodes are the SQS error codes that refuse a message for what it is.
var permanentCodes = map[string]bool{
	"InvalidMessageContents": true, "InvalidParameterValue": true, "MessageTooLong": true,
	"InvalidAttributeValue": true, "InvalidAttributeName": true, "ValidationException": true,
	"BatchRequestTooLong": true, "InvalidBatchEntryId": true,
}

func permanent(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && permanentCodes[ae.ErrorCode()]
}

// SendFailure is what a sender is told when SendInbound failed: 400 when the queue refuses the
// message for good (retrying cannot help), else 503 (retry later).
func SendFailure(err error) error {
	if errors.Is(err, ErrRefused) {
		return apierr.Wrap(apierr.Invalid, err, "the message cannot be queued: its content is refused")
	}
	return apierr.Wrap(apierr.Unavailable, err, "the message could not be queued; retry later")
}

// SQSAllowed reports whether SQS accepts r in a message body: #x9 | #xA | #xD | #x20–#xD7FF |
// #xE000–#xFFFD | #x10000–#x10FFFF.
func SQSAllowed(r rune) bool {
	switch {
	case r == 0x9 || r == 0xA || r == 0xD:
		return true
	case r >= 0x20 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

// ErrInvalidUTF8 is SQSBody's refusal of a text that is not UTF-8: the SDK would rewrite its
// bytes on the wire, and SQS would store another message than the one sent.
var ErrInvalidUTF8 = errors.New("message body is not valid UTF-8")

// SQSBody makes the JSON text b fit an SQS message body: every character SQS refuses becomes its
// JSON escape \uXXXX, which decodes to the same string (in valid JSON such characters occur only
// inside strings: U+FFFE, U+FFFF; encoding/json already escapes control characters). Invalid
// UTF-8 is refused, never replaced. b is returned as is when it needs nothing.
func SQSBody(b []byte) ([]byte, error) {
	clean := 0 // b[:clean] needs nothing
	for clean < len(b) {
		c := b[clean]
		if c >= 0x20 && c < utf8.RuneSelf || c == '\t' || c == '\n' || c == '\r' {
			clean++
			continue
		}
		r, n := utf8.DecodeRune(b[clean:])
		if r == utf8.RuneError && n <= 1 {
			return nil, ErrInvalidUTF8
		}
		if !SQSAllowed(r) {
			break
		}
		clean += n
	}
	if clean == len(b) {
		return b, nil
	}
	out := make([]byte, 0, len(b)+16)
	out = append(out, b[:clean]...)
	for i := clean; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			return nil, ErrInvalidUTF8
		case SQSAllowed(r):
			out = append(out, b[i:i+n]...)
		default:
			out = fmt.Appendf(out, "\\u%04x", r) // r < 0x10000: every character above is allowed
		}
		i += n
	}
	return out, nil
}

// Marshal encodes v as JSON without HTML escaping: <, > and & stay one byte each, so a text costs
// what JSONLen says (encoding/json would make each six).
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// JSONLen is the length of s as a JSON string's content, as Marshal writes it: what a text costs
// in a queue message or an event item. Limits on texts apply to it, not to len(s): a text of
// control characters is six times longer encoded.
func JSONLen(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
			n += 2
		case r < 0x20 || r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += utf8.RuneLen(r)
		}
	}
	return n
}

// Delivery asks the delivery function to make attempt Attempt of a delivery, not before NotBefore.
// The delivery's state lives in the table; the message only points at it, unless it carries a
// delivery no item holds yet (New).
type Delivery struct {
	Version     int       `json:"v"`
	WorkspaceID string    `json:"workspace_id"`
	DeliveryID  string    `json:"delivery_id"`
	Attempt     int       `json:"attempt"`
	NotBefore   time.Time `json:"not_before,omitzero"`
	// Requeues counts the messages the delivery function has sent for this delivery in a row since
	// the last one another function sent (the fan-out, the retry sweep, a manual retry). Lambda
	// stops a function that SQS invokes more than 16 times in one chain: past a bound, retries go
	// through the table's retry schedule, whose sweep starts a new chain.
	Requeues int `json:"requeues,omitempty"`
	// Trace is the traceparent of the webhook that caused the event, kept on every hop and retry
	// of the delivery; the delivery function checks it like any traceparent (trace.Parse).
	Trace string `json:"traceparent,omitempty"`
	// Paced means the attempt holds a slot of its subscription's pacing lane at NotBefore (its rate
	// limit's, or for a retry without one, the retry spacing's), taken when it was deferred: it is
	// sent then without taking another.
	Paced bool `json:"paced,omitempty"`
	// New is the whole delivery, in the fan-out's message of its first attempt (version
	// DeliveryNewVersion): no item holds it yet, and the claim of that attempt creates it. Until
	// then the message is the delivery.
	New *NewDelivery `json:"new,omitempty"`
}

// NewDelivery is a new delivery to a subscription, as the fan-out plans it: what its item would
// hold. Its id derives from the workspace, EventID and SubscriptionID; the destination is never in
// the message (the delivery function reads it from the subscription).
type NewDelivery struct {
	SubscriptionID string `json:"subscription_id"`
	EventID        string `json:"event_id"`
	EventType      string `json:"event_type"`
	// Payload is the exact body that is signed and sent: JSON text carried as a string, so that it
	// stays byte for byte.
	Payload string `json:"payload"`
}

// DeliveryVersion is the version of the Delivery layout that points at an item.
const DeliveryVersion = 1

// DeliveryNewVersion is the version of a Delivery that carries its delivery (New). A delivery
// function that knows only DeliveryVersion refuses it as an unknown version, so SQS redelivers it
// and then keeps it in the DLQ: it is never taken for a message whose delivery no longer exists.
const DeliveryNewVersion = 2

// MaxNewDeliveryBody bounds the body of a message that carries its delivery: the fan-out writes the
// item of a delivery whose message would be longer. SQS bills a request per started 64 KiB of its
// messages, and the fan-out sends ten to a request (the delivery function receives up to ten): ten
// bodies of 6 KiB stay within one 64 KiB, so a message carrying its delivery costs no SQS request
// more than one pointing at an item.
const MaxNewDeliveryBody = 6 << 10

// Body is m as a message body: with its version (DeliveryNewVersion when it carries its delivery,
// else DeliveryVersion), as JSON text SQS accepts (SQSBody).
func (m Delivery) Body() ([]byte, error) {
	m.Version = DeliveryVersion
	if m.New != nil {
		m.Version = DeliveryNewVersion
	}
	b, err := Marshal(m)
	if err == nil {
		b, err = SQSBody(b)
	}
	if err != nil {
		return nil, fmt.Errorf("encode delivery %s: %w", m.DeliveryID, err)
	}
	return b, nil
}

// MaxDelay is the longest DelaySeconds SQS accepts. Longer waits are made of several hops: the
// delivery function re-queues a message that arrives before its NotBefore.
const MaxDelay = 15 * time.Minute

// BatchAPI is the part of the SQS client that sends batches.
type BatchAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// DeliverySender sends delivery messages to the (standard) delivery queue, and the first attempts
// of FIFO subscriptions' deliveries to the FIFO delivery queue.
type DeliverySender struct {
	api interface {
		SendAPI
		BatchAPI
	}
	url        string
	orderedURL string
}

// WithOrdered makes s send ordered deliveries (SendOrdered) to the FIFO queue at url.
func (s *DeliverySender) WithOrdered(url string) *DeliverySender {
	s.orderedURL = url
	return s
}

// OrderedGroup is the FIFO delivery queue's message group of a subscription's deliveries: SQS hands
// a group's messages out one at a time, in the order they were sent, and holds the rest of the group
// while one is in flight.
func OrderedGroup(subscriptionID string) string { return subscriptionID }

// SendOrdered queues m, a first attempt, at the end of its subscription's group of the FIFO delivery
// queue. The delivery id deduplicates a send made again within SQS's five minutes (the fan-out
// retrying a batch), so the message keeps its first place.
func (s *DeliverySender) SendOrdered(ctx context.Context, m Delivery, subscriptionID string) error {
	if s.orderedURL == "" {
		return fmt.Errorf("send delivery %s: no FIFO delivery queue is configured", m.DeliveryID)
	}
	if m.New != nil {
		// An ordered message is received again after each wait: its delivery must be in the table.
		return fmt.Errorf("send delivery %s: an ordered delivery's message cannot carry it", m.DeliveryID)
	}
	body, err := m.Body()
	if err != nil {
		return err
	}
	_, err = s.api.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: &s.orderedURL, MessageBody: aws.String(string(body)),
		MessageGroupId: aws.String(OrderedGroup(subscriptionID)), MessageDeduplicationId: aws.String(m.DeliveryID),
	})
	if err != nil {
		return fmt.Errorf("send ordered delivery %s: %w", m.DeliveryID, err)
	}
	return nil
}

// NewDeliverySender returns a DeliverySender for the queue at url.
func NewDeliverySender(api interface {
	SendAPI
	BatchAPI
}, url string) *DeliverySender {
	return &DeliverySender{api: api, url: url}
}

// SendDelivery queues m to become visible after delay, capped at MaxDelay. SQS counts in whole
// seconds: a part of one rounds up, so a message is never visible before its time (rounding down
// turned a wait under a second into immediate re-queues until it was over).
func (s *DeliverySender) SendDelivery(ctx context.Context, m Delivery, delay time.Duration) error {
	body, err := m.Body()
	if err != nil {
		return err
	}
	_, err = s.api.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:     &s.url,
		MessageBody:  aws.String(string(body)),
		DelaySeconds: int32((min(max(delay, 0), MaxDelay) + time.Second - 1) / time.Second),
	})
	if err != nil {
		return fmt.Errorf("send delivery %s: %w", m.DeliveryID, err)
	}
	return nil
}

// SendDeliveries queues first attempts, ten per SQS batch (some carrying their delivery: New). It
// fails if any message failed.
func (s *DeliverySender) SendDeliveries(ctx context.Context, ms []Delivery) error {
	for start := 0; start < len(ms); start += 10 {
		chunk := ms[start:min(start+10, len(ms))]
		entries := make([]types.SendMessageBatchRequestEntry, len(chunk))
		for i := range chunk {
			body, err := chunk[i].Body()
			if err != nil {
				return err
			}
			entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(body))}
		}
		out, err := s.api.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &s.url, Entries: entries})
		if err != nil {
			return fmt.Errorf("send %d deliveries: %w", len(chunk), err)
		}
		if len(out.Failed) > 0 {
			f := out.Failed[0]
			return fmt.Errorf("send deliveries: %d of %d failed (first: %s %s)", len(out.Failed), len(chunk), aws.ToString(f.Code), aws.ToString(f.Message))
		}
	}
	return nil
}

// ByGroup splits a batch of a FIFO queue by message group: the groups in the order they first
// appear, each group's messages in the batch's order (SQS's order within the group).
func ByGroup(recs []events.SQSMessage) [][]events.SQSMessage {
	var groups [][]events.SQSMessage
	at := map[string]int{}
	for _, rec := range recs {
		g := rec.Attributes["MessageGroupId"]
		i, ok := at[g]
		if !ok {
			i, at[g] = len(groups), len(groups)
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], rec)
	}
	return groups
}

// VisibilityAPI is the part of the SQS client that changes visibility timeouts.
type VisibilityAPI interface {
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

// MaxVisibility is the longest visibility timeout SQS accepts.
const MaxVisibility = 12 * time.Hour

// Postponer delays the redelivery of received messages by changing their visibility timeout.
type Postponer struct {
	api VisibilityAPI
	url string
}

// NewPostponer returns a Postponer for the queue at url.
func NewPostponer(api VisibilityAPI, url string) *Postponer { return &Postponer{api: api, url: url} }

// Postpone makes the messages visible again after d (capped at MaxVisibility), ten per request.
func (p *Postponer) Postpone(ctx context.Context, receiptHandles []string, d time.Duration) error {
	secs := int32(min(max(d, 0), MaxVisibility) / time.Second)
	for start := 0; start < len(receiptHandles); start += 10 {
		chunk := receiptHandles[start:min(start+10, len(receiptHandles))]
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(chunk))
		for i := range chunk {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(chunk[i]), VisibilityTimeout: secs}
		}
		out, err := p.api.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: &p.url, Entries: entries})
		if err != nil {
			return fmt.Errorf("postpone %d messages: %w", len(chunk), err)
		}
		if len(out.Failed) > 0 {
			return fmt.Errorf("postpone messages: %d of %d failed (first: %s)", len(out.Failed), len(chunk), aws.ToString(out.Failed[0].Code))
		}
	}
	return nil
}
