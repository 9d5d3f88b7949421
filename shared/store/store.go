// Package store keeps Hookgate's state in one DynamoDB table: threads, messages, runs and each
// workspace's ordered event log. Every write is conditional, so retried work does not duplicate.
package store

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/shared/seal"
)

// DB is the part of the DynamoDB client the store uses.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

// Store reads and writes the table.
type Store struct {
	db        DB
	table     string
	now       func() time.Time
	retention time.Duration
	sealer    Sealer    // nil: secrets are written as given (tests, and the functions that write none)
	opener    Opener    // nil: secrets read stay sealed (their count is known, not their values)
	shards    int       // the log's shards for new threads and spread groups (WithShards)
	logs      *logState // shared by the copies WithSealer and WithOpener make
}

// Sealer seals a secret before it is written (seal.Envelope; kms:GenerateDataKey).
type Sealer interface {
	Seal(ctx context.Context, plaintext []byte, c seal.Context) ([]byte, error)
}

// Opener opens a sealed secret after it is read (seal.Envelope; kms:Decrypt).
type Opener interface {
	Open(ctx context.Context, sealed []byte, c seal.Context) ([]byte, error)
}

// New returns a Store on table.
func New(db DB, table string, now func() time.Time) *Store {
	return &Store{db: db, table: table, now: now, shards: 1, logs: newLogState()}
}

// WithRetention makes the events, runs, messages and threads st writes expire d after they are
// written (a thread: after its last message), through the table's TTL attribute "ttl"; 0 keeps
// them. It returns st.
func (st *Store) WithRetention(d time.Duration) *Store {
	st.retention = max(d, 0)
	return st
}

// expire sets item's TTL to the retention from now, when there is one.
func (st *Store) expire(item map[string]types.AttributeValue, now time.Time) map[string]types.AttributeValue {
	if st.retention > 0 {
		item["ttl"] = n(now.Add(st.retention).Unix())
	}
	return item
}

// WithSealer returns a copy of the store that seals every secret it writes: subscriptions' and
// sources' secrets and bot tokens. Secrets already sealed are kept as they are; one read in clear
// (written before sealing) is sealed when its item is next written.
func (st *Store) WithSealer(s Sealer) *Store {
	c := *st
	c.sealer = s
	return &c
}

// WithOpener returns a copy of the store whose GetSubscription and GetSource open the secrets they
// read: only the functions that sign or verify need it.
func (st *Store) WithOpener(o Opener) *Store {
	c := *st
	c.opener = o
	return &c
}

func threadPK(ws, id string) string { return "WS#" + ws + "#THR#" + id }
func runPK(ws, id string) string    { return "WS#" + ws + "#RUN#" + id }

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": s(pk), "sk": s(sk)}
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}
func ts(t time.Time) types.AttributeValue {
	return s(t.UTC().Format(time.RFC3339Nano))
}

// cancelledBy reports whether err is a cancelled transaction whose item i failed its condition.
func cancelledBy(err error, i int) bool {
	var tc *types.TransactionCanceledException
	if !errors.As(err, &tc) || i >= len(tc.CancellationReasons) {
		return false
	}
	c := tc.CancellationReasons[i].Code
	return c != nil && *c == "ConditionalCheckFailed"
}

func str(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func bytesOf(item map[string]types.AttributeValue, name string) []byte {
	if v, ok := item[name].(*types.AttributeValueMemberB); ok {
		return v.Value
	}
	return nil
}

func num(item map[string]types.AttributeValue, name string) int64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		i, _ := strconv.ParseInt(v.Value, 10, 64)
		return i
	}
	return 0
}

func tm(item map[string]types.AttributeValue, name string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, str(item, name))
	return t
}
