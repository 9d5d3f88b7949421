package store

import (
	"context"
	"testing"
	"time"
)

// Adapter names are stack-wide (they are the URL), and the stack's Adapters parameter is seeded at
// the adapter function's first use. A workspace key that claims a seeded name first ("default"
// always is one) must not keep it: the operator's /webhook/default would answer to the tenant's
// adapter (and 401 to the stack's AdapterSecret). The seed takes the name back, and says whose
// adapter it replaced.
func TestAttackTenantSquatsSeededAdapterName(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	if _, err := st.CreateAdapter(ctx, Adapter{WorkspaceID: "tenant-b", Name: "default", Secrets: []SigningSecret{{Value: "tenant-b-secret-0123456789"}}}); err != nil {
		t.Fatal(err)
	}
	displaced, err := st.PutAdapter(ctx, Adapter{WorkspaceID: "default", Name: "default", Secrets: []SigningSecret{{Value: "stack-adapter-secret-0123"}}})
	if err != nil {
		t.Fatalf("seed of the stack's default adapter: %v", err)
	}
	if displaced != "tenant-b" {
		t.Errorf("displaced %q, want tenant-b", displaced)
	}
	a, err := st.LookupAdapter(ctx, "default")
	if err != nil || a.WorkspaceID != "default" {
		t.Fatalf("/webhook/default belongs to %q (%v), want the default workspace", a.WorkspaceID, err)
	}
	if got := a.ActiveSecrets(time.Now()); len(got) != 1 || got[0] != "stack-adapter-secret-0123" {
		t.Fatalf("the tenant's secret still opens the stack's adapter (%d secrets)", len(got))
	}
	if l, err := st.ListAdapters(ctx, "tenant-b"); err != nil || len(l) != 0 {
		t.Fatalf("tenant-b still lists it: %v %v", l, err)
	}
	// Seeding again in the same workspace replaces without displacing anyone.
	if displaced, err := st.PutAdapter(ctx, Adapter{WorkspaceID: "default", Name: "default", Secrets: []SigningSecret{{Value: "stack-adapter-secret-0123"}}}); err != nil || displaced != "" {
		t.Fatalf("re-seed: %q %v", displaced, err)
	}
}

// The seed's digest is an HMAC under the stack's approval signing keys. Rotating those keys alone
// (a new key first, the old one kept) must not write the seed again: that would overwrite what the
// API changed since, and bring back a seeded adapter's secret the workspace had rotated away (or
// an agent's key). A digest recorded under an earlier key is current, and is recorded again under
// the current key, without writing the seed.
func TestSeedSurvivesApprovalKeyRotation(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	params := `[{"name":"ops"}]` + "\x00" + "adapter-secret-0123456789"
	oldKey, newKey := "old-approval-signing-key-0123", "new-approval-signing-key-0123"
	seeded := 0
	put := func(context.Context) error { seeded++; return nil }
	if err := st.SeedOnce(ctx, "default", "adapters", SeedSums([]string{oldKey}, params), put); err != nil || seeded != 1 {
		t.Fatalf("first seed: %d %v", seeded, err)
	}
	if err := st.SeedOnce(ctx, "default", "adapters", SeedSums([]string{newKey, oldKey}, params), put); err != nil || seeded != 1 {
		t.Fatalf("a key rotation wrote the seed again (%d seeds, %v)", seeded, err)
	}
	if err := st.SeedOnce(ctx, "default", "adapters", SeedSums([]string{newKey}, params), put); err != nil || seeded != 1 {
		t.Fatalf("the old key dropped: the seed was written again (%d seeds, %v)", seeded, err)
	}
	if err := st.SeedOnce(ctx, "default", "adapters", SeedSums([]string{newKey}, params+"changed"), put); err != nil || seeded != 2 {
		t.Fatalf("a changed parameter: %d seeds, %v", seeded, err)
	}
}
