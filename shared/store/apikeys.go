package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/ids"
)

// APIKeyPrefix starts every API key, so that a leaked key is recognisable (by people and secret
// scanners) for what it is.
const APIKeyPrefix = "hgk_"

// An API key is APIKeyPrefix + 40 characters of lower-case base32: 25 random bytes, 200 bits.
const (
	apiKeyRandomBytes = 25
	apiKeyLen         = len(APIKeyPrefix) + 40
	apiKeyShownPrefix = 12 // characters kept in clear, to tell keys apart in listings
)

var apiKeyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// APIKey describes an API key. The key itself is never stored: only its SHA-256.
type APIKey struct {
	ID          string     `json:"id"`
	WorkspaceID string     `json:"workspace_id"`
	Name        string     `json:"name"`
	Prefix      string     `json:"prefix"` // the key's first 12 characters, for display
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

// Revoked reports whether the key has been revoked.
func (k APIKey) Revoked() bool { return k.RevokedAt != nil }

// Two items per key, written and revoked together in one transaction:
//
//	pk APIKEY#<hex sha256 of the key>  sk KEY           authentication: one GetItem by the hash
//	pk WS#<ws>#APIKEYS                 sk KEY#<key_id>  listing (a consistent Query, in creation
//	                                                    order since key ids are time-ordered) and
//	                                                    revocation by id (it holds the hash)
func apiKeyByHash(hash string) map[string]types.AttributeValue { return key("APIKEY#"+hash, "KEY") }
func apiKeysPK(ws string) string                               { return "WS#" + ws + "#APIKEYS" }
func apiKeyByID(ws, id string) map[string]types.AttributeValue { return key(apiKeysPK(ws), "KEY#"+id) }

func hashAPIKey(plaintext string) string {
	sum := sha256.Sum256([]byte(plaintext))
	return hex.EncodeToString(sum[:])
}

func newAPIKeyPlaintext() string {
	var b [apiKeyRandomBytes]byte
	_, _ = rand.Read(b[:]) // never returns an error (crypto/rand docs)
	return APIKeyPrefix + apiKeyEncoding.EncodeToString(b[:])
}

// LooksLikeAPIKey reports whether s has the shape of an API key (prefix, length, alphabet). It
// says nothing about whether the key exists.
func LooksLikeAPIKey(s string) bool {
	rest, ok := strings.CutPrefix(s, APIKeyPrefix)
	if !ok || len(s) != apiKeyLen {
		return false
	}
	for _, c := range []byte(rest) {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// CreateAPIKey makes a new key for the workspace and returns it with its plaintext, which is not
// kept anywhere and cannot be shown again.
func (st *Store) CreateAPIKey(ctx context.Context, ws, name string) (APIKey, string, error) {
	if ws == "" {
		return APIKey{}, "", errors.New("create api key: workspace is required")
	}
	now := st.now().UTC()
	plaintext := newAPIKeyPlaintext()
	hash := hashAPIKey(plaintext)
	k := APIKey{ID: ids.New("key", now), WorkspaceID: ws, Name: name, Prefix: plaintext[:apiKeyShownPrefix], CreatedAt: now}

	byHash := apiKeyByHash(hash)
	byID := apiKeyByID(ws, k.ID)
	for _, item := range []map[string]types.AttributeValue{byHash, byID} {
		item["key_id"] = s(k.ID)
		item["workspace_id"] = s(ws)
		item["name"] = s(name)
		item["prefix"] = s(k.Prefix)
		item["created_at"] = ts(now)
	}
	byID["key_hash"] = s(hash)
	_, err := st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: &st.table, Item: byHash, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		{Put: &types.Put{TableName: &st.table, Item: byID, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
	}})
	if err != nil {
		return APIKey{}, "", fmt.Errorf("create api key %s: %w", k.ID, err)
	}
	return k, plaintext, nil
}

// LookupAPIKey returns the key that plaintext is. A key that is malformed, unknown or revoked is
// an Unauthorized error, the same for all three.
func (st *Store) LookupAPIKey(ctx context.Context, plaintext string) (APIKey, error) {
	unauthorized := apierr.New(apierr.Unauthorized, "missing or invalid API key")
	if !LooksLikeAPIKey(plaintext) {
		return APIKey{}, unauthorized
	}
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: apiKeyByHash(hashAPIKey(plaintext)), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return APIKey{}, fmt.Errorf("look up api key: %w", err)
	}
	if len(out.Item) == 0 {
		return APIKey{}, unauthorized
	}
	k := decodeAPIKey(out.Item)
	if k.Revoked() {
		return APIKey{}, unauthorized
	}
	return k, nil
}

// ListAPIKeys returns the workspace's keys, revoked ones included, oldest first.
func (st *Store) ListAPIKeys(ctx context.Context, ws string) ([]APIKey, error) {
	in := &dynamodb.QueryInput{
		TableName:                 &st.table,
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :key)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(apiKeysPK(ws)), ":key": s("KEY#")},
		ConsistentRead:            aws.Bool(true),
	}
	keys := []APIKey{}
	for {
		out, err := st.db.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list api keys of %s: %w", ws, err)
		}
		for _, it := range out.Items {
			keys = append(keys, decodeAPIKey(it))
		}
		if len(out.LastEvaluatedKey) == 0 {
			return keys, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// RevokeAPIKey revokes a key of the workspace; from then on it authenticates nothing. Revoking a
// revoked key changes nothing. A key of another workspace is NotFound.
func (st *Store) RevokeAPIKey(ctx context.Context, ws, keyID string) error {
	notFound := apierr.New(apierr.NotFound, "api key not found")
	if keyID == "" {
		return notFound
	}
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: apiKeyByID(ws, keyID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return fmt.Errorf("revoke api key %s: %w", keyID, err)
	}
	hash := str(out.Item, "key_hash")
	if len(out.Item) == 0 || hash == "" {
		return notFound
	}
	revoke := func(k map[string]types.AttributeValue) types.TransactWriteItem {
		return types.TransactWriteItem{Update: &types.Update{
			TableName:                 &st.table,
			Key:                       k,
			UpdateExpression:          aws.String("SET revoked_at = if_not_exists(revoked_at, :now)"),
			ConditionExpression:       aws.String("attribute_exists(pk)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": ts(st.now())},
		}}
	}
	_, err = st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		revoke(apiKeyByID(ws, keyID)), revoke(apiKeyByHash(hash)),
	}})
	if err != nil {
		if cancelledBy(err, 0) {
			return notFound
		}
		return fmt.Errorf("revoke api key %s: %w", keyID, err)
	}
	return nil
}

func decodeAPIKey(item map[string]types.AttributeValue) APIKey {
	k := APIKey{
		ID: str(item, "key_id"), WorkspaceID: str(item, "workspace_id"), Name: str(item, "name"),
		Prefix: str(item, "prefix"), CreatedAt: tm(item, "created_at"),
	}
	if t := tm(item, "revoked_at"); !t.IsZero() {
		k.RevokedAt = &t
	}
	return k
}
