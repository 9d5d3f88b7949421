package store

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
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

// A subscription's custom headers: names in clear, values sealed (seal.KindSubscriptionHeaders);
// a store without an opener (the management API's) reads the names only and keeps the sealed
// values through an update that leaves them alone; the delivery's store (with an opener) opens
// them; {} removes them; sealed values copied to another subscription do not open there.
func TestSubscriptionHeadersAreSealed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := awscfg.Load(ctx, func(k string) string {
		return map[string]string{awscfg.EnvKMSEndpoint: emulatortest.KMS(t)}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	env := seal.New(cfg.KMS(), emulator.LocalKeyID, time.Now)
	base := newStore(t)
	sealer, opener := base.WithSealer(env), base.WithOpener(env)

	sub := newSub("ws", "https://example.com/h", "whsec_h")
	sub.Headers = NewCustomHeaders(map[string]string{"Authorization": "Bearer header-secret-1", "X-Tenant": "tenant-value-2"})
	created, err := sealer.CreateSubscription(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	item := rawItem(t, base, subKey("ws", created.ID))
	for _, v := range []string{"header-secret-1", "tenant-value-2"} {
		if holds(item, v) {
			t.Fatalf("the item holds %q in clear", v)
		}
	}
	if _, ok := item["headers"].(*types.AttributeValueMemberB); !ok {
		t.Fatalf("headers attribute %T, want sealed bytes", item["headers"])
	}

	// The management API's store: names only; an update of another field keeps the values.
	closed, err := sealer.GetSubscription(ctx, "ws", created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(closed.Headers.Names, ",") != "Authorization,X-Tenant" || closed.Headers.Values != nil {
		t.Fatalf("read without an opener: %v %v", closed.Headers.Names, closed.Headers.Values)
	}
	desc := "changed"
	if _, err := sealer.UpdateSubscription(ctx, "ws", created.ID, SubscriptionPatch{Description: &desc}); err != nil {
		t.Fatal(err)
	}
	open, err := opener.GetSubscription(ctx, "ws", created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if open.Headers.Values["Authorization"] != "Bearer header-secret-1" || open.Headers.Values["X-Tenant"] != "tenant-value-2" || len(open.Headers.Values) != 2 {
		t.Fatalf("opened headers %d", len(open.Headers.Values))
	}

	// Replaced, then removed.
	next := map[string]string{"X-Other": "other-value-3"}
	if _, err := sealer.UpdateSubscription(ctx, "ws", created.ID, SubscriptionPatch{Headers: &next}); err != nil {
		t.Fatal(err)
	}
	if open, err = opener.GetSubscription(ctx, "ws", created.ID); err != nil || len(open.Headers.Values) != 1 || open.Headers.Values["X-Other"] != "other-value-3" {
		t.Fatalf("replaced headers: %v %v", open.Headers.Names, err)
	}
	if holds(rawItem(t, base, subKey("ws", created.ID)), "other-value-3") {
		t.Fatal("a replaced value is in clear")
	}
	stolen := rawItem(t, base, subKey("ws", created.ID))["headers"]
	none := map[string]string{}
	if _, err := sealer.UpdateSubscription(ctx, "ws", created.ID, SubscriptionPatch{Headers: &none}); err != nil {
		t.Fatal(err)
	}
	item = rawItem(t, base, subKey("ws", created.ID))
	if _, ok := item["headers"]; ok {
		t.Fatal("{} left the headers attribute")
	}
	if _, ok := item["header_names"]; ok {
		t.Fatal("{} left the header_names attribute")
	}
	if open, err = opener.GetSubscription(ctx, "ws", created.ID); err != nil || len(open.Headers.Names) != 0 || len(open.Headers.Values) != 0 {
		t.Fatalf("removed headers: %v %v", open.Headers, err)
	}

	// Sealed values copied to another subscription do not open there.
	other, err := sealer.CreateSubscription(ctx, newSub("ws", "https://example.com/o", "whsec_o"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := base.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(base.table), Key: subKey("ws", other.ID), UpdateExpression: aws.String("SET headers = :h, header_names = :n"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":h": stolen, ":n": strList([]string{"X-Other"})},
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := opener.GetSubscription(ctx, "ws", other.ID); err == nil {
		t.Errorf("headers copied from another subscription opened: %d", len(got.Headers.Values))
	}
}

func TestSubscriptionNeverPrintsHeaderValues(t *testing.T) {
	sub := newSub("ws", "https://example.com/hook", "whsec_x")
	sub.Headers = NewCustomHeaders(map[string]string{"Authorization": "Bearer hdrsecretvalue"})
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("sub", "sub", sub, "headers", sub.Headers, "values", sub.Headers.Values)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("sub", "sub", sub, "headers", sub.Headers, "values", sub.Headers.Values)
	js, _ := json.Marshal(sub)
	js2, _ := json.Marshal(sub.Headers.Values)
	for _, out := range []string{fmt.Sprintf("%v", sub), fmt.Sprintf("%+v", sub), fmt.Sprintf("%#v", sub), fmt.Sprint(sub.Headers), string(js), string(js2), logged.String()} {
		if strings.Contains(out, "hdrsecretvalue") {
			t.Errorf("a header value leaked: %s", out)
		}
	}
}

func TestSubscriptionFilterIsStoredAndReplaced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStore(t)
	sub := newSub("ws", "https://example.com/f", "whsec_f")
	sub.Filter = `{"data.amount":{"$gte":100}}`
	created, err := st.CreateSubscription(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	active, err := st.ListActiveSubscriptions(ctx, "ws")
	if err != nil || len(active) != 1 || active[0].Filter != sub.Filter {
		t.Fatalf("the fan-out's read: %v %v", active, err)
	}
	desc := "kept"
	got, err := st.UpdateSubscription(ctx, "ws", created.ID, SubscriptionPatch{Description: &desc})
	if err != nil || got.Filter != sub.Filter {
		t.Fatalf("an update of another field: %q %v", got.Filter, err)
	}
	next := `{"type":"run.completed"}`
	if got, err = st.UpdateSubscription(ctx, "ws", created.ID, SubscriptionPatch{Filter: &next}); err != nil || got.Filter != next {
		t.Fatalf("replaced: %q %v", got.Filter, err)
	}
	none := ""
	if got, err = st.UpdateSubscription(ctx, "ws", created.ID, SubscriptionPatch{Filter: &none}); err != nil || got.Filter != "" {
		t.Fatalf("removed: %q %v", got.Filter, err)
	}
	if _, ok := rawItem(t, st, subKey("ws", created.ID))["payload_filter"]; ok {
		t.Fatal("the removed filter is still stored")
	}
}
