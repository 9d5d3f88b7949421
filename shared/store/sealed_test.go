package store

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"slices"
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

// Agents' and adapters' secrets are sealed when written, and opened only by a store with an
// opener (the worker's for agents, the adapter function's for adapters): an update that leaves
// the secret alone keeps it sealed as it was, a rotation seals the new one, a secret written in
// clear before sealing is sealed at the next write, and a sealed value copied to another item
// does not open there.
func TestAgentAndAdapterSecretsAreSealed(t *testing.T) {
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

	const hookSecret, apiKey = "whsec_c2VhbGVkLWFnZW50LXNlY3JldC0wMTIzNDU2Nzg5", "sk-sealed-api-key-0123456789"
	if _, err := sealer.CreateAgent(ctx, Agent{WorkspaceID: "ws", Name: "hook", Type: "webhook", URL: "https://a.example", Secret: hookSecret}); err != nil {
		t.Fatal(err)
	}
	if err := sealer.PutAgent(ctx, Agent{WorkspaceID: "ws", Name: "gpt", Type: "openai", Model: "m", Secret: apiKey, Operator: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := sealer.CreateAdapter(ctx, Adapter{WorkspaceID: "ws", Name: "adp", Secrets: []SigningSecret{{Value: "adapter-secret-one"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sealer.RotateAdapterSecret(ctx, "ws", "adp", "adapter-secret-two", time.Hour); err != nil {
		t.Fatal(err)
	}
	for k, secret := range map[string]string{"hook": hookSecret, "gpt": apiKey} {
		if holds(rawItem(t, legacy, agentKey("ws", k)), secret) {
			t.Errorf("agent %s holds its secret in clear", k)
		}
	}
	for _, secret := range []string{"adapter-secret-one", "adapter-secret-two"} {
		if holds(rawItem(t, legacy, adapterKey("adp")), secret) {
			t.Errorf("adapter holds %q in clear", secret)
		}
	}

	// Management reads without an opener: the secret is there, unread; a PATCH keeps it as stored.
	closed, err := sealer.GetAgent(ctx, "ws", "hook")
	if err != nil || closed.Secret != "" || !closed.HasSecret {
		t.Fatalf("agent read without an opener: secret %t, has %t, %v", closed.Secret != "", closed.HasSecret, err)
	}
	before := rawItem(t, legacy, agentKey("ws", "hook"))["secrets"]
	if _, err := sealer.UpdateAgent(ctx, "ws", "hook", func(a *Agent) error { a.TimeoutSeconds = 7; return nil }); err != nil {
		t.Fatal(err)
	}
	if after := rawItem(t, legacy, agentKey("ws", "hook"))["secrets"]; !reflect.DeepEqual(before, after) {
		t.Error("an update that leaves the secret alone rewrote it")
	}
	list, err := sealer.ListAgents(ctx, "ws")
	if err != nil || len(list) != 2 || !list[0].HasSecret || list[0].Secret != "" || list[1].Secret != "" {
		t.Fatalf("agents listed without an opener: %v %v", list, err)
	}
	if a, err := sealer.LookupAdapter(ctx, "adp"); err != nil || len(a.ActiveSecrets(time.Now())) != 0 || len(a.Secrets) != 2 {
		t.Fatalf("adapter read without an opener: %d opened of %d, %v", len(a.ActiveSecrets(time.Now())), len(a.Secrets), err)
	}

	// The worker's and the adapter function's stores open them.
	for k, secret := range map[string]string{"hook": hookSecret, "gpt": apiKey} {
		if a, err := opener.GetAgent(ctx, "ws", k); err != nil || a.Secret != secret {
			t.Errorf("agent %s opened: %t, %v", k, a.Secret == secret, err)
		}
	}
	if a, err := opener.LookupAdapter(ctx, "adp"); err != nil || !slices.Equal(a.ActiveSecrets(time.Now()), []string{"adapter-secret-two", "adapter-secret-one"}) {
		t.Errorf("adapter opened: %d secrets, %v", len(a.ActiveSecrets(time.Now())), err)
	}

	// Written in clear before sealing: read as before, sealed at the next write.
	if _, err := legacy.CreateAgent(ctx, Agent{WorkspaceID: "ws", Name: "old", Type: "openai", Model: "m", Secret: "sk-legacy-clear-key"}); err != nil {
		t.Fatal(err)
	}
	if !holds(rawItem(t, legacy, agentKey("ws", "old")), "sk-legacy-clear-key") {
		t.Fatal("the legacy store did not write in clear")
	}
	if a, err := opener.GetAgent(ctx, "ws", "old"); err != nil || a.Secret != "sk-legacy-clear-key" {
		t.Fatalf("legacy agent: %v", err)
	}
	if _, err := sealer.UpdateAgent(ctx, "ws", "old", func(a *Agent) error { a.Model = "m2"; return nil }); err != nil {
		t.Fatal(err)
	}
	if holds(rawItem(t, legacy, agentKey("ws", "old")), "sk-legacy-clear-key") {
		t.Error("the legacy agent's secret is still in clear after its next write")
	}
	if a, err := opener.GetAgent(ctx, "ws", "old"); err != nil || a.Secret != "sk-legacy-clear-key" {
		t.Errorf("legacy agent after sealing: %t, %v", a.Secret == "sk-legacy-clear-key", err)
	}

	// An adapter written in clear before sealing is sealed by its next update, a PATCH included.
	if _, err := legacy.CreateAdapter(ctx, Adapter{WorkspaceID: "ws", Name: "oldadp", Secrets: []SigningSecret{{Value: "adapter-legacy-clear"}}}); err != nil {
		t.Fatal(err)
	}
	if !holds(rawItem(t, legacy, adapterKey("oldadp")), "adapter-legacy-clear") {
		t.Fatal("the legacy store did not write the adapter in clear")
	}
	if _, err := sealer.UpdateAdapter(ctx, "ws", "oldadp", func(a *Adapter, _ time.Time) error { a.MaxInFlight = 3; return nil }); err != nil {
		t.Fatal(err)
	}
	if holds(rawItem(t, legacy, adapterKey("oldadp")), "adapter-legacy-clear") {
		t.Error("the legacy adapter's secret is still in clear after a PATCH")
	}
	if a, err := opener.LookupAdapter(ctx, "oldadp"); err != nil || !slices.Equal(a.ActiveSecrets(time.Now()), []string{"adapter-legacy-clear"}) {
		t.Errorf("legacy adapter after sealing: %v", err)
	}

	// A sealed agent secret copied into another agent's item does not open there.
	stolen := rawItem(t, legacy, agentKey("ws", "hook"))["secrets"]
	item := rawItem(t, legacy, agentKey("ws", "gpt"))
	item["secrets"] = stolen
	if _, err := legacy.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(legacy.table), Item: item}); err != nil {
		t.Fatal(err)
	}
	if _, err := opener.GetAgent(ctx, "ws", "gpt"); !errors.Is(err, seal.ErrOpen) {
		t.Errorf("a copied sealed secret: %v, want ErrOpen", err)
	}
}
