package store

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/ids"
)

func TestAPIKeyFormat(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k := newAPIKeyPlaintext()
		if !LooksLikeAPIKey(k) || len(k) != 44 || !strings.HasPrefix(k, "hgk_") {
			t.Fatalf("malformed key %q", k)
		}
		if seen[k] {
			t.Fatal("a key repeated")
		}
		seen[k] = true
	}
	for _, bad := range []string{"", "hgk_", "hgk_" + strings.Repeat("a", 39), "hgk_" + strings.Repeat("a", 41),
		"xxx_" + strings.Repeat("a", 40), "hgk_" + strings.Repeat("A", 40), "hgk_" + strings.Repeat("1", 40)} {
		if LooksLikeAPIKey(bad) {
			t.Errorf("LooksLikeAPIKey(%q) = true", bad)
		}
	}
}

func TestAPIKeyLifecycle(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()

	k, plain, err := st.CreateAPIKey(ctx, "ws-a", "ci")
	if err != nil {
		t.Fatal(err)
	}
	if !ids.Valid("key", k.ID) || k.WorkspaceID != "ws-a" || k.Name != "ci" || k.Prefix != plain[:12] || k.CreatedAt.IsZero() || k.Revoked() {
		t.Fatalf("created %+v", k)
	}
	got, err := st.LookupAPIKey(ctx, plain)
	if err != nil || got.ID != k.ID || got.WorkspaceID != "ws-a" || got.Name != "ci" {
		t.Fatalf("LookupAPIKey = %+v, %v", got, err)
	}

	// The plaintext is stored nowhere: only its hash.
	for _, pk := range []string{"APIKEY#" + hashAPIKey(plain), apiKeysPK("ws-a")} {
		out, err := st.db.Query(ctx, &dynamodb.QueryInput{TableName: &st.table, KeyConditionExpression: aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(pk)}})
		if err != nil || len(out.Items) != 1 {
			t.Fatalf("items under %s: %d, %v", pk, len(out.Items), err)
		}
		for name, v := range out.Items[0] {
			if sv, ok := v.(*types.AttributeValueMemberS); ok && strings.Contains(sv.Value, plain[12:]) {
				t.Fatalf("attribute %s holds the key", name)
			}
		}
	}

	k2, plain2, err := st.CreateAPIKey(ctx, "ws-a", "second")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateAPIKey(ctx, "ws-b", "other"); err != nil {
		t.Fatal(err)
	}
	list, err := st.ListAPIKeys(ctx, "ws-a")
	if err != nil || len(list) != 2 || list[0].ID != k.ID || list[1].ID != k2.ID {
		t.Fatalf("ListAPIKeys = %+v, %v", list, err)
	}

	// Another workspace cannot revoke it.
	if err := st.RevokeAPIKey(ctx, "ws-b", k.ID); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("revoke from another workspace: %v", err)
	}
	if _, err := st.LookupAPIKey(ctx, plain); err != nil {
		t.Fatalf("key stopped working after a refused revoke: %v", err)
	}
	if err := st.RevokeAPIKey(ctx, "ws-a", k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.LookupAPIKey(ctx, plain); apierr.CodeOf(err) != apierr.Unauthorized {
		t.Fatalf("revoked key: %v", err)
	}
	if err := st.RevokeAPIKey(ctx, "ws-a", k.ID); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	if _, err := st.LookupAPIKey(ctx, plain2); err != nil {
		t.Fatalf("the other key: %v", err)
	}
	list, err = st.ListAPIKeys(ctx, "ws-a")
	if err != nil || len(list) != 2 || !list[0].Revoked() || list[1].Revoked() {
		t.Fatalf("after revoke: %+v, %v", list, err)
	}
	if err := st.RevokeAPIKey(ctx, "ws-a", "key_missing"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("revoke unknown: %v", err)
	}

	for _, bad := range []string{"", "nope", newAPIKeyPlaintext()} {
		if _, err := st.LookupAPIKey(ctx, bad); apierr.CodeOf(err) != apierr.Unauthorized {
			t.Errorf("LookupAPIKey(%q) = %v, want unauthorized", bad, err)
		}
	}
}
