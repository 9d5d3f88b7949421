package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A workspace's log is split into shards, each a dense log of its own: its own counter, its own
// partition key, cursors 1, 2, 3, … Shard 0 has the keys a log had before shards, so a log
// written before them is a one-shard log as it is:
//
//	events   pk WS#<ws>#EV       (shard 0)   WS#<ws>#EV#<s>     (shard s ≥ 1), sk the cursor
//	counter  pk WS#<ws>#EVSEQ    (shard 0)   WS#<ws>#EVSEQ#<s>  (shard s ≥ 1), sk SEQ
//
// The shard-0 counter also carries the mark, "shards" (absent: 1): every shard below it may hold
// events, and none at or above it does. It only grows, and a writer raises it before the first
// event of a shard it names, so readers learn the shards from the table, never from a setting.

// MaxShards bounds a workspace's shards (the stream's token names a position in each).
const MaxShards = 16

// EventPK is the partition key of a workspace's log shard.
func EventPK(ws string, shard int) string {
	if shard == 0 {
		return "WS#" + ws + "#EV"
	}
	return "WS#" + ws + "#EV#" + strconv.Itoa(shard)
}

// ParseEventPK returns the workspace and shard of an event item's partition key.
func ParseEventPK(pk string) (ws string, shard int, ok bool) {
	rest, ok := strings.CutPrefix(pk, "WS#")
	if !ok {
		return "", 0, false
	}
	ws, sh, found := strings.Cut(rest, "#EV")
	if !found || ws == "" || strings.Contains(ws, "#") {
		return "", 0, false
	}
	if sh == "" {
		return ws, 0, true
	}
	digits, ok := strings.CutPrefix(sh, "#")
	shard, err := strconv.Atoi(digits)
	if !ok || err != nil || shard < 1 || shard >= MaxShards || strconv.Itoa(shard) != digits {
		return "", 0, false
	}
	return ws, shard, true
}

func seqPK(ws string, shard int) string {
	if shard == 0 {
		return "WS#" + ws + "#EVSEQ"
	}
	return "WS#" + ws + "#EVSEQ#" + strconv.Itoa(shard)
}

func seqKey(ws string, shard int) map[string]types.AttributeValue {
	return key(seqPK(ws, shard), "SEQ")
}

// LogHead returns the last cursor reserved in each shard of the workspace's log that may hold
// events (one entry for a one-shard log, 0 for an empty one). No event visible now has a cursor
// past its shard's entry. Consistent reads: the shard-0 counter, then, when the mark says there
// are more shards, the others in one batch.
func (st *Store) LogHead(ctx context.Context, ws string) ([]int64, error) {
	first, err := st.counter(ctx, ws, 0)
	if err != nil {
		return nil, err
	}
	m := min(max(int(num(first, "shards")), 1), MaxShards)
	head := make([]int64, m)
	head[0] = num(first, "seq")
	if m == 1 {
		return head, nil
	}
	keys := make([]map[string]types.AttributeValue, 0, m-1)
	shardOf := make(map[string]int, m-1) // a counter's partition key → its shard
	for sh := 1; sh < m; sh++ {
		keys, shardOf[seqPK(ws, sh)] = append(keys, seqKey(ws, sh)), sh
	}
	req := map[string]types.KeysAndAttributes{st.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
	for try := 0; len(req) > 0; try++ {
		if try > 0 { // keys left unprocessed (throttled): back off before asking again
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("read event counters of %s: %w", ws, ctx.Err())
			case <-time.After(time.Duration(min(try, 10)) * 20 * time.Millisecond):
			}
		}
		got, err := st.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
		if err != nil {
			return nil, fmt.Errorf("read event counters of %s: %w", ws, err)
		}
		for _, it := range got.Responses[st.table] {
			if sh, ok := shardOf[str(it, "pk")]; ok {
				head[sh] = num(it, "seq")
			}
		}
		req = got.UnprocessedKeys
	}
	return head, nil
}

// ThreadHead is LogHead for the reader of one thread's index: the last cursor reserved in the
// thread's shard (the cursors of its index are that shard's). For a one-shard log it costs what its
// counter's read costs.
func (st *Store) ThreadHead(ctx context.Context, ws, thread string) (int64, error) {
	first, err := st.counter(ctx, ws, 0)
	if err != nil {
		return 0, err
	}
	if num(first, "shards") <= 1 {
		return num(first, "seq"), nil
	}
	sh, err := st.threadShard(ctx, ws, thread)
	if err != nil || sh == 0 {
		return num(first, "seq"), err
	}
	it, err := st.counter(ctx, ws, sh)
	return num(it, "seq"), err
}

// counter reads the counter item of a shard of the workspace's log (consistently).
func (st *Store) counter(ctx context.Context, ws string, shard int) (map[string]types.AttributeValue, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: seqKey(ws, shard), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("read event counter of %s shard %d: %w", ws, shard, err)
	}
	return out.Item, nil
}

// ListShard returns up to limit events of one shard of the workspace's log with a cursor after the
// given one, in cursor order, and whether the shard may hold more after them (a page cut short by
// DynamoDB's 1 MB bound is never taken for the shard's end).
func (st *Store) ListShard(ctx context.Context, ws string, shard int, after int64, limit int) ([]Event, bool, error) {
	out, err := st.db.Query(ctx, &dynamodb.QueryInput{
		TableName:              &st.table,
		KeyConditionExpression: aws.String("pk = :pk AND sk > :after"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": s(EventPK(ws, shard)), ":after": s(eventSK(after)),
		},
		Limit:          aws.Int32(int32(max(limit, 1))),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, false, fmt.Errorf("list events of %s shard %d: %w", ws, shard, err)
	}
	evs := make([]Event, 0, len(out.Items))
	for _, it := range out.Items {
		e, err := decodeEvent(ws, it)
		if err != nil {
			return nil, false, err
		}
		e.Shard = shard
		evs = append(evs, e)
	}
	return evs, len(out.LastEvaluatedKey) > 0, nil
}

// ListEvents returns up to limit events of the workspace's shard 0 with a cursor after the given
// one, in order: the whole log of a one-shard workspace.
func (st *Store) ListEvents(ctx context.Context, ws string, after int64, limit int) ([]Event, error) {
	evs, _, err := st.ListShard(ctx, ws, 0, after, limit)
	return evs, err
}

// WithShards sets how many shards the log's new threads and spread groups are dealt to (1 to
// MaxShards; see threadGuess and shardsOf). Readers never need it: they read the mark. It returns st.
func (st *Store) WithShards(n int) *Store {
	st.shards = min(max(n, 1), MaxShards)
	return st
}

// logState is what a process remembers of logs' shards. Its values do not change in the table: a
// thread's shard is fixed at its creation (a thread whose item expired, with its events, and is
// created again may be dealt anew: then the process learns it from the refused write), and a mark
// only grows.
type logState struct {
	threads threadShards
	mu      sync.Mutex
	marks   map[string]int // workspace → a mark known to be reached
}

func newLogState() *logState {
	return &logState{threads: threadShards{m: map[string]int{}}, marks: map[string]int{}}
}

// threadShards caches threads' shards, bounded: it is emptied when full (simpler than an LRU, and
// a miss costs one read).
type threadShards struct {
	mu sync.Mutex
	m  map[string]int
}

// logStateCap bounds each of logState's maps.
const logStateCap = 10_000

func (c *threadShards) get(ws, thread string) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sh, ok := c.m[ws+"\x00"+thread]
	return sh, ok
}

func (c *threadShards) put(ws, thread string, shard int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= logStateCap {
		clear(c.m)
	}
	c.m[ws+"\x00"+thread] = shard
}

// HashShard is the shard of n that a new thread (by its id) or a spread group (by its first event's
// id) is dealt to: FNV-1a, mixed, mod n.
func HashShard(key string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	// FNV-1a's bits depend weakly on a key's last bytes (mod 4, "thr_a", "thr_e" and "thr_q"
	// would share a shard): mixed with MurmurHash3's finaliser first.
	x := h.Sum32()
	x ^= x >> 16
	x *= 0x85ebca6b
	x ^= x >> 13
	x *= 0xc2b2ae35
	x ^= x >> 16
	return int(x % uint32(n))
}

// KnownThreadShard returns the log shard of the thread when this process knows it: it wrote the
// thread, read it, or appended its events.
func (st *Store) KnownThreadShard(ws, thread string) (int, bool) {
	return st.logs.threads.get(ws, thread)
}

// LearnThreadShard tells the store the thread's log shard as the process that wrote the thread
// knew it (KnownThreadShard there), so that appending the thread's events needs no read of it. A
// shard out of range is ignored, and so is any when this process knows the thread's already.
func (st *Store) LearnThreadShard(ws, thread string, shard int) {
	if _, known := st.logs.threads.get(ws, thread); !known && shard >= 0 && shard < MaxShards {
		st.logs.threads.put(ws, thread, shard)
	}
}

// threadGuess is the shard a thread's update records for a thread this process does not know
// yet: the thread keeps the shard it has if it exists (see threadShardCond).
func (st *Store) threadGuess(ws, thread string) int {
	if sh, ok := st.logs.threads.get(ws, thread); ok {
		return sh
	}
	return HashShard(thread, st.shards)
}

// threadShardCond is the part of a thread's update condition that keeps a thread in its shard: a
// new thread takes the guessed one; an existing thread must record it (absent: shard 0, every
// thread made before shards).
func threadShardCond(shard int) string {
	if shard == 0 {
		return "(attribute_not_exists(pk) OR attribute_not_exists(log_shard))"
	}
	return "(attribute_not_exists(pk) OR log_shard = :shard)"
}

// shardOf is the shard a thread's update records.
func shardOf(thread *types.Update) int {
	if v, ok := thread.ExpressionAttributeValues[":shard"].(*types.AttributeValueMemberN); ok {
		sh, _ := strconv.Atoi(v.Value)
		return sh
	}
	return 0
}

// shardMismatch reports whether a refused thread update of nr that asked for shard asked (old, the
// item as it was) was refused only for its shard, and remembers the thread's shard: the thread
// exists on nr's channel, recording another shard.
func (st *Store) shardMismatch(nr NewRun, asked int, old map[string]types.AttributeValue) bool {
	if len(old) == 0 || str(old, "channel") != nr.Thread.Channel {
		return false
	}
	recorded := int(num(old, "log_shard"))
	if recorded < 0 || recorded >= MaxShards || recorded == asked {
		return false
	}
	st.logs.threads.put(nr.Thread.WorkspaceID, nr.Thread.ID, recorded)
	return true
}

// cancelledItem is the old item of a cancelled transaction's item i (when it asked for it).
func cancelledItem(err error, i int) map[string]types.AttributeValue {
	var tc *types.TransactionCanceledException
	if !errors.As(err, &tc) || i >= len(tc.CancellationReasons) {
		return nil
	}
	return tc.CancellationReasons[i].Item
}

// shardsOf sets the shard of each event of the fresh groups (appended for the first time): a
// thread's event goes to its thread's shard; an event that names no thread goes with the first
// thread of its group, else, in a group whose first event is Spread, to a shard dealt by that
// event's id, else to shard 0 (so the gateway's own events keep their mutual order for any number
// of shards).
func (st *Store) shardsOf(ctx context.Context, es []entry, fresh []group) error {
	for _, g := range fresh {
		home, homed := 0, false
		for _, i := range g {
			th := ThreadOf(es[i].e)
			if th == "" {
				continue
			}
			sh, err := st.threadShard(ctx, es[i].e.WorkspaceID, th)
			if err != nil {
				return err
			}
			es[i].e.Shard = sh
			if !homed {
				home, homed = sh, true
			}
		}
		if !homed && es[g[0]].e.Spread {
			home = HashShard(es[g[0]].e.ID, st.shards)
		}
		for _, i := range g {
			if ThreadOf(es[i].e) == "" {
				es[i].e.Shard = home
			}
		}
	}
	return nil
}

// threadShard is the shard the thread records (absent: 0), from this process's memory or its item.
func (st *Store) threadShard(ctx context.Context, ws, thread string) (int, error) {
	if sh, ok := st.logs.threads.get(ws, thread); ok {
		return sh, nil
	}
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &st.table, Key: key(threadPK(ws, thread), "META"), ConsistentRead: aws.Bool(true),
		ProjectionExpression: aws.String("pk, log_shard"),
	})
	if err != nil {
		return 0, fmt.Errorf("read the log shard of thread %s: %w", thread, err)
	}
	sh := int(num(out.Item, "log_shard"))
	if sh < 0 || sh >= MaxShards {
		return 0, fmt.Errorf("thread %s records log shard %d", thread, sh)
	}
	if len(out.Item) > 0 {
		st.logs.threads.put(ws, thread, sh)
	}
	return sh, nil
}

// ensureMark makes sure the workspace's mark is past shard before anything is reserved in it, so
// that readers read the shard before any of its events can be visible. Once per process per
// workspace and mark.
func (st *Store) ensureMark(ctx context.Context, ws string, shard int) error {
	if shard == 0 {
		return nil
	}
	st.logs.mu.Lock()
	known := st.logs.marks[ws]
	st.logs.mu.Unlock()
	if known > shard {
		return nil
	}
	// The mark only grows, so a stale (eventually consistent, half-priced) read can only make the
	// write below happen when it was not needed; the write is conditional, and refused when
	// another writer raised the mark first. Both hit the workspace's busiest item: read first.
	got, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: seqKey(ws, 0), ProjectionExpression: aws.String("#m"), ExpressionAttributeNames: map[string]string{"#m": "shards"}})
	if err != nil {
		return fmt.Errorf("read the log's shards of %s: %w", ws, err)
	}
	if m := int(num(got.Item, "shards")); m > shard {
		st.knowMark(ws, m)
		return nil
	}
	k := max(st.shards, shard+1)
	_, err = st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &st.table,
		Key:                       seqKey(ws, 0),
		UpdateExpression:          aws.String("SET #m = :k"),
		ConditionExpression:       aws.String("attribute_not_exists(#m) OR #m < :k"),
		ExpressionAttributeNames:  map[string]string{"#m": "shards"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": n(int64(k))},
	})
	var cf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &cf) { // refused: the mark is at k or past it already
		return fmt.Errorf("raise the log's shards of %s to %d: %w", ws, k, err)
	}
	st.knowMark(ws, k)
	return nil
}

// knowMark remembers that the workspace's mark is at least m.
func (st *Store) knowMark(ws string, m int) {
	st.logs.mu.Lock()
	defer st.logs.mu.Unlock()
	if len(st.logs.marks) >= logStateCap {
		clear(st.logs.marks)
	}
	st.logs.marks[ws] = max(st.logs.marks[ws], m)
}
