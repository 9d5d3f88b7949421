package store

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/ids"
)

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
)

// DeliveryRetention is how long deliveries and their attempt logs are kept (DynamoDB TTL).
const DeliveryRetention = 30 * 24 * time.Hour

// Delivery targets other than a subscription.
const (
	TargetCallback = "callback" // a finished run to the replyUrl its adapter request named
	TargetTelegram = "telegram" // an agent's reply to a Telegram chat, through the Bot API
)

// Delivery is one event to one subscription, or to another target. Payload is the exact body that
// is signed and sent.
type Delivery struct {
	ID             string          `json:"id"`
	WorkspaceID    string          `json:"workspace_id"`
	SubscriptionID string          `json:"subscription_id,omitempty"`
	Target         string          `json:"target,omitempty"`      // "" for a subscription, else TargetCallback or TargetTelegram
	Destination    string          `json:"destination,omitempty"` // callback: the URL; telegram: the chat id
	Adapter        string          `json:"adapter,omitempty"`     // callback: the adapter whose secret signs it
	FIFO           bool            `json:"fifo,omitempty"`        // its subscription's deliveries go one at a time in log order
	EventID        string          `json:"event_id"`
	EventType      string          `json:"event_type"`
	Payload        json.RawMessage `json:"-"`
	Status         string          `json:"status"`
	Attempts       int             `json:"attempts"`       // attempts in the current series (drives the schedule)
	TotalAttempts  int             `json:"total_attempts"` // across manual retries
	Series         int             `json:"series"`         // 0, then +1 per manual retry or replay
	NextAttemptAt  *time.Time      `json:"next_attempt_at,omitempty"`
	RetryScheduled bool            `json:"-"` // the next attempt waits on the retry schedule, not in the queue
	LeaseUntil     time.Time       `json:"-"` // when the claim of the current attempt runs out (zero: none)
	OneShot        bool            `json:"-"` // a manual retry: this series is one attempt
	LastStatusCode int             `json:"last_status_code,omitempty"`
	LastError      string          `json:"last_error,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
}

// Attempt is one HTTP attempt of a delivery.
type Attempt struct {
	At              time.Time `json:"at"`
	Series          int       `json:"series"`
	Number          int       `json:"number"`
	StatusCode      int       `json:"status_code,omitempty"`
	LatencyMS       int64     `json:"latency_ms"`
	ResponseSnippet string    `json:"response_snippet,omitempty"`
	Error           string    `json:"error,omitempty"`
}

// deliveryPK is the partition of a delivery's item and its attempts' items.
func deliveryPK(ws, id string) string { return "WS#" + ws + "#DLV#" + id }

func deliveryKey(ws, id string) map[string]types.AttributeValue {
	return key(deliveryPK(ws, id), "DLV")
}

func subDeliveriesPK(ws, sub string) string { return "WS#" + ws + "#SUB#" + sub + "#DLV" }

// DeliveryID is the id of the delivery of event eventID of workspace ws to to: a subscription's id,
// or TargetCallback or TargetTelegram. Derived, so that the fan-out run again makes the same
// deliveries, and a delivery function can check the id a message names.
func DeliveryID(ws, eventID, to string) string { return ids.Derive("dlv", ws, eventID, to) }

// CreateDelivery stores a new pending delivery. It returns false, and changes nothing, when a
// delivery with that id exists (the fan-out ran again), with the stored delivery.
func (st *Store) CreateDelivery(ctx context.Context, d Delivery) (Delivery, bool, error) {
	now := st.now().UTC()
	d.Status, d.CreatedAt, d.UpdatedAt = DeliveryPending, now, now
	_, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &st.table, Item: newDeliveryItem(d, now), ConditionExpression: aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return d, true, nil
	}
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) && len(cf.Item) > 0 {
		return decodeDelivery(cf.Item), false, nil
	}
	return Delivery{}, false, fmt.Errorf("create delivery %s: %w", d.ID, err)
}

// ClaimNewDelivery is ClaimAttempt of the first attempt of a delivery no item holds yet (its
// message carries it): one put creates the delivery, pending, with the attempt claimed, as
// CreateDelivery and ClaimAttempt would leave it. When a delivery with that id exists (a copy of
// the message, or an item the fan-out wrote), the put changes nothing and the claim is
// ClaimAttempt's of attempt 0.
func (st *Store) ClaimNewDelivery(ctx context.Context, d Delivery, lease time.Duration) (Delivery, bool, error) {
	now := st.now().UTC()
	d.Status, d.CreatedAt, d.UpdatedAt, d.LeaseUntil = DeliveryPending, now, now, now.Add(lease).Truncate(time.Millisecond)
	d.Attempts, d.TotalAttempts, d.Series, d.NextAttemptAt, d.RetryScheduled, d.OneShot = 0, 0, 0, nil, false, false
	item := newDeliveryItem(d, now)
	item["lease_until"] = n(d.LeaseUntil.UnixMilli())
	_, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &st.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if err == nil {
		return d, true, nil
	}
	var cf *types.ConditionalCheckFailedException
	if !errors.As(err, &cf) {
		return Delivery{}, false, fmt.Errorf("claim new delivery %s: %w", d.ID, err)
	}
	return st.ClaimAttempt(ctx, d.WorkspaceID, d.ID, 0, lease)
}

// newDeliveryItem is the item of new pending delivery d, created at now.
func newDeliveryItem(d Delivery, now time.Time) map[string]types.AttributeValue {
	item := deliveryKey(d.WorkspaceID, d.ID)
	item["delivery_id"] = s(d.ID)
	item["workspace_id"] = s(d.WorkspaceID)
	item["subscription_id"] = s(d.SubscriptionID)
	item["event_id"] = s(d.EventID)
	item["event_type"] = s(d.EventType)
	item["payload"] = s(string(d.Payload))
	item["status"] = s(DeliveryPending)
	item["attempts"], item["total_attempts"], item["series"] = n(0), n(0), n(0)
	item["created_at"], item["updated_at"] = ts(now), ts(now)
	for name, v := range map[string]string{"target": d.Target, "destination": d.Destination, "adapter": d.Adapter} {
		if v != "" {
			item[name] = s(v)
		}
	}
	if d.FIFO {
		item["fifo"] = boolAttr(true)
	}
	item["gsi1pk"] = s(subDeliveriesPK(d.WorkspaceID, cmp.Or(d.SubscriptionID, "@"+d.Target)))
	item["gsi1sk"] = s(now.Format(time.RFC3339Nano) + "#" + d.ID)
	item["ttl"] = n(now.Add(DeliveryRetention).Unix())
	return item
}

// GetDelivery returns a delivery of the workspace, or NotFound.
func (st *Store) GetDelivery(ctx context.Context, ws, id string) (Delivery, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: deliveryKey(ws, id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Delivery{}, fmt.Errorf("get delivery %s: %w", id, err)
	}
	if len(out.Item) == 0 {
		return Delivery{}, apierr.New(apierr.NotFound, "delivery not found")
	}
	return decodeDelivery(out.Item), nil
}

// ClaimAttempt takes attempt number attempt (0-based, in the delivery's current series) for the
// caller: it succeeds only while the delivery is pending at exactly that attempt and no other
// worker holds an unexpired lease. A stale or duplicate queue message gets false.
func (st *Store) ClaimAttempt(ctx context.Context, ws, id string, attempt int, lease time.Duration) (Delivery, bool, error) {
	now := st.now().UTC()
	out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &st.table,
		Key:                      deliveryKey(ws, id),
		UpdateExpression:         aws.String("SET lease_until = :until"),
		ConditionExpression:      aws.String("#st = :pending AND attempts = :n AND (attribute_not_exists(lease_until) OR lease_until < :now)"),
		ExpressionAttributeNames: map[string]string{"#st": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":until": n(now.Add(lease).UnixMilli()), ":pending": s(DeliveryPending), ":n": n(int64(attempt)), ":now": n(now.UnixMilli()),
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		var cf *types.ConditionalCheckFailedException
		if errors.As(err, &cf) {
			if len(cf.Item) == 0 {
				return Delivery{}, false, apierr.New(apierr.NotFound, "delivery not found")
			}
			return decodeDelivery(cf.Item), false, nil
		}
		return Delivery{}, false, fmt.Errorf("claim delivery %s: %w", id, err)
	}
	return decodeDelivery(out.Attributes), true, nil
}

// RecordAttempt logs an attempt and moves the delivery on: to status (pending with next set for
// a retry, succeeded, or failed), releasing the lease. It requires the attempt number to be the
// one claimed, so a late duplicate cannot record twice.
func (st *Store) RecordAttempt(ctx context.Context, ws, id string, a Attempt, status string, next *time.Time) error {
	return st.recordAttempt(ctx, ws, id, a, status, next, nil, rand.Text())
}

// RecordAttemptScheduled is RecordAttempt for a retry at next that waits on the retry schedule
// (ScheduleDelivery) rather than in the queue: the attempt, the delivery's move and the schedule
// entry are one transaction, and the delivery is marked RetryScheduled until its next attempt.
func (st *Store) RecordAttemptScheduled(ctx context.Context, ws, id string, a Attempt, next time.Time, trace string) error {
	entry := ScheduledDelivery{WorkspaceID: ws, DeliveryID: id, Series: a.Series, Attempt: a.Number + 1, Due: next, Trace: trace}
	return st.recordAttempt(ctx, ws, id, a, DeliveryPending, &next, &types.Put{TableName: &st.table, Item: entry.item()}, rand.Text())
}

// maxResponseSnippet bounds the part of a response an attempt keeps (what outbound reads of it):
// on the attempt's own item, and on the delivery's item for the attempt that ended it, where every
// byte is billed again by each later write of the delivery.
const maxResponseSnippet = 1 << 10

// boundSnippet cuts s to maxResponseSnippet bytes, at the start of a rune.
func boundSnippet(s string) string {
	if len(s) <= maxResponseSnippet {
		return s
	}
	cut := maxResponseSnippet
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// attemptKey is the key of attempt number of series in delivery id's partition.
func attemptKey(ws, id string, series, number int) map[string]types.AttributeValue {
	return key(deliveryPK(ws, id), fmt.Sprintf("ATT#%04d#%04d", series, number))
}

// attemptItem is attempt a's own item, written by the call named rec, kept until expires.
func attemptItem(ws, id string, a Attempt, rec string, expires time.Time) map[string]types.AttributeValue {
	att := attemptKey(ws, id, a.Series, a.Number)
	att["at"] = ts(a.At)
	att["series"], att["number"] = n(int64(a.Series)), n(int64(a.Number))
	att["latency_ms"] = n(a.LatencyMS)
	if a.StatusCode != 0 {
		att["status_code"] = n(int64(a.StatusCode))
	}
	if a.ResponseSnippet != "" {
		att["response_snippet"] = s(boundSnippet(a.ResponseSnippet))
	}
	if a.Error != "" {
		att["error"] = s(a.Error)
	}
	att["ttl"] = n(expires.Unix())
	att["rec"] = s(rec)
	return att
}

func decodeAttempt(it map[string]types.AttributeValue) Attempt {
	return Attempt{
		At: tm(it, "at"), Series: int(num(it, "series")), Number: int(num(it, "number")), StatusCode: int(num(it, "status_code")),
		LatencyMS: num(it, "latency_ms"), ResponseSnippet: str(it, "response_snippet"), Error: str(it, "error"),
	}
}

// The attempt that ended a delivery (succeeded or failed) is kept on the delivery's item, written
// by the same update that ends it: attempt attempts-1 of its series, with the delivery's
// last_status_code and last_error, and these attributes. RetryDelivery moves it to an item of its
// own before it starts the next series.
const (
	finalAt      = "final_at"
	finalLatency = "final_latency_ms"
	finalSnippet = "final_response_snippet"
)

// finalAttempt is the attempt kept on delivery item it, if it holds one.
func finalAttempt(it map[string]types.AttributeValue) (Attempt, bool) {
	if _, ok := it[finalAt]; !ok || str(it, "status") == DeliveryPending {
		return Attempt{}, false
	}
	return Attempt{
		At: tm(it, finalAt), Series: int(num(it, "series")), Number: int(num(it, "attempts")) - 1, StatusCode: int(num(it, "last_status_code")),
		LatencyMS: num(it, finalLatency), ResponseSnippet: str(it, finalSnippet), Error: str(it, "last_error"),
	}, true
}

// recordAttempt records the attempt and moves the delivery on. rec names this call: it is stored
// on what the call writes (the delivery's last_rec, the attempt item's rec) so that a write the
// SDK sent again (its first answer lost after DynamoDB applied it) is recognised as this call's
// own, not refused as a duplicate's.
//
// Every form moves the delivery on condition that it is still pending at this attempt of this
// series. That condition is what makes an attempt recorded once: a late duplicate (its lease ran
// out and the attempt was claimed and recorded again) fails it and gets Conflict.
//
//   - The attempt that ends the delivery (succeeded or failed) is written on the delivery's item
//     (finalAttempt) by that one conditional update: nothing to write beside it, and nothing a
//     crash can leave half done.
//   - An attempt followed by another keeps an item of its own (ATT#<series>#<number>), so that the
//     delivery's item does not grow with the schedule. With a retry schedule entry the three writes
//     are one transaction: the retry cannot be lost between the record and the schedule.
//     Otherwise they are two plain writes, as a transaction bills every item twice: the attempt's
//     item, unless another call's is there, then the delivery. An attempt item of another call with
//     the delivery not moved on is a call that died between the two writes: the attempt was
//     claimed again after its lease, and this call's record replaces it (DeliveryAttempts prefers the
//     delivery's own final attempt to such an item).
func (st *Store) recordAttempt(ctx context.Context, ws, id string, a Attempt, status string, next *time.Time, schedule *types.Put, rec string) error {
	now := st.now().UTC()
	ends := status != DeliveryPending
	set := []string{"#st = :status", "attempts = :next", "total_attempts = total_attempts + :one", "updated_at = :now", "last_status_code = :code", "last_rec = :rec"}
	remove := []string{"lease_until"}
	vals := map[string]types.AttributeValue{
		":status": s(status), ":next": n(int64(a.Number + 1)), ":one": n(1), ":now": ts(now), ":code": n(int64(a.StatusCode)),
		":n": n(int64(a.Number)), ":series": n(int64(a.Series)), ":pending": s(DeliveryPending), ":rec": s(rec),
	}
	// Absent rather than empty: each byte of the delivery's item is billed by every write of it.
	if a.Error != "" {
		set, vals[":err"] = append(set, "last_error = :err"), s(a.Error)
	} else {
		remove = append(remove, "last_error")
	}
	if next != nil {
		set, vals[":nextat"] = append(set, "next_attempt_at = :nextat"), ts(*next)
	} else {
		remove = append(remove, "next_attempt_at")
	}
	if schedule != nil {
		set, vals[":true"] = append(set, "retry_scheduled = :true"), &types.AttributeValueMemberBOOL{Value: true}
	} else {
		remove = append(remove, "retry_scheduled")
	}
	if ends {
		set = append(set, finalAt+" = :at", finalLatency+" = :ms")
		vals[":at"], vals[":ms"] = ts(a.At), n(a.LatencyMS)
		if snippet := boundSnippet(a.ResponseSnippet); snippet != "" {
			set, vals[":snippet"] = append(set, finalSnippet+" = :snippet"), s(snippet)
		} else {
			remove = append(remove, finalSnippet)
		}
	}
	move := &dynamodb.UpdateItemInput{
		TableName:                           &st.table,
		Key:                                 deliveryKey(ws, id),
		UpdateExpression:                    aws.String("SET " + strings.Join(set, ", ") + " REMOVE " + strings.Join(remove, ", ")),
		ConditionExpression:                 aws.String("#st = :pending AND attempts = :n AND series = :series"),
		ExpressionAttributeNames:            map[string]string{"#st": "status"},
		ExpressionAttributeValues:           vals,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if ends {
		// One write. Refused, it is this call's own write sent again (its last_rec), or a duplicate's.
		_, err := st.db.UpdateItem(ctx, move)
		return moved(err, a, id, rec)
	}
	att := attemptItem(ws, id, a, rec, now.Add(DeliveryRetention))
	if schedule != nil {
		_, err := st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Update: &types.Update{
				TableName: move.TableName, Key: move.Key, UpdateExpression: move.UpdateExpression, ConditionExpression: move.ConditionExpression,
				ExpressionAttributeNames: move.ExpressionAttributeNames, ExpressionAttributeValues: move.ExpressionAttributeValues,
			}},
			{Put: &types.Put{TableName: &st.table, Item: att}}, {Put: schedule},
		}})
		if cancelledBy(err, 0) {
			if st.recordedBy(ctx, att, rec) {
				return nil
			}
			return apierr.New(apierr.Conflict, "attempt already recorded")
		}
		if err != nil {
			return fmt.Errorf("record attempt %d of delivery %s: %w", a.Number, id, err)
		}
		return nil
	}
	_, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &st.table, Item: att,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR rec = :rec"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":rec": s(rec)},
	})
	var cf *types.ConditionalCheckFailedException
	replace := errors.As(err, &cf) // another call's attempt item: replaced once the delivery moves
	if err != nil && !replace {
		return fmt.Errorf("record attempt %d of delivery %s: %w", a.Number, id, err)
	}
	_, err = st.db.UpdateItem(ctx, move)
	if err := moved(err, a, id, rec); err != nil {
		return err
	}
	// Moved by this call (or by its own write, sent again after a lost answer: its last_rec).
	if replace {
		if _, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.table, Item: att}); err != nil {
			return fmt.Errorf("record attempt %d of delivery %s: %w", a.Number, id, err)
		}
	}
	return nil
}

// moved judges the answer err to the update that moves a delivery on from attempt a: refused, it
// was this call's own write (the delivery names rec as the last to move it), sent again by the SDK
// after DynamoDB applied it and the answer was lost; or a duplicate's (Conflict).
func moved(err error, a Attempt, id, rec string) error {
	var cf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &cf) && str(cf.Item, "last_rec") != rec:
		return apierr.New(apierr.Conflict, "attempt already recorded")
	case cf == nil && err != nil:
		return fmt.Errorf("record attempt %d of delivery %s: %w", a.Number, id, err)
	}
	return nil
}

// recordedBy reports whether the attempt item att was written by the call named rec.
func (st *Store) recordedBy(ctx context.Context, att map[string]types.AttributeValue, rec string) bool {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &st.table, Key: map[string]types.AttributeValue{"pk": att["pk"], "sk": att["sk"]}, ConsistentRead: aws.Bool(true),
	})
	return err == nil && str(out.Item, "rec") == rec
}

// RetryDelivery starts a new series of attempts for a failed delivery (a manual retry or a replay)
// and keeps it for another DeliveryRetention. A delivery pending at attempt 0 of its series with no
// lease was reset (or created) but never attempted, perhaps because queuing it failed: it is
// retried too, so that the caller can queue it again; a duplicate message claims nothing.
func (st *Store) RetryDelivery(ctx context.Context, ws, id string) (Delivery, error) {
	return st.retryDelivery(ctx, ws, id, false)
}

// RetryDeliveryOnce is RetryDelivery for a manual retry: the new series is exactly one attempt.
func (st *Store) RetryDeliveryOnce(ctx context.Context, ws, id string) (Delivery, error) {
	return st.retryDelivery(ctx, ws, id, true)
}

func (st *Store) retryDelivery(ctx context.Context, ws, id string, once bool) (Delivery, error) {
	upd := "SET #st = :pending, attempts = :zero, series = series + :one, updated_at = :now, #ttl = :ttl REMOVE lease_until, next_attempt_at, one_shot"
	if once {
		upd = "SET #st = :pending, attempts = :zero, series = series + :one, updated_at = :now, #ttl = :ttl, one_shot = :one REMOVE lease_until, next_attempt_at"
	}
	upd += ", " + finalAt + ", " + finalLatency + ", " + finalSnippet
	var cf *types.ConditionalCheckFailedException
	for range maxRetryTries {
		// The series that ended keeps its final attempt: read from the delivery's item, it is
		// written as an item of its own before the update removes it (the same item again after a
		// crash in between; DeliveryAttempts shows it once either way). The update is on condition that
		// the series and its count of attempts are still the ones read: a retry that came between,
		// or an attempt recorded meanwhile (whose final attempt this call has not kept: a delivery
		// pending at attempt 0 can be retried while its queued attempt ends it), makes it read
		// again.
		cur, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: deliveryKey(ws, id), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return Delivery{}, fmt.Errorf("retry delivery %s: %w", id, err)
		}
		if len(cur.Item) == 0 {
			return Delivery{}, apierr.New(apierr.NotFound, "delivery not found")
		}
		now := st.now().UTC()
		if fa, ok := finalAttempt(cur.Item); ok && str(cur.Item, "status") == DeliveryFailed {
			kept := attemptItem(ws, id, fa, str(cur.Item, "last_rec"), now.Add(DeliveryRetention))
			if _, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.table, Item: kept}); err != nil {
				return Delivery{}, fmt.Errorf("retry delivery %s: keep its final attempt: %w", id, err)
			}
		}
		out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                &st.table,
			Key:                      deliveryKey(ws, id),
			UpdateExpression:         aws.String(upd),
			ConditionExpression:      aws.String("series = :series AND total_attempts = :total AND (#st = :failed OR (#st = :pending AND attempts = :zero AND attribute_not_exists(lease_until)))"),
			ExpressionAttributeNames: map[string]string{"#st": "status", "#ttl": "ttl"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pending": s(DeliveryPending), ":failed": s(DeliveryFailed), ":zero": n(0), ":one": n(1), ":now": ts(now),
				":ttl": n(now.Add(DeliveryRetention).Unix()), ":series": n(num(cur.Item, "series")), ":total": n(num(cur.Item, "total_attempts")),
			},
			ReturnValues:                        types.ReturnValueAllNew,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err == nil {
			return decodeDelivery(out.Attributes), nil
		}
		if !errors.As(err, &cf) {
			return Delivery{}, fmt.Errorf("retry delivery %s: %w", id, err)
		}
		if len(cf.Item) == 0 {
			return Delivery{}, apierr.New(apierr.NotFound, "delivery not found")
		}
		if num(cf.Item, "series") == num(cur.Item, "series") && num(cf.Item, "total_attempts") == num(cur.Item, "total_attempts") {
			break // not moved on since read: not retryable
		}
	}
	if str(cf.Item, "status") == DeliveryPending {
		return Delivery{}, apierr.New(apierr.Conflict, "the delivery is being attempted; it can be retried once it has failed")
	}
	return Delivery{}, apierr.New(apierr.Conflict, "only a failed delivery can be retried (this one is %s)", str(cf.Item, "status"))
}

// maxRetryTries bounds how often RetryDelivery reads a delivery again that moved on meanwhile.
const maxRetryTries = 3

// DeliveryFilter selects a subscription's deliveries.
type DeliveryFilter struct {
	Status       string    // "" for all
	Since, Until time.Time // zero for open ends
	Limit        int
	Cursor       string
}

// ListDeliveries returns a subscription's deliveries, newest first, and the cursor of the next page.
//
// gsi1 holds only the deliveries' keys (an update of a delivery then writes no index copy): a page
// of keys is read from it, then the items from the table. Both reads are eventually consistent, as
// the index is. The status filter is applied to the items, to as many keys as the page's Limit
// lets the index evaluate: the same pages and cursors as a filter on the index would give.
func (st *Store) ListDeliveries(ctx context.Context, ws, sub string, f DeliveryFilter) ([]Delivery, string, error) {
	lo, hi := "0", "9"
	if !f.Since.IsZero() {
		lo = f.Since.UTC().Format(time.RFC3339Nano)
	}
	if !f.Until.IsZero() {
		hi = f.Until.UTC().Format(time.RFC3339Nano) + "~"
	}
	in := &dynamodb.QueryInput{
		TableName:              &st.table,
		IndexName:              aws.String("gsi1"),
		KeyConditionExpression: aws.String("gsi1pk = :pk AND gsi1sk BETWEEN :lo AND :hi"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": s(subDeliveriesPK(ws, sub)), ":lo": s(lo), ":hi": s(hi),
		},
		ScanIndexForward: aws.Bool(false),
	}
	if f.Cursor != "" {
		start, err := deliveryStartKey(f.Cursor, ws, sub, lo, hi)
		if err != nil {
			return nil, "", err
		}
		in.ExclusiveStartKey = start
	}
	limit := max(1, f.Limit)
	var out []Delivery
	for {
		in.Limit = aws.Int32(int32(limit - len(out)))
		page, err := st.db.Query(ctx, in)
		if err != nil {
			return nil, "", fmt.Errorf("list deliveries of %s: %w", sub, err)
		}
		items, err := st.getItems(ctx, page.Items)
		if err != nil {
			return nil, "", fmt.Errorf("list deliveries of %s: %w", sub, err)
		}
		for _, it := range items {
			// nil: expired (or gone) since the index was read.
			if it != nil && (f.Status == "" || str(it, "status") == f.Status) {
				out = append(out, decodeDelivery(it))
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, "", nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
		if len(out) >= limit {
			return out, pageCursor(page.LastEvaluatedKey), nil
		}
	}
}

// listedAttrs are the attributes of a delivery a list reads: all that decodeDelivery reads but the
// payload, the largest, never listed.
var listedAttrs = []string{
	"delivery_id", "workspace_id", "subscription_id", "target", "destination", "adapter", "fifo", "event_id", "event_type",
	"status", "attempts", "total_attempts", "series", "next_attempt_at", "retry_scheduled", "one_shot", "lease_until",
	"last_status_code", "last_error", "created_at", "updated_at",
}

// batchGetKeys is the most keys one BatchGetItem reads.
const batchGetKeys = 100

// getItems reads the table's items of keys (index entries: their pk and sk), eventually
// consistent, with the listedAttrs of each: in the order of keys, nil for one that is not there.
func (st *Store) getItems(ctx context.Context, keys []map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	names := make(map[string]string, len(listedAttrs)+2)
	proj := make([]string, 0, len(listedAttrs)+2)
	for i, a := range append([]string{"pk", "sk"}, listedAttrs...) {
		p := fmt.Sprintf("#a%d", i)
		names[p] = a
		proj = append(proj, p)
	}
	found := make(map[string]map[string]types.AttributeValue, len(keys))
	for chunk := range slices.Chunk(keys, batchGetKeys) {
		want := make([]map[string]types.AttributeValue, len(chunk))
		for i, k := range chunk {
			want[i] = map[string]types.AttributeValue{"pk": k["pk"], "sk": k["sk"]}
		}
		req := map[string]types.KeysAndAttributes{st.table: {
			Keys: want, ProjectionExpression: aws.String(strings.Join(proj, ", ")), ExpressionAttributeNames: names,
		}}
		for wait := 10 * time.Millisecond; len(req) > 0; wait = min(2*wait, time.Second) {
			out, err := st.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, err
			}
			for _, it := range out.Responses[st.table] {
				found[str(it, "pk")+"\x00"+str(it, "sk")] = it
			}
			// Keys DynamoDB left for later (throttled, or past 16 MB): asked again after a pause.
			if req = out.UnprocessedKeys; len(req) > 0 {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(wait):
				}
			}
		}
	}
	items := make([]map[string]types.AttributeValue, len(keys))
	for i, k := range keys {
		items[i] = found[str(k, "pk")+"\x00"+str(k, "sk")]
	}
	return items, nil
}

// DeliveryAttempts returns a delivery of the workspace (or NotFound) and its attempts, oldest first:
// the items of the attempts followed by another, and the one that ended the delivery, kept on its
// item. One query reads them all: the delivery's item is read once.
func (st *Store) DeliveryAttempts(ctx context.Context, ws, id string) (Delivery, []Attempt, error) {
	in := &dynamodb.QueryInput{
		TableName:                 &st.table,
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(deliveryPK(ws, id))},
		ConsistentRead:            aws.Bool(true),
	}
	type logged struct {
		Attempt
		rec string
	}
	var (
		items []logged
		dlv   map[string]types.AttributeValue
	)
	for p := dynamodb.NewQueryPaginator(st.db, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return Delivery{}, nil, fmt.Errorf("list attempts of %s: %w", id, err)
		}
		for _, it := range page.Items {
			switch sk := str(it, "sk"); {
			case sk == "DLV":
				dlv = it
			case strings.HasPrefix(sk, "ATT#"):
				items = append(items, logged{decodeAttempt(it), str(it, "rec")})
			}
		}
	}
	if len(dlv) == 0 {
		return Delivery{}, nil, apierr.New(apierr.NotFound, "delivery not found")
	}
	atts := make([]Attempt, 0, len(items)+1)
	final, ok := finalAttempt(dlv)
	for _, l := range items {
		// An item of the final attempt is a call's that died before it moved the delivery (the
		// delivery's own record wins), or the final attempt kept by a retry that died before it
		// moved the delivery on (the same attempt, the delivery's last_rec: shown once).
		if ok && l.Series == final.Series && l.Number == final.Number {
			if l.rec == str(dlv, "last_rec") {
				ok = false
			} else {
				continue
			}
		}
		atts = append(atts, l.Attempt)
	}
	if ok {
		atts = append(atts, final)
	}
	slices.SortStableFunc(atts, func(a, b Attempt) int {
		return cmp.Or(cmp.Compare(a.Series, b.Series), cmp.Compare(a.Number, b.Number))
	})
	return decodeDelivery(dlv), atts, nil
}

func decodeDelivery(item map[string]types.AttributeValue) Delivery {
	d := Delivery{
		ID: str(item, "delivery_id"), WorkspaceID: str(item, "workspace_id"), SubscriptionID: str(item, "subscription_id"),
		Target: str(item, "target"), Destination: str(item, "destination"), Adapter: str(item, "adapter"),
		EventID: str(item, "event_id"), EventType: str(item, "event_type"), Payload: json.RawMessage(str(item, "payload")),
		Status: str(item, "status"), Attempts: int(num(item, "attempts")), TotalAttempts: int(num(item, "total_attempts")),
		Series: int(num(item, "series")), LastStatusCode: int(num(item, "last_status_code")), LastError: str(item, "last_error"),
		CreatedAt: tm(item, "created_at"), UpdatedAt: tm(item, "updated_at"), FIFO: boolean(item, "fifo"),
	}
	if t := tm(item, "next_attempt_at"); !t.IsZero() {
		d.NextAttemptAt = &t
	}
	if b, ok := item["retry_scheduled"].(*types.AttributeValueMemberBOOL); ok {
		d.RetryScheduled = b.Value
	}
	d.OneShot = num(item, "one_shot") == 1
	if ms := num(item, "lease_until"); ms > 0 {
		d.LeaseUntil = time.UnixMilli(ms).UTC()
	}
	return d
}

// pageCursor and parsePageCursor make a DynamoDB start key an opaque, URL-safe page cursor. Only
// string attributes occur in the table's keys.
func pageCursor(k map[string]types.AttributeValue) string {
	m := map[string]string{}
	for name, v := range k {
		if sv, ok := v.(*types.AttributeValueMemberS); ok {
			m[name] = sv.Value
		}
	}
	b, _ := json.Marshal(m)
	return base64.RawURLEncoding.EncodeToString(b)
}

// parsePageCursor decodes a page cursor into the start key of a query whose key attributes are
// attrs, the first of them its partition: exactly those attributes, each a string that fits a key,
// and the partition the one being queried. So a forged cursor, or one of another list, is Invalid
// rather than a start key DynamoDB rejects (or one that points outside the caller's items).
func parsePageCursor(c, partition string, attrs ...string) (map[string]types.AttributeValue, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	var m map[string]string
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil || len(m) != len(attrs) || m[attrs[0]] != partition {
		return nil, badCursor()
	}
	out := make(map[string]types.AttributeValue, len(m))
	for _, name := range attrs {
		v, ok := m[name]
		if !ok || v == "" || len(v) > maxCursorValue {
			return nil, badCursor()
		}
		out[name] = s(v)
	}
	return out, nil
}

// maxCursorValue bounds a key value in a cursor: DynamoDB's limit for a sort key.
const maxCursorValue = 1024

func badCursor() error { return apierr.New(apierr.Invalid, "cursor is not valid") }

// deliveryStartKey is the start key of a page of ListDeliveries(ws, sub) between lo and hi: a
// delivery of that subscription (pk, sk and gsi1sk agree on its id) inside the range.
func deliveryStartKey(c, ws, sub, lo, hi string) (map[string]types.AttributeValue, error) {
	k, err := parsePageCursor(c, subDeliveriesPK(ws, sub), "gsi1pk", "gsi1sk", "pk", "sk")
	if err != nil {
		return nil, err
	}
	at := str(k, "gsi1sk")
	i := strings.LastIndexByte(at, '#')
	if at < lo || at > hi || i < 0 || !equalKey(k, deliveryKey(ws, at[i+1:])) {
		return nil, badCursor()
	}
	return k, nil
}

func equalKey(k, want map[string]types.AttributeValue) bool {
	return str(k, "pk") == str(want, "pk") && str(k, "sk") == str(want, "sk")
}
