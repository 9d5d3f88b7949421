package store

import (
	"context"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/apierr"
)

// A workspace's agents and adapters are its own: another workspace neither reads, changes nor
// deletes them, and an adapter name belongs to one workspace.
func TestAgentsAndAdaptersStayInTheirWorkspace(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	if _, err := st.CreateAgent(ctx, Agent{WorkspaceID: "a", Name: "bot", Type: "webhook", URL: "https://x.example", Secret: "whsec_x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetAgent(ctx, "b", "bot"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("b reads a's agent: %v", err)
	}
	if _, err := st.UpdateAgent(ctx, "b", "bot", func(*Agent) error { return nil }); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("b changes a's agent: %v", err)
	}
	if err := st.DeleteAgent(ctx, "b", "bot"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("b deletes a's agent: %v", err)
	}
	a, err := st.UpdateAgent(ctx, "a", "bot", func(a *Agent) error { a.TimeoutSeconds = 5; return nil })
	if err != nil || a.Secret != "whsec_x" || !a.HasSecret || a.TimeoutSeconds != 5 {
		t.Fatalf("update: %v %v", a, err)
	}
	if got, err := st.GetAgent(ctx, "a", "bot"); err != nil || got.Secret != "whsec_x" || got.TimeoutSeconds != 5 {
		t.Fatalf("after update: %v %v", got, err)
	}

	ad := Adapter{WorkspaceID: "a", Name: "ops", Agent: "bot", Secrets: []SigningSecret{{Value: "first-secret-0123456789"}}}
	if _, err := st.CreateAdapter(ctx, ad); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateAdapter(ctx, Adapter{WorkspaceID: "b", Name: "ops"}); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("b takes a's adapter name: %v", err)
	}
	if _, err := st.GetAdapter(ctx, "b", "ops"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("b reads a's adapter: %v", err)
	}
	if _, err := st.RotateAdapterSecret(ctx, "b", "ops", "b-secret-0123456789", 0); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("b rotates a's adapter: %v", err)
	}
	if err := st.DeleteAdapter(ctx, "b", "ops"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("b deletes a's adapter: %v", err)
	}
	got, err := st.RotateAdapterSecret(ctx, "a", "ops", "second-secret-0123456789", time.Hour)
	if err != nil || len(got.ActiveSecrets(time.Now())) != 2 {
		t.Fatalf("rotate: %v %v", got, err)
	}
	if l, err := st.ListAdapters(ctx, "a"); err != nil || len(l) != 1 || l[0].Name != "ops" {
		t.Fatalf("list a: %v %v", l, err)
	}
	if l, err := st.ListAdapters(ctx, "b"); err != nil || len(l) != 0 {
		t.Fatalf("list b: %v %v", l, err)
	}
	if err := st.DeleteAdapter(ctx, "a", "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.LookupAdapter(ctx, "ops"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("deleted adapter: %v", err)
	}
}
