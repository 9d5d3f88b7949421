package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/shared/apierr"
)

// Run statuses: queued → running → (waiting_approval → queued → running …) → completed, failed,
// cancelled or denied.
const (
	RunQueued          = "queued"
	RunRunning         = "running"
	RunWaitingApproval = "waiting_approval"
	RunCompleted       = "completed"
	RunFailed          = "failed"
	RunCancelled       = "cancelled"
	RunDenied          = "denied"
)

// Approval decisions.
const (
	DecisionApproved = "approved"
	DecisionDenied   = "denied"
)

// Thread is one conversation.
type Thread struct {
	ID             string
	WorkspaceID    string
	Channel        string
	ExternalID     string
	SessionStarted bool // the thread records that the agent has had session_start for it
	// SessionRun is the run that opened the thread: it owes the agent's session_start, and records
	// on its own item that it made it (Run.SessionStarted), so that a thread's first turn writes
	// nothing to the thread for it. Empty on threads opened before it was kept.
	SessionRun string
	CreatedAt  time.Time
}

// Message is one text on a thread, with its raw data kept for audit.
type Message struct {
	ID        string
	Direction string // "in" or "out"
	Source    string
	Text      string
	User      string
	RunID     string // the run an outbound message answers
	Data      json.RawMessage
	CreatedAt time.Time
}

// Run is one agent turn on a thread.
type Run struct {
	ID          string     `json:"id"`
	WorkspaceID string     `json:"workspace_id"`
	ThreadID    string     `json:"thread_id"`
	MessageID   string     `json:"message_id"`
	Status      string     `json:"status"`
	Result      *Result    `json:"result,omitempty"`
	Error       string     `json:"error,omitempty"`
	Attempts    int        `json:"attempts"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`

	Adapter     string    `json:"adapter,omitempty"` // the webhook adapter that started it
	User        string    `json:"user,omitempty"`    // who started it, as the caller said
	Approvers   []string  `json:"-"`                 // who may decide its requests for approval (its adapter's, when it started)
	Agent       string    `json:"agent,omitempty"`   // the agent's name; empty is the workspace's
	ReplyURL    string    `json:"-"`                 // where the finished run is POSTed
	Approval    *Approval `json:"approval,omitempty"`
	CancelledBy string    `json:"cancelled_by,omitempty"`
	Slot        SlotRef   `json:"-"` // the in-flight slot it holds while queued or running
	ReplyID     string    `json:"-"` // the message the agent's latest reply was stored as
	ReplyAt     time.Time `json:"-"` // that message's time (its key): EnsureReply stores it again

	// SessionStarted says the run made its thread's session_start (see Thread.SessionRun).
	SessionStarted bool `json:"-"`
	// EventsLead is Finish.EventsLead of the run's last turn.
	EventsLead string `json:"-"`
}

// Result is what a run produced: the text the agent spoke.
type Result struct {
	Text string `json:"text"`
}

// Approval is what an agent asked a human to decide, and the decision once made. Each request
// has its own ID: a decision answers one request, never a later one of the same run.
type Approval struct {
	ID          string     `json:"id,omitempty"`
	Prompt      string     `json:"prompt"`
	Options     []string   `json:"options,omitempty"`
	Approvers   []string   `json:"approvers,omitempty"` // who may decide it
	ExpiresAt   time.Time  `json:"expires_at,omitzero"` // when its decision tokens expire
	RequestedAt time.Time  `json:"requested_at"`
	Decision    string     `json:"decision,omitempty"` // approved or denied
	Option      string     `json:"option,omitempty"`
	DecidedBy   string     `json:"decided_by,omitempty"`
	Comment     string     `json:"comment,omitempty"`
	DecidedAt   *time.Time `json:"decided_at,omitempty"`
}

// Terminal reports whether the run has ended for good.
func (r Run) Terminal() bool {
	switch r.Status {
	case RunCompleted, RunFailed, RunCancelled, RunDenied:
		return true
	}
	return false
}

// InFlight reports whether the run counts against its adapter's in-flight limit.
func (r Run) InFlight() bool { return r.Status == RunQueued || r.Status == RunRunning }

// NewRun is a run to create together with its message and thread.
type NewRun struct {
	Thread   Thread
	Message  Message
	Run      Run   // ID, and Adapter, User, Agent, ReplyURL when set
	FollowUp bool  // the thread must exist already, on the same channel
	Slot     *Slot // an in-flight slot to take in the same transaction
	// Start stores the run running with its first attempt counted, as StartRun would leave it:
	// for a caller that starts the run at once (one write instead of two). A run found existing is
	// returned as it is: start it with StartRun.
	Start bool
}

// Errors of CreateRunWith that callers act on.
var (
	// ErrSlotTaken means another run took the slot first: look for another.
	ErrSlotTaken = errors.New("store: in-flight slot taken")
	// ErrContended means a concurrent transaction on the same items won: try again.
	ErrContended = errors.New("store: transaction conflict")
)

// messageTime is the time in a message's key: fixed width, so keys sort by time.
const messageTime = "20060102T150405.000000000Z"

func messageSK(m Message) string {
	return "MSG#" + m.CreatedAt.UTC().Format(messageTime) + "#" + m.ID
}

func messageItem(ws, thread string, m Message) map[string]types.AttributeValue {
	item := key(threadPK(ws, thread), messageSK(m))
	item["message_id"] = s(m.ID)
	item["direction"] = s(m.Direction)
	item["source"] = s(m.Source)
	item["text"] = s(m.Text)
	item["created_at"] = ts(m.CreatedAt)
	if m.User != "" {
		item["user"] = s(m.User)
	}
	if m.RunID != "" {
		item["run_id"] = s(m.RunID)
	}
	if len(m.Data) > 0 {
		item["data"] = s(string(m.Data))
	}
	return item
}

// CreateRunWith stores a new run, its inbound message and its thread. When the run exists it
// returns the stored run and false. A follow-up on a thread that does not exist (or is another
// channel's) is NotFound; a taken slot is ErrSlotTaken; a lost race is ErrContended.
//
// With an in-flight slot to take (nr.Slot) the writes are one transaction: the slot is taken only
// with its run. Otherwise they are three plain writes, as a transaction bills every item twice
// (3 write units instead of 6), each safe to repeat: the thread (on the same channel, which
// guards the rest), then the run (unless it exists), then the message (unless it is there: its key
// is its id and time, which the run records). A retry after a crash between them writes again what
// is missing: a run found existing has its message written again at the time the run recorded, so
// a repost of the same run (another receive time) never adds a second message.
func (st *Store) CreateRunWith(ctx context.Context, nr NewRun) (Run, bool, error) {
	now := st.now().UTC()
	if nr.Slot == nil {
		return st.createRun(ctx, nr, now)
	}
	return st.createRunInSlot(ctx, nr, now, true)
}

// createRunInSlot is CreateRunWith with a slot: one transaction. A thread whose log shard is not
// the one guessed is written again, once, with the shard it records (see threadShardCond).
func (st *Store) createRunInSlot(ctx context.Context, nr NewRun, now time.Time, again bool) (Run, bool, error) {
	th, r := nr.Thread, nr.Run
	run, thread := st.newRunItems(nr, now)
	sl := nr.Slot
	ref := sl.ref()
	run["slot_pk"], run["slot_sk"] = s(ref.PK), s(ref.SK)
	slot := key(ref.PK, ref.SK)
	slot["run_id"] = s(r.ID)
	slot["expires_at"] = n(now.Add(sl.Lease).UnixMilli())
	slot["ttl"] = n(now.Add(sl.Lease + 24*time.Hour).Unix())
	items := []types.TransactWriteItem{
		{Put: &types.Put{TableName: &st.table, Item: run, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		{Put: st.messagePut(th.WorkspaceID, th.ID, nr.Message, now)},
		{Update: thread},
		{Put: &types.Put{
			TableName: &st.table, Item: slot,
			ConditionExpression:       aws.String("attribute_not_exists(pk) OR expires_at < :now"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": n(now.UnixMilli())},
		}},
	}
	_, err := st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	switch {
	case err == nil:
		st.logs.threads.put(th.WorkspaceID, th.ID, shardOf(thread))
		got, derr := decodeRun(run)
		return got, true, derr
	case cancelledBy(err, 0):
		existing, gerr := st.GetRun(ctx, th.WorkspaceID, r.ID)
		return existing, false, gerr
	case cancelledBy(err, 2):
		if again && st.shardMismatch(nr, shardOf(thread), cancelledItem(err, 2)) {
			return st.createRunInSlot(ctx, nr, now, false)
		}
		return Run{}, false, apierr.New(apierr.NotFound, "thread not found")
	case cancelledBy(err, 3):
		return Run{}, false, ErrSlotTaken
	case conflicted(err):
		return Run{}, false, fmt.Errorf("create run %s: %w", r.ID, ErrContended)
	}
	return Run{}, false, fmt.Errorf("create run %s: %w", r.ID, err)
}

// newRunItems returns the item of nr's run as created at now, and the update of its thread.
func (st *Store) newRunItems(nr NewRun, now time.Time) (map[string]types.AttributeValue, *types.Update) {
	th, r := nr.Thread, nr.Run
	run := key(runPK(th.WorkspaceID, r.ID), "RUN")
	run["run_id"] = s(r.ID)
	run["workspace_id"] = s(th.WorkspaceID)
	run["thread_id"] = s(th.ID)
	run["message_id"] = s(nr.Message.ID)
	run["message_at"] = ts(nr.Message.CreatedAt) // the message's key (with its id)
	run["status"] = s(RunQueued)
	run["attempts"] = n(0)
	if nr.Start {
		run["status"], run["attempts"], run["started_at"] = s(RunRunning), n(1), ts(now)
	}
	run["created_at"] = ts(now)
	run["updated_at"] = ts(now)
	for name, v := range map[string]string{"adapter": r.Adapter, "user": r.User, "agent": r.Agent, "reply_url": r.ReplyURL} {
		if v != "" {
			run[name] = s(v)
		}
	}
	if len(r.Approvers) > 0 {
		run["approvers"] = strList(r.Approvers)
	}
	st.expire(run, now)
	threadSet, threadValues := "", map[string]types.AttributeValue{
		":id": s(th.ID), ":ws": s(th.WorkspaceID), ":ch": s(th.Channel), ":ext": s(th.ExternalID), ":now": ts(now), ":run": s(r.ID),
	}
	if st.retention > 0 { // a thread is kept for the retention after its last message
		threadSet, threadValues[":ttl"] = ", #ttl = :ttl", n(now.Add(st.retention).Unix())
	}
	threadCond := "(attribute_not_exists(pk) OR #ch = :ch)"
	if nr.FollowUp {
		threadCond = "(attribute_exists(pk) AND #ch = :ch)"
	}
	shard := st.threadGuess(th.WorkspaceID, th.ID)
	if shard != 0 {
		threadSet += ", log_shard = :shard"
		threadValues[":shard"] = n(int64(shard))
	}
	thread := &types.Update{
		TableName:                           &st.table,
		Key:                                 key(threadPK(th.WorkspaceID, th.ID), "META"),
		UpdateExpression:                    aws.String("SET thread_id = :id, workspace_id = :ws, #ch = :ch, external_id = if_not_exists(external_id, :ext), created_at = if_not_exists(created_at, :now), updated_at = :now, session_run = if_not_exists(session_run, :run)" + threadSet),
		ConditionExpression:                 aws.String(threadCond + " AND " + threadShardCond(shard)),
		ExpressionAttributeNames:            threadNames(st.retention > 0),
		ExpressionAttributeValues:           threadValues,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	return run, thread
}

// messagePut puts a thread's message unless it is there (its key is its time and id).
func (st *Store) messagePut(ws, thread string, m Message, now time.Time) *types.Put {
	return &types.Put{TableName: &st.table, Item: st.expire(messageItem(ws, thread, m), now), ConditionExpression: aws.String("attribute_not_exists(pk)")}
}

// createRun makes CreateRunWith's writes one by one (see there): the thread's update, the run's
// put, the message's put.
func (st *Store) createRun(ctx context.Context, nr NewRun, now time.Time) (Run, bool, error) {
	run, err := st.updateThread(ctx, nr, now)
	if err != nil {
		return Run{}, false, err
	}
	return st.putRun(ctx, nr, run)
}

// updateThread makes a new run's thread update (newRunItems) and returns the run's item: a thread
// that does not exist for a follow-up, or is another channel's, is NotFound. A thread whose log
// shard is not the one guessed is written again, once, with the shard it records.
func (st *Store) updateThread(ctx context.Context, nr NewRun, now time.Time) (map[string]types.AttributeValue, error) {
	for again := true; ; again = false {
		run, thread := st.newRunItems(nr, now)
		_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: thread.TableName, Key: thread.Key, UpdateExpression: thread.UpdateExpression, ConditionExpression: thread.ConditionExpression,
			ExpressionAttributeNames: thread.ExpressionAttributeNames, ExpressionAttributeValues: thread.ExpressionAttributeValues,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		var cf *types.ConditionalCheckFailedException
		switch {
		case errors.As(err, &cf) && again && st.shardMismatch(nr, shardOf(thread), cf.Item):
			continue
		case errors.As(err, &cf):
			return nil, apierr.New(apierr.NotFound, "thread not found")
		case err != nil:
			return nil, fmt.Errorf("create run %s: thread: %w", nr.Run.ID, err)
		}
		st.logs.threads.put(nr.Thread.WorkspaceID, nr.Thread.ID, shardOf(thread))
		return run, nil
	}
}

// putRun puts nr's run (its item run) unless the run exists, then its message; it reports whether
// it created the run. A run found existing is returned as found reads it.
func (st *Store) putRun(ctx context.Context, nr NewRun, run map[string]types.AttributeValue) (Run, bool, error) {
	id := nr.Run.ID
	_, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &st.table, Item: run, ConditionExpression: aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if item, ok := failedCondition(err); ok {
		got, err := st.found(ctx, nr, item)
		return got, false, err
	}
	if err != nil {
		return Run{}, false, fmt.Errorf("create run %s: %w", id, err)
	}
	// AddMessage writes nothing when the message is there (an earlier try wrote it).
	if _, err := st.AddMessage(ctx, nr.Thread.WorkspaceID, nr.Thread.ID, nr.Message); err != nil {
		return Run{}, false, fmt.Errorf("create run %s: %w", id, err)
	}
	got, err := decodeRun(run)
	return got, true, err
}

// found returns the run (its item) that a new run nr found existing. Created by an earlier try,
// which may have died before the message: the message is written again at the time that try
// stored, so a repost (another time) adds none. Only on the run's own thread: a repost naming
// another thread (another channel or external id under the same idempotency key) writes no
// message there. A run from before message_at had its message written with it.
func (st *Store) found(ctx context.Context, nr NewRun, item map[string]types.AttributeValue) (Run, error) {
	if at := tm(item, "message_at"); !at.IsZero() && str(item, "message_id") == nr.Message.ID && str(item, "thread_id") == nr.Thread.ID {
		again := nr.Message
		again.CreatedAt = at
		// AddMessage writes nothing when the message is there (an earlier try wrote it).
		if _, err := st.AddMessage(ctx, nr.Thread.WorkspaceID, nr.Thread.ID, again); err != nil {
			return Run{}, fmt.Errorf("create run %s: %w", nr.Run.ID, err)
		}
	}
	return decodeRun(item)
}

// Held is a new run that HoldRun did not write (none existed); Run is the run as it will be
// stored. PutHeld writes it as CreateRunWith with Start does, FinishHeld directly in the final
// state of its first turn; either writes its message after it.
type Held struct {
	Run  Run
	nr   NewRun
	item map[string]types.AttributeValue
}

// HoldRun is CreateRunWith for a run its caller starts at once (nr.Start) without a slot, that
// writes only the thread: the run and its message wait for PutHeld or FinishHeld, so that a first
// turn that ends soon writes the run once (1 write unit instead of 2). It reads the run instead
// (consistently, 1 read unit): a run that exists (a redelivery, a repost under the same idempotency
// key) is returned as CreateRunWith returns it, with false, and is never held. Until the held run
// is written, a reader finds no run; a caller that dies leaves none, and the message delivered
// again holds it anew.
func (st *Store) HoldRun(ctx context.Context, nr NewRun) (Held, bool, error) {
	id := nr.Run.ID
	if !nr.Start || nr.Slot != nil {
		return Held{}, false, fmt.Errorf("hold run %s: only a run started at once, without a slot, is held", id)
	}
	item, err := st.updateThread(ctx, nr, st.now().UTC())
	if err != nil {
		return Held{}, false, err
	}
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: key(runPK(nr.Thread.WorkspaceID, id), "RUN"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Held{}, false, fmt.Errorf("hold run %s: %w", id, err)
	}
	if len(out.Item) > 0 {
		run, err := st.found(ctx, nr, out.Item)
		return Held{Run: run}, false, err
	}
	run, err := decodeRun(item)
	return Held{Run: run, nr: nr, item: item}, true, err
}

// PutHeld writes a held run (and then its message) as CreateRunWith with Start would have: running,
// its first attempt counted. A run that exists meanwhile (another delivery of its message wrote it)
// is returned as it is, with false.
func (st *Store) PutHeld(ctx context.Context, h Held) (Run, bool, error) {
	if h.item == nil {
		return Run{}, false, fmt.Errorf("put run %s: not a held run", h.Run.ID)
	}
	return st.putRun(ctx, h.nr, h.item)
}

// FinishHeld is FinishRunWith for a held run: it puts the run once, directly as its first turn's
// change f leaves it, then the run's message and the reply (each unless it is there). A run that
// exists meanwhile (another delivery of its message wrote it) is changed by FinishRunWith instead:
// finished if it is running, else a Conflict error with the run as it is.
func (st *Store) FinishHeld(ctx context.Context, h Held, f Finish) (Run, error) {
	id := h.Run.ID
	if h.item == nil {
		return Run{}, fmt.Errorf("finish run %s: not a held run", id)
	}
	set, _, err := finishing(id, f, st.now().UTC())
	if err != nil {
		return Run{}, err
	}
	item := maps.Clone(h.item)
	maps.Copy(item, set)
	run, created, err := st.putRun(ctx, h.nr, item)
	switch {
	case err != nil:
		return Run{}, fmt.Errorf("finish run %s: %w", id, err)
	case !created:
		return st.FinishRunWith(ctx, h.Run.WorkspaceID, id, f)
	}
	if err := st.addReply(ctx, h.Run.WorkspaceID, id, f); err != nil {
		return Run{}, err
	}
	return run, nil
}

// conflicted reports whether err is a transaction that lost to a concurrent one.
func conflicted(err error) bool {
	var tc *types.TransactionCanceledException
	if errors.As(err, &tc) {
		for _, r := range tc.CancellationReasons {
			if r.Code != nil && *r.Code == "TransactionConflict" {
				return true
			}
		}
	}
	var tip *types.TransactionInProgressException
	return errors.As(err, &tip)
}

// GetRun returns a run of the workspace, or a NotFound error.
func (st *Store) GetRun(ctx context.Context, ws, id string) (Run, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: key(runPK(ws, id), "RUN"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Run{}, fmt.Errorf("get run %s: %w", id, err)
	}
	if len(out.Item) == 0 {
		return Run{}, apierr.New(apierr.NotFound, "run not found")
	}
	return decodeRun(out.Item)
}

// StartRun moves a queued (or, after a crash, running) run to running and counts the attempt.
// A run in any other state is returned as it is, with started false.
func (st *Store) StartRun(ctx context.Context, ws, id string) (Run, bool, error) {
	now := st.now().UTC()
	out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &st.table,
		Key:                      key(runPK(ws, id), "RUN"),
		UpdateExpression:         aws.String("SET #st = :running, started_at = if_not_exists(started_at, :now), updated_at = :now ADD attempts :one"),
		ConditionExpression:      aws.String("#st IN (:queued, :running)"),
		ExpressionAttributeNames: map[string]string{"#st": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":running": s(RunRunning), ":queued": s(RunQueued), ":now": ts(now), ":one": n(1),
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		if item, ok := failedCondition(err); ok {
			r, derr := decodeRun(item)
			return r, false, derr
		}
		return Run{}, false, fmt.Errorf("start run %s: %w", id, err)
	}
	r, err := decodeRun(out.Attributes)
	return r, true, err
}

// failedCondition returns the item of a conditional update that failed its condition.
func failedCondition(err error) (map[string]types.AttributeValue, bool) {
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) && len(cf.Item) > 0 {
		return cf.Item, true
	}
	return nil, false
}

// Finish is how a running run ends its turn.
type Finish struct {
	Status   string    // completed, failed or waiting_approval
	Result   *Result   // completed, waiting_approval: what the agent said so far
	Error    string    // failed: the reason
	Approval *Approval // waiting_approval: what the agent asks
	Reply    *Message  // the agent's outbound message, stored with the run's change
	// SessionStarted records with the change that the run made its thread's session_start.
	SessionStarted bool
	ThreadID       string // the run's thread, where Reply is stored
	// EventsLead is the id of the event whose group the turn's closing events (its reply's
	// message.sent, then the run's) are appended in, after the group's first events
	// (AppendEventsAfter), when not in a group of their own: "" removes it.
	EventsLead string
}

// FinishRun moves a running run to completed (with result) or failed (with errMsg).
func (st *Store) FinishRun(ctx context.Context, ws, id, status string, result *Result, errMsg string) (Run, error) {
	return st.FinishRunWith(ctx, ws, id, Finish{Status: status, Result: result, Error: errMsg})
}

// FinishRunWith ends a running run's turn and stores the agent's reply message. The run's change
// is written first, on condition that it is running, and records the reply's id and time; the
// message after, unless it is there (its key is its id and time). A retried turn never stores the
// reply twice, and a turn that died between the two writes leaves a run whose reply EnsureReply
// stores (two plain writes: a transaction billed 4 write units, these 2). A run that is not
// running (it was cancelled meanwhile, or another delivery finished it) is a Conflict error.
func (st *Store) FinishRunWith(ctx context.Context, ws, id string, f Finish) (Run, error) {
	set, remove, err := finishing(id, f, st.now().UTC())
	if err != nil {
		return Run{}, err
	}
	names := map[string]string{"#st": "status"}
	vals := map[string]types.AttributeValue{":running": s(RunRunning), ":st": set["status"]}
	sets := []string{"#st = :st"}
	for i, name := range slices.Sorted(maps.Keys(set)) {
		if name == "status" {
			continue // #st, which the condition reads too
		}
		alias, val := fmt.Sprintf("#f%d", i), fmt.Sprintf(":f%d", i)
		names[alias], vals[val] = name, set[name]
		sets = append(sets, alias+" = "+val)
	}
	expr := "SET " + strings.Join(sets, ", ")
	if len(remove) > 0 {
		expr += " REMOVE " + strings.Join(remove, ", ")
	}
	in := &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: key(runPK(ws, id), "RUN"), UpdateExpression: aws.String(expr),
		ConditionExpression:       aws.String("#st = :running"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: vals,
		ReturnValues:              types.ReturnValueAllNew, ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	out, err := st.db.UpdateItem(ctx, in)
	if err != nil {
		if item, ok := failedCondition(err); ok {
			return st.notRunning(id, item)
		}
		return Run{}, fmt.Errorf("finish run %s: %w", id, err)
	}
	run, err := decodeRun(out.Attributes)
	if err != nil {
		return run, err
	}
	if err := st.addReply(ctx, ws, id, f); err != nil {
		return Run{}, err
	}
	return run, nil
}

// addReply stores the reply of turn's end f of run id, if it has one, unless it is there: the
// second write of FinishRunWith and FinishHeld.
func (st *Store) addReply(ctx context.Context, ws, id string, f Finish) error {
	if f.Reply == nil {
		return nil
	}
	if _, err := st.AddMessage(ctx, ws, f.ThreadID, *f.Reply); err != nil {
		return fmt.Errorf("finish run %s: %w", id, err)
	}
	return nil
}

// finishing returns what the turn's end f at now sets on run id's item (by attribute name) and
// what it removes from it: FinishRunWith's change, and FinishHeld's put of a held run.
func finishing(id string, f Finish, now time.Time) (map[string]types.AttributeValue, []string, error) {
	set := map[string]types.AttributeValue{"status": s(f.Status), "updated_at": ts(now), "result_text": s(""), "error": s(f.Error)}
	if f.Result != nil {
		set["result_text"] = s(f.Result.Text)
	}
	switch f.Status {
	case RunCompleted, RunFailed:
		set["completed_at"] = ts(now)
	case RunWaitingApproval:
		if f.Approval == nil || f.Approval.Prompt == "" {
			return nil, nil, fmt.Errorf("finish run %s: waiting_approval needs a prompt", id)
		}
		if f.Approval.ID == "" {
			return nil, nil, fmt.Errorf("finish run %s: waiting_approval needs a request id", id)
		}
		set["approval_prompt"], set["approval_options"], set["approval_at"] = s(f.Approval.Prompt), strList(f.Approval.Options), ts(now)
		set["approval_id"], set["approval_approvers"], set["approval_expires_at"] = s(f.Approval.ID), strList(f.Approval.Approvers), ts(f.Approval.ExpiresAt)
	default:
		return nil, nil, fmt.Errorf("finish run %s: bad status %q", id, f.Status)
	}
	if f.Reply != nil {
		if f.ThreadID == "" {
			return nil, nil, fmt.Errorf("finish run %s: a reply needs the thread id", id)
		}
		set["reply_id"], set["reply_at"] = s(f.Reply.ID), ts(f.Reply.CreatedAt)
	}
	if f.SessionStarted {
		set["session_started"] = &types.AttributeValueMemberBOOL{Value: true}
	}
	var remove []string
	if f.EventsLead != "" {
		set["events_lead"] = s(f.EventsLead)
	} else {
		remove = append(remove, "events_lead")
	}
	if f.Status == RunWaitingApproval {
		remove = append(remove, "decision", "decided_by", "decided_option", "decision_comment", "decided_at")
	}
	return set, remove, nil
}

// EnsureReply stores a completed or waiting run's latest reply message unless it is there: the
// part of FinishRunWith a turn may have died before. Whoever settles the run after a redelivery or
// a lost race calls it. A run whose reply was stored with its change (before reply_at) has none to
// store.
func (st *Store) EnsureReply(ctx context.Context, r Run) error {
	if r.ReplyID == "" || r.ReplyAt.IsZero() || r.Result == nil || (r.Status != RunCompleted && r.Status != RunWaitingApproval) {
		return nil
	}
	_, err := st.AddMessage(ctx, r.WorkspaceID, r.ThreadID, Message{
		ID: r.ReplyID, Direction: "out", Source: "agent", Text: r.Result.Text, RunID: r.ID, CreatedAt: r.ReplyAt,
	})
	return err
}

func (st *Store) notRunning(id string, item map[string]types.AttributeValue) (Run, error) {
	cur, err := decodeRun(item)
	if err != nil {
		return Run{}, fmt.Errorf("finish run %s: %w", id, err)
	}
	return cur, apierr.New(apierr.Conflict, "run is %s", cur.Status)
}

// Decision is a human's answer to a run waiting for approval.
type Decision struct {
	RequestID string // the approval request it answers ("" only for a request stored without id)
	Approved  bool
	By        string
	Option    string
	Comment   string
}

// DecideRun records the decision on a run that waits for the approval request d answers:
// approved runs are queued to continue, denied ones end as denied. A run that does not wait, or
// waits for another request, is a Conflict error (with the run as it is).
func (st *Store) DecideRun(ctx context.Context, ws, id string, d Decision) (Run, error) {
	now := st.now().UTC()
	status, decision, set := RunQueued, DecisionApproved, ""
	if !d.Approved {
		status, decision, set = RunDenied, DecisionDenied, ", completed_at = :now"
	}
	vals := map[string]types.AttributeValue{
		":st": s(status), ":now": ts(now), ":dec": s(decision), ":by": s(d.By), ":opt": s(d.Option), ":cmt": s(d.Comment),
	}
	cond := "attribute_not_exists(approval_id)"
	if d.RequestID != "" {
		cond, vals[":req"] = "approval_id = :req", s(d.RequestID)
	}
	return st.transition(ctx, ws, id, []string{RunWaitingApproval}, &dynamodb.UpdateItemInput{
		UpdateExpression:          aws.String("SET #st = :st, updated_at = :now, decision = :dec, decided_by = :by, decided_option = :opt, decision_comment = :cmt, decided_at = :now" + set),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeValues: vals,
	})
}

// CancelRun cancels a run that has not ended. A run that has ended is a Conflict error.
func (st *Store) CancelRun(ctx context.Context, ws, id, by string) (Run, error) {
	now := st.now().UTC()
	return st.transition(ctx, ws, id, []string{RunQueued, RunRunning, RunWaitingApproval}, &dynamodb.UpdateItemInput{
		UpdateExpression: aws.String("SET #st = :st, updated_at = :now, completed_at = :now, cancelled_by = :by"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":st": s(RunCancelled), ":now": ts(now), ":by": s(by),
		},
	})
}

// UncountStart gives back the first attempt of a run created started (NewRun.Start) whose turn
// failed before its agent was called (its opening events could not be appended): the retry's
// StartRun counts it again, so the agent keeps every attempt of its schedule. It changes only a
// run still running at its first attempt.
func (st *Store) UncountStart(ctx context.Context, ws, id string) error {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: key(runPK(ws, id), "RUN"),
		UpdateExpression:          aws.String("SET attempts = :zero"),
		ConditionExpression:       aws.String("#st = :running AND attempts = :one"),
		ExpressionAttributeNames:  map[string]string{"#st": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":running": s(RunRunning), ":one": n(1), ":zero": n(0)},
	})
	var cf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &cf) {
		return fmt.Errorf("give back the start of run %s: %w", id, err)
	}
	return nil
}

// AbandonRun fails a run that is still queued: it could not be queued for the worker.
func (st *Store) AbandonRun(ctx context.Context, ws, id, reason string) (Run, error) {
	now := st.now().UTC()
	return st.transition(ctx, ws, id, []string{RunQueued}, &dynamodb.UpdateItemInput{
		UpdateExpression: aws.String("SET #st = :st, updated_at = :now, completed_at = :now, #err = :err"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":st": s(RunFailed), ":now": ts(now), ":err": s(reason),
		},
	})
}

// transition applies in (its update expression and values, and a condition of its own if it
// sets one) to a run whose status is one of from.
func (st *Store) transition(ctx context.Context, ws, id string, from []string, in *dynamodb.UpdateItemInput) (Run, error) {
	own := ""
	if in.ConditionExpression != nil {
		own = " AND (" + *in.ConditionExpression + ")"
	}
	cond := "#st IN ("
	for i, f := range from {
		name := fmt.Sprintf(":from%d", i)
		in.ExpressionAttributeValues[name] = s(f)
		if i > 0 {
			cond += ", "
		}
		cond += name
	}
	in.TableName, in.Key = &st.table, key(runPK(ws, id), "RUN")
	in.ConditionExpression = aws.String("attribute_exists(pk) AND " + cond + ")" + own)
	in.ExpressionAttributeNames = map[string]string{"#st": "status"}
	if strings.Contains(*in.UpdateExpression, "#err") {
		in.ExpressionAttributeNames["#err"] = "error"
	}
	in.ReturnValues = types.ReturnValueAllNew
	in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	out, err := st.db.UpdateItem(ctx, in)
	if err != nil {
		if item, ok := failedCondition(err); ok {
			cur, derr := decodeRun(item)
			if derr != nil {
				return Run{}, derr
			}
			return cur, apierr.New(apierr.Conflict, "run is %s", cur.Status)
		}
		var cf *types.ConditionalCheckFailedException
		if errors.As(err, &cf) {
			return Run{}, apierr.New(apierr.NotFound, "run not found")
		}
		return Run{}, fmt.Errorf("update run %s: %w", id, err)
	}
	return decodeRun(out.Attributes)
}

func decodeRun(item map[string]types.AttributeValue) (Run, error) {
	r := Run{
		ID:          str(item, "run_id"),
		WorkspaceID: str(item, "workspace_id"),
		ThreadID:    str(item, "thread_id"),
		MessageID:   str(item, "message_id"),
		Status:      str(item, "status"),
		Error:       str(item, "error"),
		Adapter:     str(item, "adapter"),
		User:        str(item, "user"),
		Agent:       str(item, "agent"),
		ReplyURL:    str(item, "reply_url"),
		CancelledBy: str(item, "cancelled_by"),
		Slot:        SlotRef{PK: str(item, "slot_pk"), SK: str(item, "slot_sk")},
		ReplyID:     str(item, "reply_id"),
		ReplyAt:     tm(item, "reply_at"),
		Approvers:   strs(item, "approvers"),
	}
	if r.ID == "" {
		return Run{}, errors.New("decode run: item has no run_id")
	}
	r.Attempts = int(num(item, "attempts"))
	r.SessionStarted = boolean(item, "session_started")
	r.EventsLead = str(item, "events_lead")
	r.CreatedAt = tm(item, "created_at")
	r.UpdatedAt = tm(item, "updated_at")
	if t := tm(item, "started_at"); !t.IsZero() {
		r.StartedAt = &t
	}
	if t := tm(item, "completed_at"); !t.IsZero() {
		r.CompletedAt = &t
	}
	if t := str(item, "result_text"); t != "" || r.Status == RunCompleted {
		r.Result = &Result{Text: t}
	}
	if p := str(item, "approval_prompt"); p != "" {
		a := &Approval{ID: str(item, "approval_id"), Prompt: p, Options: strs(item, "approval_options"), Approvers: strs(item, "approval_approvers"),
			ExpiresAt: tm(item, "approval_expires_at"), RequestedAt: tm(item, "approval_at"),
			Decision: str(item, "decision"), Option: str(item, "decided_option"), DecidedBy: str(item, "decided_by"), Comment: str(item, "decision_comment")}
		if t := tm(item, "decided_at"); !t.IsZero() {
			a.DecidedAt = &t
		}
		r.Approval = a
	}
	return r, nil
}

// strs returns a list-of-strings attribute.
func strs(item map[string]types.AttributeValue, name string) []string {
	var out []string
	if l, ok := item[name].(*types.AttributeValueMemberL); ok {
		for _, v := range l.Value {
			if sv, ok := v.(*types.AttributeValueMemberS); ok {
				out = append(out, sv.Value)
			}
		}
	}
	return out
}

// GetThread returns a thread of the workspace, or NotFound.
func (st *Store) GetThread(ctx context.Context, ws, id string) (Thread, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: key(threadPK(ws, id), "META"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Thread{}, fmt.Errorf("get thread %s: %w", id, err)
	}
	if len(out.Item) == 0 {
		return Thread{}, apierr.New(apierr.NotFound, "thread not found")
	}
	it := out.Item
	if sh := int(num(it, "log_shard")); sh >= 0 && sh < MaxShards {
		st.logs.threads.put(ws, id, sh) // the thread's events go there: no read when they are appended
	}
	_, started := it["session_started_at"]
	return Thread{
		ID: str(it, "thread_id"), WorkspaceID: str(it, "workspace_id"), Channel: str(it, "channel"),
		ExternalID: str(it, "external_id"), SessionStarted: started, SessionRun: str(it, "session_run"), CreatedAt: tm(it, "created_at"),
	}, nil
}

// MarkSessionStarted records that the agent has had session_start for the thread.
func (st *Store) MarkSessionStarted(ctx context.Context, ws, id string) error {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: key(threadPK(ws, id), "META"),
		UpdateExpression:          aws.String("SET session_started_at = if_not_exists(session_started_at, :now)"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": ts(st.now())},
	})
	if err != nil {
		return fmt.Errorf("mark session of thread %s started: %w", id, err)
	}
	return nil
}

// threadNames are the attribute names of a thread's update; #ttl only when it sets one.
func threadNames(ttl bool) map[string]string {
	if ttl {
		return map[string]string{"#ch": "channel", "#ttl": "ttl"}
	}
	return map[string]string{"#ch": "channel"}
}

// AddMessage stores a message on a thread unless one with the same id and time is there. Give a
// retried write the same CreatedAt.
func (st *Store) AddMessage(ctx context.Context, ws, thread string, m Message) (bool, error) {
	put := st.messagePut(ws, thread, m, st.now().UTC())
	_, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: put.TableName, Item: put.Item, ConditionExpression: put.ConditionExpression})
	var cf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &cf):
		return false, nil
	}
	return false, fmt.Errorf("add message %s: %w", m.ID, err)
}

// ListMessages returns the thread's latest limit messages, oldest first.
func (st *Store) ListMessages(ctx context.Context, ws, thread string, limit int) ([]Message, error) {
	out, err := st.db.Query(ctx, &dynamodb.QueryInput{
		TableName:              &st.table,
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :msg)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": s(threadPK(ws, thread)), ":msg": s("MSG#"),
		},
		ScanIndexForward: aws.Bool(false),
		Limit:            aws.Int32(int32(max(limit, 1))),
		ConsistentRead:   aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("list messages of thread %s: %w", thread, err)
	}
	msgs := make([]Message, 0, len(out.Items))
	for _, it := range out.Items {
		m := Message{
			ID: str(it, "message_id"), Direction: str(it, "direction"), Source: str(it, "source"), Text: str(it, "text"),
			User: str(it, "user"), RunID: str(it, "run_id"), CreatedAt: tm(it, "created_at"),
		}
		if d := str(it, "data"); d != "" {
			m.Data = json.RawMessage(d)
		}
		msgs = append(msgs, m)
	}
	slices.Reverse(msgs)
	return msgs, nil
}
