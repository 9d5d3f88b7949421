package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/seal"
)

// Source is a named inbound door of a workspace: how its senders prove themselves. Its secrets and
// bot token are stored sealed (see Store.WithSealer) and opened only by a store WithOpener; they
// never appear in JSON or logs.
type Source struct {
	WorkspaceID      string          `json:"workspace_id"`
	Name             string          `json:"name"`
	Scheme           string          `json:"scheme"`
	Header           string          `json:"header,omitempty"` // shared-secret and HMAC schemes
	ToleranceSeconds int             `json:"tolerance_seconds,omitempty"`
	Secrets          []SigningSecret `json:"-"` // current first; never serialised
	// BotToken is a telegram source's own Bot API token: replies to the chats whose updates it
	// received are sent with it. Stored like the secrets; "" while sealed; never serialised.
	BotToken       string    `json:"-"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	botTokenSealed []byte
}

// ActiveSecrets returns the secrets that verify at now, current first (opened ones only).
func (s Source) ActiveSecrets(now time.Time) []string { return activeSecrets(s.Secrets, now) }

// ActiveSecretCount is how many secrets verify at now, whether opened or not.
func (s Source) ActiveSecretCount(now time.Time) int { return activeSecretCount(s.Secrets, now) }

// HasBotToken reports whether the source has a bot token, whether opened or not.
func (s Source) HasBotToken() bool { return s.BotToken != "" || s.botTokenSealed != nil }

func srcSealCtx(ws, name, kind string) seal.Context {
	return seal.Context{Workspace: ws, Kind: kind, Item: name}
}

// Items: pk WS#<ws>#SRC, sk SRC#<name>; one consistent Query lists a workspace's sources.
func sourcesPK(ws string) string { return "WS#" + ws + "#SRC" }
func sourceKey(ws, name string) map[string]types.AttributeValue {
	return key(sourcesPK(ws), "SRC#"+name)
}

func sourceNotFound() error { return apierr.New(apierr.NotFound, "source not found") }

// CreateSource stores a new source; a name the workspace already uses is a Conflict.
func (st *Store) CreateSource(ctx context.Context, src Source) (Source, error) {
	now := st.now().UTC()
	src.CreatedAt, src.UpdatedAt = now, now
	item := sourceKey(src.WorkspaceID, src.Name)
	item["workspace_id"], item["name"], item["scheme"] = s(src.WorkspaceID), s(src.Name), s(src.Scheme)
	item["header"], item["tolerance_seconds"] = s(src.Header), n(int64(src.ToleranceSeconds))
	secrets, err := st.encodeSecrets(ctx, srcSealCtx(src.WorkspaceID, src.Name, seal.KindSourceSecret), src.Secrets)
	if err != nil {
		return Source{}, err
	}
	item["secrets"] = secrets
	switch {
	case src.BotToken == "":
	case st.sealer != nil:
		b, err := st.sealer.Seal(ctx, []byte(src.BotToken), srcSealCtx(src.WorkspaceID, src.Name, seal.KindBotToken))
		if err != nil {
			return Source{}, fmt.Errorf("seal the bot token of source %s: %w", src.Name, err)
		}
		item["bot_token_sealed"] = &types.AttributeValueMemberB{Value: b}
	default:
		item["bot_token"] = s(src.BotToken)
	}
	item["created_at"], item["updated_at"], item["rev"] = ts(now), ts(now), n(1)
	_, err = st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")})
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		return Source{}, apierr.New(apierr.Conflict, "a source named %q exists", src.Name)
	}
	if err != nil {
		return Source{}, fmt.Errorf("create source %s: %w", src.Name, err)
	}
	return src, nil
}

// GetSource returns a source of the workspace, or NotFound.
func (st *Store) GetSource(ctx context.Context, ws, name string) (Source, error) {
	src, _, err := st.getSource(ctx, ws, name)
	return src, err
}

func (st *Store) getSource(ctx context.Context, ws, name string) (Source, int64, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: sourceKey(ws, name), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Source{}, 0, fmt.Errorf("get source %s: %w", name, err)
	}
	if len(out.Item) == 0 {
		return Source{}, 0, sourceNotFound()
	}
	src := decodeSource(out.Item)
	if err := st.openSource(ctx, &src); err != nil {
		return Source{}, 0, err
	}
	return src, num(out.Item, "rev"), nil
}

// openSource opens the source's sealed secrets and bot token, when the store has an opener.
func (st *Store) openSource(ctx context.Context, src *Source) error {
	if st.opener == nil {
		return nil
	}
	if err := st.openSecrets(ctx, srcSealCtx(src.WorkspaceID, src.Name, seal.KindSourceSecret), src.Secrets); err != nil {
		return err
	}
	if src.botTokenSealed != nil && src.BotToken == "" {
		b, err := st.opener.Open(ctx, src.botTokenSealed, srcSealCtx(src.WorkspaceID, src.Name, seal.KindBotToken))
		if err != nil {
			return fmt.Errorf("open the bot token of source %s: %w", src.Name, err)
		}
		src.BotToken = string(b)
	}
	return nil
}

// ListSources returns the workspace's sources by name.
func (st *Store) ListSources(ctx context.Context, ws string) ([]Source, error) {
	in := &dynamodb.QueryInput{
		TableName:                 &st.table,
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :src)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(sourcesPK(ws)), ":src": s("SRC#")},
		ConsistentRead:            aws.Bool(true),
	}
	out := []Source{}
	for p := dynamodb.NewQueryPaginator(st.db, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list sources: %w", err)
		}
		for _, item := range page.Items {
			out = append(out, decodeSource(item))
		}
	}
	return out, nil
}

// RotateSourceSecret makes newSecret current; the others keep verifying until now+overlap.
func (st *Store) RotateSourceSecret(ctx context.Context, ws, name, newSecret string, overlap time.Duration) (Source, error) {
	if newSecret == "" || overlap < 0 {
		return Source{}, errors.New("rotate source secret: a secret and a non-negative overlap are required")
	}
	return st.rewriteSourceSecrets(ctx, ws, name, func(cur []SigningSecret, now time.Time) ([]SigningSecret, error) {
		return rotateSecrets(cur, newSecret, now, overlap)
	})
}

// RetireSourceSecrets ends every overlap at once: only the current secret verifies afterwards.
func (st *Store) RetireSourceSecrets(ctx context.Context, ws, name string) (Source, error) {
	return st.rewriteSourceSecrets(ctx, ws, name, func(cur []SigningSecret, _ time.Time) ([]SigningSecret, error) {
		var keep []SigningSecret
		for _, sec := range cur {
			if sec.ExpiresAt == nil {
				keep = append(keep, sec)
			}
		}
		return keep, nil
	})
}

func (st *Store) rewriteSourceSecrets(ctx context.Context, ws, name string, change func([]SigningSecret, time.Time) ([]SigningSecret, error)) (Source, error) {
	for range maxSubscriptionWriteTries {
		cur, rev, err := st.getSource(ctx, ws, name)
		if err != nil {
			return Source{}, err
		}
		now := st.now().UTC()
		changed, err := change(cur.Secrets, now)
		if err != nil {
			return Source{}, err
		}
		secrets, err := st.encodeSecrets(ctx, srcSealCtx(ws, name, seal.KindSourceSecret), changed)
		if err != nil {
			return Source{}, err
		}
		upd := "SET secrets = :secrets, updated_at = :now, rev = :next"
		vals := map[string]types.AttributeValue{":secrets": secrets, ":now": ts(now), ":rev": n(rev), ":next": n(rev + 1)}
		if cur.BotToken != "" && cur.botTokenSealed == nil && st.sealer != nil {
			// A bot token stored in clear before sealing: sealed now.
			b, err := st.sealer.Seal(ctx, []byte(cur.BotToken), srcSealCtx(ws, name, seal.KindBotToken))
			if err != nil {
				return Source{}, fmt.Errorf("seal the bot token of source %s: %w", name, err)
			}
			upd += ", bot_token_sealed = :bt REMOVE bot_token"
			vals[":bt"] = &types.AttributeValueMemberB{Value: b}
		}
		out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 &st.table,
			Key:                       sourceKey(ws, name),
			UpdateExpression:          aws.String(upd),
			ConditionExpression:       aws.String("rev = :rev"),
			ExpressionAttributeValues: vals,
			ReturnValues:              types.ReturnValueAllNew,
		})
		var cf *types.ConditionalCheckFailedException
		if errors.As(err, &cf) {
			continue // changed or deleted since it was read
		}
		if err != nil {
			return Source{}, fmt.Errorf("rewrite source %s: %w", name, err)
		}
		return decodeSource(out.Attributes), nil
	}
	return Source{}, apierr.New(apierr.Conflict, "source is being changed concurrently; try again")
}

// DeleteSource deletes a source of the workspace, or returns NotFound.
func (st *Store) DeleteSource(ctx context.Context, ws, name string) error {
	_, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &st.table, Key: sourceKey(ws, name), ConditionExpression: aws.String("attribute_exists(pk)")})
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		return sourceNotFound()
	}
	if err != nil {
		return fmt.Errorf("delete source %s: %w", name, err)
	}
	return nil
}

func decodeSource(item map[string]types.AttributeValue) Source {
	return Source{
		WorkspaceID: str(item, "workspace_id"), Name: str(item, "name"), Scheme: str(item, "scheme"),
		Header: str(item, "header"), ToleranceSeconds: int(num(item, "tolerance_seconds")),
		Secrets: decodeSecrets(item), BotToken: str(item, "bot_token"),
		CreatedAt: tm(item, "created_at"), UpdatedAt: tm(item, "updated_at"),
		botTokenSealed: bytesOf(item, "bot_token_sealed"),
	}
}
