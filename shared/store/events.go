package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/shared/awscfg"
)

// Event is an immutable record in a workspace's ordered log. Cursor is its position: 1, 2, 3, …
// An event with a higher cursor can be visible before one with a lower cursor, and a cursor whose
// append died or moved its event stays empty: readers wait at a missing cursor (see the steps of
// an append below).
type Event struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	WorkspaceID string          `json:"workspace_id"`
	Cursor      int64           `json:"cursor"`
	CreatedAt   time.Time       `json:"created_at"`
	Data        json.RawMessage `json:"data"`
	// Trace is the traceparent of the webhook that caused the event (trace.Parse-valid, 55 bytes)
	// or "": stored on the item so that the fan-out and the deliveries continue the trace.
	Trace string `json:"-"`
	// Unread says nobody reads the index of the event's thread (only the web widget's stream reads
	// one): the append writes no thread copy. Not stored.
	Unread bool `json:"-"`
	// Shard is the shard of the workspace's log the event is in (see shards.go): set by an
	// append and by a read. Not stored on the item (its key says it).
	Shard int `json:"-"`
	// Spread says the event, when no event of its group names a thread, may go to any shard
	// (SaaS webhooks recorded as events: their senders promise no order among them). Not stored.
	Spread bool `json:"-"`
}

// KindEvent marks event-log items, so a DynamoDB stream filter can select them.
const KindEvent = "event"

// How long the marker that makes an event id unique is kept: longer than any SQS redelivery.
const eventIDRetention = 30 * 24 * time.Hour

// maxAppendTries bounds how often an append moves an event whose reservation went stale.
const maxAppendTries = 100

func eventSK(cursor int64) string { return fmt.Sprintf("%019d", cursor) }
func markerKey(ws, id string) map[string]types.AttributeValue {
	return key("WS#"+ws+"#EVID#"+id, "EVID")
}

// AppendEvent appends e to its workspace's log and returns it with its cursor and time. The
// append is idempotent by e.ID: appending an id again returns the event already in the log.
func (st *Store) AppendEvent(ctx context.Context, e Event) (Event, error) {
	evs, err := st.AppendEvents(ctx, []Event{e})
	if err != nil {
		return Event{}, err
	}
	return evs[0], nil
}

// An append is not a transaction (a transaction bills every item twice and serialises a
// workspace's appends on its counter). It is three steps, each a plain write:
//
//  1. reserve: one atomic ADD on the workspace's counter reserves a run of cursors; no condition,
//     so concurrent appenders never retry;
//  2. claim: one id marker per group of events (put if absent, keyed by the group's first event
//     id) records each event's cursor and time, so an event is in the log at most once: a retry
//     finds the marker and writes at the cursors there;
//  3. write: the event items, then their thread copies in cursor order.
//
// A reserved cursor is visible only once written, and a writer may die between the steps. Readers
// of the dense log (eventstream) never pass a missing cursor until the first event after it is
// GapGrace (60 s) old. Writers keep to the other side of that bound: an event is written at its
// cursor only if the write starts within writeWindow of the time taken before the cursor was
// reserved (its created_at). That write is one SDK call, which may keep trying until
// awscfg.MaxAttempts attempts of awscfg.AttemptTimeout each (and the backoffs between them) are
// spent, and a late attempt may still be applied: so a reservation is given up only once it is
// older than staleAfter, which covers all of that plus a margin for clocks. The retry that finds
// such a reservation reserves a new cursor and moves the event's entry in its marker there
// (conditionally on the old one), so a late write can never land after the event was moved. The
// reader's side: the event E after a missing cursor C reserved after C, and before E.created_at +
// writeWindow, so C's created_at is earlier than that, and C's last write lands before
// E.created_at + writeWindow + (staleAfter - margin) = E.created_at + 51.5 s, inside GapGrace
// with 8.5 s to spare for clocks.
// MaxWriteLag bounds how long after its created_at an event item can land in the table: its write
// is sent within writeWindow, and that last attempt ends within awscfg.AttemptTimeout. A reader of
// the stream's arrival times (the FanoutDLQ replay) widens its window by it.
const MaxWriteLag = writeWindow + awscfg.AttemptTimeout

const (
	writeWindow = 10 * time.Second
	staleAfter  = writeWindow + awscfg.MaxAttempts*(awscfg.AttemptTimeout+awscfg.MaxBackoff) + 5*time.Second // 46.5 s
)

// maxEventData bounds an event's data: the event item must stay within DynamoDB's 400 KB, and an
// append that would fail on it fails before it reserves a cursor (which would leave a gap).
const maxEventData = 390_000

// AppendEvents appends events of one workspace, in order, as one contiguous run of cursors when
// none was appended before (see the steps above). The events are one group: one id marker, found
// by the first event's id, records where each of them is; the events a found marker does not hold
// are looked up, or appended, as a group led by the first of them. So an append is idempotent by
// its events' ids as long as an event appended again has the same events before it in its group
// as when it was first appended: repeat a group as it was, or with new events after it (the
// worker's groups are each derived from one message, or from a run's state led by its reply's
// message.sent). An event appended again after other events, or without some of those it had
// before it, would be appended twice. An id named twice in one group is refused.
func (st *Store) AppendEvents(ctx context.Context, evs []Event) ([]Event, error) {
	return st.AppendEventsAfter(ctx, "", evs)
}

// AppendEventsAfter is AppendEvents for events that may have been appended before as the end of
// the group led by the event with id lead (that group's first events, then evs): those its marker
// holds are where it records them, and the others are looked up, or appended, as a group of their
// own, led by the first of them. So a group that was appended at once may be repeated in parts: its
// first events as a group, then the rest after it. lead must be the id the group's marker is keyed
// by (the first event of the group as it was appended): an event appended before in a group led by
// another is not found through lead. An empty lead is AppendEvents.
func (st *Store) AppendEventsAfter(ctx context.Context, lead string, evs []Event) ([]Event, error) {
	out, err := st.appendGroups(ctx, [][]Event{evs}, []string{lead})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// entry is one event of an append and where its id marker records it.
type entry struct {
	e Event
	m mark
}

// mark is where an event's cursor and time are recorded: the id marker of its group's first event.
// A group of one's marker has them in cursor and created_at (the form of every marker before
// groups); a larger group's in the lists cursors and ats, at the event's position in ids.
type mark struct {
	id    string // the marker's event id
	pos   int
	multi bool
}

// group is the entries (indexes, in order) that one id marker holds: a caller's events, or those
// of them that the marker of their first event does not hold.
type group []int

// appendGroups appends the events of calls of one workspace (each an AppendEvents group: a
// LogWriter's batch) with one reservation; leads[i] is call i's lead (AppendEventsAfter), if any.
func (st *Store) appendGroups(ctx context.Context, calls [][]Event, leads []string) ([][]Event, error) {
	var es []entry
	var groups []group
	for _, evs := range calls {
		if err := checkEvents(evs); err != nil {
			return nil, err
		}
		if evs[0].WorkspaceID != calls[0][0].WorkspaceID {
			return nil, errors.New("append events: one workspace at a time")
		}
		g := make(group, len(evs))
		for i, e := range evs {
			g[i] = len(es)
			es = append(es, entry{e: e})
		}
		groups = append(groups, g)
	}
	ws := calls[0][0].WorkspaceID
	// Each step's requests go out together (the writes: those of different groups): an append is
	// three round trips, and one more per further event of its largest group.
	left := make([]group, len(groups)) // what each group's lookup left to claim
	if err := each(len(groups), func(i int) error {
		var err error
		left[i], err = st.lookupAfter(ctx, leads[i], es, groups[i])
		return err
	}); err != nil {
		return nil, err
	}
	var fresh []group // the events not appended before, in order
	count := 0
	for _, g := range left {
		if len(g) > 0 {
			fresh, count = append(fresh, g), count+len(g)
		}
	}
	if count > 0 {
		if err := st.shardsOf(ctx, es, fresh); err != nil {
			return nil, err
		}
		counts := map[int]int{} // events to reserve, per shard
		for _, g := range fresh {
			for _, i := range g {
				counts[es[i].e.Shard]++
			}
		}
		shards := slices.Sorted(maps.Keys(counts))
		at := st.now().UTC()
		lasts := make([]int64, len(shards))
		if err := each(len(shards), func(k int) error {
			var err error
			lasts[k], err = st.reserve(ctx, ws, shards[k], counts[shards[k]])
			return err
		}); err != nil {
			return nil, err
		}
		next := make(map[int]int64, len(shards)) // the next cursor to hand out, per shard
		for k, sh := range shards {
			next[sh] = lasts[k] - int64(counts[sh]) + 1
		}
		for _, g := range fresh {
			for _, i := range g {
				sh := es[i].e.Shard
				es[i].e.Cursor, es[i].e.CreatedAt = next[sh], at
				next[sh]++
			}
		}
		// Another appender of the same ids may have claimed them first: its claim wins.
		if err := each(len(fresh), func(j int) error { return st.claim(ctx, es, fresh[j]) }); err != nil {
			return nil, err
		}
	}
	// The groups together, each group's events one after another: an event is written only once
	// the events before it in its group are in the log, and never at a cursor before theirs (see
	// place). So a group stays in order even when its appender dies half way and the retry moves
	// what it had not written (the worker's groups put a run's opening events before its closing
	// ones), and the table's stream, which the fan-out reads and FIFO subscriptions follow, has a
	// thread's events in the log's order. Then the thread copies one by one in cursor order, so
	// that a thread's reader (who does not wait at gaps) never sees a later event of the thread
	// before an earlier.
	if err := each(len(groups), func(k int) error {
		after := map[int]int64{} // per shard: a moved event stays in its shard
		for _, i := range groups[k] {
			sh := es[i].e.Shard
			if err := st.place(ctx, &es[i], after[sh]); err != nil {
				return err
			}
			after[sh] = max(after[sh], es[i].e.Cursor)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	byCursor := make([]Event, len(es))
	for i := range es {
		byCursor[i] = es[i].e
	}
	// es is in the callers' order: events appended before, or moved by place, may have cursors
	// out of that order.
	slices.SortFunc(byCursor, func(a, b Event) int { return cmp.Or(cmp.Compare(a.Shard, b.Shard), cmp.Compare(a.Cursor, b.Cursor)) })
	for _, e := range byCursor {
		if put := threadIndexPut(&st.table, e); put != nil {
			// An event found in the log (a repeat) is indexed under the thread its caller's data
			// names, which may not be the thread it was appended for (a repost under the same
			// idempotency key naming another thread): only a thread of the event's shard may index
			// it, since a thread's index holds its shard's cursors.
			sh, err := st.threadShard(ctx, e.WorkspaceID, ThreadOf(e))
			if err != nil {
				return nil, err
			}
			if sh != e.Shard {
				continue
			}
			st.expire(put.Item, e.CreatedAt)
			if _, err := st.db.PutItem(ctx, put); err != nil {
				return nil, fmt.Errorf("index event %s under its thread: %w", e.ID, err)
			}
		}
	}
	out := make([][]Event, len(groups))
	for i, g := range groups {
		out[i] = make([]Event, len(g))
		for j, k := range g {
			out[i][j] = es[k].e
		}
	}
	return out, nil
}

// each runs f(0) … f(n-1) concurrently and returns their errors.
func each(n int, f func(i int) error) error {
	if n == 1 {
		return f(0)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// reserve adds n to the counter of the workspace log's shard and returns the last cursor reserved.
func (st *Store) reserve(ctx context.Context, ws string, shard, count int) (int64, error) {
	if err := st.ensureMark(ctx, ws, shard); err != nil {
		return 0, err
	}
	out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &st.table,
		Key:                       seqKey(ws, shard),
		UpdateExpression:          aws.String("ADD #seq :n"),
		ExpressionAttributeNames:  map[string]string{"#seq": "seq"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": n(int64(count))},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, fmt.Errorf("reserve %d cursors of %s shard %d: %w", count, ws, shard, err)
	}
	return num(out.Attributes, "seq"), nil
}

// lookupAfter is lookup for g after the group led by event id lead: it first records in es what
// lead's marker holds of g, then looks up the rest.
func (st *Store) lookupAfter(ctx context.Context, lead string, es []entry, g group) (group, error) {
	if lead == "" || lead == es[g[0]].e.ID {
		return st.lookup(ctx, es, g)
	}
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: markerKey(es[g[0]].e.WorkspaceID, lead), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("read event marker %s: %w", lead, err)
	}
	rest := g
	if len(out.Item) > 0 {
		if rest, err = held(es, g, lead, out.Item); err != nil {
			return nil, err
		}
	}
	if len(rest) == 0 {
		return nil, nil
	}
	return st.lookup(ctx, es, rest)
}

// lookup reads g's marker and records what it holds in es; it returns what is left to claim: g,
// the events of g its marker does not hold (looked up in turn, as a group led by the first of
// them), or nothing.
func (st *Store) lookup(ctx context.Context, es []entry, g group) (group, error) {
	e := es[g[0]].e
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: markerKey(e.WorkspaceID, e.ID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("read event marker %s: %w", e.ID, err)
	}
	if len(out.Item) == 0 {
		return g, nil
	}
	rest, err := fromMarker(es, g, out.Item)
	if err != nil || len(rest) == 0 {
		return nil, err
	}
	return st.lookup(ctx, es, rest)
}

// fromMarker sets the entries of g that the marker item of its first event holds, and returns the
// others (a marker of one holds only its own event).
func fromMarker(es []entry, g group, item map[string]types.AttributeValue) (group, error) {
	first := es[g[0]].e.ID
	if _, ok := item["ids"].(*types.AttributeValueMemberL); !ok {
		es[g[0]].m = mark{id: first}
		return g[1:], es[g[0]].at(item)
	}
	rest, err := held(es, g, first, item)
	if err == nil && len(rest) > 0 && rest[0] == g[0] {
		return nil, fmt.Errorf("event marker %s does not hold its own event", first)
	}
	return rest, err
}

// held sets the entries of g that the marker item of the group led by event id lead holds in its
// lists, and returns the others (all of g when it is a marker of one: it holds only lead).
func held(es []entry, g group, lead string, item map[string]types.AttributeValue) (group, error) {
	ids, ok := item["ids"].(*types.AttributeValueMemberL)
	if !ok {
		return g, nil
	}
	var rest group
	for _, i := range g {
		pos := slices.IndexFunc(ids.Value, func(v types.AttributeValue) bool {
			sv, ok := v.(*types.AttributeValueMemberS)
			return ok && sv.Value == es[i].e.ID
		})
		if pos < 0 {
			rest = append(rest, i)
			continue
		}
		es[i].m = mark{id: lead, pos: pos, multi: true}
		if err := es[i].at(item); err != nil {
			return nil, err
		}
	}
	return rest, nil
}

// at sets the entry's cursor and time from its marker item.
func (en *entry) at(item map[string]types.AttributeValue) error {
	if !en.m.multi {
		en.e.Cursor, en.e.CreatedAt, en.e.Shard = num(item, "cursor"), tm(item, "created_at"), int(num(item, "shard"))
		if en.e.Cursor == 0 || en.e.CreatedAt.IsZero() || en.e.Shard < 0 || en.e.Shard >= MaxShards {
			return fmt.Errorf("event marker %s: no cursor, or a shard out of range", en.m.id)
		}
		return nil
	}
	en.e.Shard = 0 // absent: every event of the group is in shard 0
	if shs, ok := item["shards"].(*types.AttributeValueMemberL); ok {
		v, ok := types.AttributeValue(nil), false
		if en.m.pos < len(shs.Value) {
			v = shs.Value[en.m.pos]
		}
		sh, isN := v.(*types.AttributeValueMemberN)
		if isN {
			en.e.Shard, _ = strconv.Atoi(sh.Value)
			ok = en.e.Shard >= 0 && en.e.Shard < MaxShards
		}
		if !ok {
			return fmt.Errorf("event marker %s: bad shard at %d", en.m.id, en.m.pos)
		}
	}
	cs, ok1 := item["cursors"].(*types.AttributeValueMemberL)
	ats, ok2 := item["ats"].(*types.AttributeValueMemberL)
	if !ok1 || !ok2 || en.m.pos >= len(cs.Value) || en.m.pos >= len(ats.Value) {
		return fmt.Errorf("event marker %s: no cursor at %d", en.m.id, en.m.pos)
	}
	c, ok1 := cs.Value[en.m.pos].(*types.AttributeValueMemberN)
	t, ok2 := ats.Value[en.m.pos].(*types.AttributeValueMemberS)
	if !ok1 || !ok2 {
		return fmt.Errorf("event marker %s: bad cursor at %d", en.m.id, en.m.pos)
	}
	cursor, err1 := strconv.ParseInt(c.Value, 10, 64)
	at, err2 := time.Parse(time.RFC3339Nano, t.Value)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("event marker %s: cursor at %d: %w", en.m.id, en.m.pos, err)
	}
	en.e.Cursor, en.e.CreatedAt = cursor, at
	return nil
}

// claim writes g's marker unless there is one; the entries keep the cursors the marker records.
func (st *Store) claim(ctx context.Context, es []entry, g group) error {
	first := es[g[0]].e
	item := markerKey(first.WorkspaceID, first.ID)
	item["cursor"] = n(first.Cursor)
	item["created_at"] = ts(first.CreatedAt)
	item["ttl"] = n(first.CreatedAt.Add(eventIDRetention).Unix())
	multi := len(g) > 1
	sharded := false // some event is in a shard other than 0: the marker says which
	for _, i := range g {
		sharded = sharded || es[i].e.Shard != 0
	}
	if !multi && sharded {
		item["shard"] = n(int64(first.Shard))
	}
	if multi {
		ids, cs, ats, shs := make([]types.AttributeValue, len(g)), make([]types.AttributeValue, len(g)), make([]types.AttributeValue, len(g)), make([]types.AttributeValue, len(g))
		for j, i := range g {
			ids[j], cs[j], ats[j], shs[j] = s(es[i].e.ID), n(es[i].e.Cursor), ts(es[i].e.CreatedAt), n(int64(es[i].e.Shard))
		}
		item["ids"], item["cursors"], item["ats"] = &types.AttributeValueMemberL{Value: ids}, &types.AttributeValueMemberL{Value: cs}, &types.AttributeValueMemberL{Value: ats}
		if sharded {
			item["shards"] = &types.AttributeValueMemberL{Value: shs}
		}
	}
	for j, i := range g {
		es[i].m = mark{id: first.ID, pos: j, multi: multi}
	}
	_, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &st.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		// Another appender of these ids claimed them after we looked: its cursors win, ours stay
		// unwritten (gaps readers pass after GapGrace).
		if len(cf.Item) == 0 {
			return fmt.Errorf("claim event %s: marker vanished", first.ID)
		}
		rest, err := fromMarker(es, g, cf.Item)
		if err != nil || len(rest) == 0 {
			return err
		}
		// The events its marker does not hold are claimed as a group of their own, at the
		// cursors reserved for them, unless the other appender reserved the events it holds
		// after those (in their shard): then at new cursors, after them, so that the group
		// stays in order.
		top := map[int]int64{}
		for _, i := range g {
			if !slices.Contains(rest, i) {
				top[es[i].e.Shard] = max(top[es[i].e.Shard], es[i].e.Cursor)
			}
		}
		byShard := map[int][]int{}
		for _, i := range rest {
			byShard[es[i].e.Shard] = append(byShard[es[i].e.Shard], i)
		}
		for _, sh := range slices.Sorted(maps.Keys(byShard)) {
			idx := byShard[sh]
			if es[idx[0]].e.Cursor >= top[sh] {
				continue
			}
			at := st.now().UTC()
			last, err := st.reserve(ctx, first.WorkspaceID, sh, len(idx))
			if err != nil {
				return err
			}
			for j, i := range idx {
				es[i].e.Cursor, es[i].e.CreatedAt = last-int64(len(idx)-1-j), at
			}
		}
		return st.claim(ctx, es, rest)
	}
	if err != nil {
		return fmt.Errorf("claim event %s: %w", first.ID, err)
	}
	return nil
}

// place makes sure en's event is written at the cursor its marker records: it writes it while the
// reservation is fresh; once the reservation is stale and the event is not there, it moves the
// event's entry in the marker to a new cursor and writes it there. An event whose cursor is not
// after after (where the events before it in its group are: one of them was moved) is not written
// there either: it is moved too, once its reservation is stale.
func (st *Store) place(ctx context.Context, en *entry, after int64) error {
	e := &en.e
	for try := 0; try < maxAppendTries; try++ {
		end := e.CreatedAt.Add(writeWindow)
		if left := end.Sub(st.now()); left > 0 && e.Cursor > after {
			// No request of the write (the SDK retries a stalled one) is sent after the window:
			// a put sent later could land after another appender moved the event, twice in the log.
			wctx, cancel := context.WithTimeout(ctx, left)
			err := st.writeEvent(wctx, *e)
			cancel()
			// A write that fails as the window ends (a slow put, or one started late in the
			// window: the client ends its calls awscfg.Reserve before their deadline) is not an
			// error yet: whether the event is there is looked up, as by any writer after the window.
			if err == nil || ctx.Err() != nil || st.now().Before(end.Add(-awscfg.Reserve)) {
				return err
			}
		}
		written, err := st.eventAt(ctx, e.WorkspaceID, e.Shard, e.Cursor, e.ID)
		if err != nil || written {
			return err
		}
		// Not written, and too late to write there: wait until the reservation's writer, if it
		// lives, can no longer write either, look again, then move.
		if wait := e.CreatedAt.Add(staleAfter).Sub(st.now()); wait > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("append event %s: %w", e.ID, ctx.Err())
			case <-time.After(wait):
			}
			continue
		}
		at := st.now().UTC()
		c, err := st.reserve(ctx, e.WorkspaceID, e.Shard, 1)
		if err != nil {
			return err
		}
		set, cond, names := "SET #c = :new, created_at = :at", "#c = :old", map[string]string{"#c": "cursor"}
		if en.m.multi {
			p := strconv.Itoa(en.m.pos)
			set, cond = "SET #cs["+p+"] = :new, #ats["+p+"] = :at", "#cs["+p+"] = :old"
			names["#cs"], names["#ats"] = "cursors", "ats"
			if en.m.pos == 0 { // the first event's cursor is also where a marker of one keeps it
				set += ", #c = :new, created_at = :at"
			} else {
				delete(names, "#c")
			}
		}
		_, err = st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                           &st.table,
			Key:                                 markerKey(e.WorkspaceID, en.m.id),
			UpdateExpression:                    aws.String(set),
			ConditionExpression:                 aws.String(cond),
			ExpressionAttributeNames:            names,
			ExpressionAttributeValues:           map[string]types.AttributeValue{":new": n(c), ":old": n(e.Cursor), ":at": ts(at)},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		var cf *types.ConditionalCheckFailedException
		switch {
		case errors.As(err, &cf):
			if err := en.at(cf.Item); err != nil { // another retry moved it first: follow it
				return err
			}
		case err != nil:
			return fmt.Errorf("move event %s: %w", e.ID, err)
		default:
			e.Cursor, e.CreatedAt = c, at
		}
	}
	return fmt.Errorf("append event %s: still not placed after %d tries", e.ID, maxAppendTries)
}

// writeEvent puts the event item (if absent: a retry within the window finds it there).
func (st *Store) writeEvent(ctx context.Context, e Event) error {
	item := key(EventPK(e.WorkspaceID, e.Shard), eventSK(e.Cursor))
	item["kind"] = s(KindEvent) // the stream filter of the fan-out selects these items
	item["event_id"] = s(e.ID)
	item["type"] = s(e.Type)
	item["created_at"] = ts(e.CreatedAt)
	item["data"] = s(string(e.Data))
	if len(e.Trace) == 55 { // a traceparent, for the fan-out and the deliveries
		item["trace"] = s(e.Trace)
	}
	st.expire(item, e.CreatedAt)
	_, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")})
	var cf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &cf) {
		return fmt.Errorf("write event %s: %w", e.ID, err)
	}
	return nil
}

// eventAt reports whether the event with id is at cursor.
func (st *Store) eventAt(ctx context.Context, ws string, shard int, cursor int64, id string) (bool, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: key(EventPK(ws, shard), eventSK(cursor)), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return false, fmt.Errorf("read event %s: %w", id, err)
	}
	return str(out.Item, "event_id") == id, nil
}

// checkEvents checks an append of evs, and gives events without data an empty object.
func checkEvents(evs []Event) error {
	if len(evs) == 0 || len(evs) > maxGroupEvents {
		return fmt.Errorf("append events: %d events (1 to %d at a time)", len(evs), maxGroupEvents)
	}
	ws := evs[0].WorkspaceID
	seen := make(map[string]bool, len(evs))
	for i := range evs {
		if evs[i].ID == "" || evs[i].Type == "" || evs[i].WorkspaceID != ws || ws == "" {
			return errors.New("append events: id, type and one workspace are required")
		}
		if seen[evs[i].ID] {
			return fmt.Errorf("append events: event %s is named twice", evs[i].ID)
		}
		seen[evs[i].ID] = true
		if len(evs[i].Data) == 0 {
			evs[i].Data = json.RawMessage("{}")
		}
		if len(evs[i].Data) > maxEventData {
			return fmt.Errorf("append events: event %s has %d bytes of data (at most %d)", evs[i].ID, len(evs[i].Data), maxEventData)
		}
	}
	return nil
}

func decodeEvent(ws string, item map[string]types.AttributeValue) (Event, error) {
	c, err := strconv.ParseInt(str(item, "sk"), 10, 64)
	if err != nil {
		return Event{}, fmt.Errorf("decode event: bad cursor %q", str(item, "sk"))
	}
	return Event{
		ID:          str(item, "event_id"),
		Type:        str(item, "type"),
		WorkspaceID: ws,
		Cursor:      c,
		CreatedAt:   tm(item, "created_at"),
		Data:        json.RawMessage(str(item, "data")),
		Trace:       str(item, "trace"),
	}, nil
}
