package store

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/local/emulator"
	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/seal"
)

// rawItem reads an item as stored.
func rawItem(t *testing.T, st *Store, k map[string]types.AttributeValue) map[string]types.AttributeValue {
	t.Helper()
	out, err := st.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: k, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func holds(item map[string]types.AttributeValue, secret string) bool {
	var walk func(v types.AttributeValue) bool
	walk = func(v types.AttributeValue) bool {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			return v.Value == secret
		case *types.AttributeValueMemberB:
			return bytes.Contains(v.Value, []byte(secret))
		case *types.AttributeValueMemberL:
			for _, x := range v.Value {
				if walk(x) {
					return true
				}
			}
		case *types.AttributeValueMemberM:
			for _, x := range v.Value {
				if walk(x) {
					return true
				}
			}
		}
		return false
	}
	for _, v := range item {
		if walk(v) {
			return true
		}
	}
	return false
}

// Secrets stored in clear before sealing (a store without a sealer, as before) keep working, and
// are sealed at their item's next write: a subscription's at its rotation, a source's secrets and
// bot token at its rotation. A store without an opener reads them sealed (counted, not opened).
func TestLegacyClearSecretsAreSealedOnNextWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := awscfg.Load(ctx, func(k string) string {
		return map[string]string{awscfg.EnvKMSEndpoint: emulatortest.KMS(t)}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	env := seal.New(cfg.KMS(), emulator.LocalKeyID, time.Now)
	legacy := newStore(t)
	sealer, opener := legacy.WithSealer(env), legacy.WithOpener(env)

	sub, err := legacy.CreateSubscription(ctx, newSub("ws", "https://example.com/h", "whsec_old"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := legacy.CreateSource(ctx, Source{WorkspaceID: "ws", Name: "telegram", Scheme: "telegram",
		Secrets: []SigningSecret{{Value: "tg-old"}}, BotToken: "123:legacy-bot-token-value"})
	if err != nil {
		t.Fatal(err)
	}
	if !holds(rawItem(t, legacy, subKey("ws", sub.ID)), "whsec_old") || !holds(rawItem(t, legacy, sourceKey("ws", src.Name)), "123:legacy-bot-token-value") {
		t.Fatal("the legacy store did not write in clear")
	}

	if _, err := sealer.RotateSecret(ctx, "ws", sub.ID, "whsec_new", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := sealer.RotateSourceSecret(ctx, "ws", src.Name, "tg-new", time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key     map[string]types.AttributeValue
		secrets []string
	}{
		{subKey("ws", sub.ID), []string{"whsec_old", "whsec_new"}},
		{sourceKey("ws", src.Name), []string{"tg-old", "tg-new", "123:legacy-bot-token-value"}},
	} {
		item := rawItem(t, legacy, c.key)
		for _, sec := range c.secrets {
			if holds(item, sec) {
				t.Errorf("%v still holds %q in clear", c.key["pk"], sec)
			}
		}
	}

	gotSub, err := opener.GetSubscription(ctx, "ws", sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := gotSub.ActiveSecrets(time.Now()); len(got) != 2 || got[0] != "whsec_new" || got[1] != "whsec_old" {
		t.Errorf("opened subscription secrets %v", got)
	}
	gotSrc, err := opener.GetSource(ctx, "ws", src.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got := gotSrc.ActiveSecrets(time.Now()); len(got) != 2 || got[0] != "tg-new" || gotSrc.BotToken != "123:legacy-bot-token-value" {
		t.Errorf("opened source %v, bot token %q", got, gotSrc.BotToken)
	}

	// Without an opener: counted, never opened, never handed out as "".
	closed, err := sealer.GetSource(ctx, "ws", src.Name)
	if err != nil {
		t.Fatal(err)
	}
	if closed.ActiveSecretCount(time.Now()) != 2 || len(closed.ActiveSecrets(time.Now())) != 0 || !closed.HasBotToken() || closed.BotToken != "" {
		t.Errorf("sealed source read without an opener: %d secrets, %v opened, bot token %v/%q",
			closed.ActiveSecretCount(time.Now()), closed.ActiveSecrets(time.Now()), closed.HasBotToken(), closed.BotToken)
	}

	// A sealed value copied into another item does not open there.
	other, err := sealer.CreateSubscription(ctx, newSub("ws", "https://example.com/o", "whsec_other"))
	if err != nil {
		t.Fatal(err)
	}
	stolen := rawItem(t, legacy, subKey("ws", sub.ID))["secrets"]
	if _, err := legacy.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(legacy.table), Key: subKey("ws", other.ID), UpdateExpression: aws.String("SET secrets = :s"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": stolen},
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := opener.GetSubscription(ctx, "ws", other.ID); err == nil {
		t.Errorf("secrets copied from another subscription opened: %v", got.ActiveSecrets(time.Now()))
	}
}
