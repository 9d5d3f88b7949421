package store

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/apierr"
)

func TestSourcesLifecycleAndRotation(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	src := Source{WorkspaceID: "ws", Name: "stripe", Scheme: "stripe", ToleranceSeconds: 300, Secrets: []SigningSecret{{Value: "whsec_old"}}}
	if _, err := st.CreateSource(ctx, src); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateSource(ctx, src); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("second create: %v", err)
	}
	if _, err := st.GetSource(ctx, "other", "stripe"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("another workspace's source: %v", err)
	}
	got, err := st.RotateSourceSecret(ctx, "ws", "stripe", "whsec_new", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if a := got.ActiveSecrets(now); len(a) != 2 || a[0] != "whsec_new" || a[1] != "whsec_old" {
		t.Fatalf("after rotation active = %d secrets", len(a))
	}
	if _, err := st.RotateSourceSecret(ctx, "ws", "stripe", "whsec_new", time.Hour); apierr.CodeOf(err) != apierr.Invalid {
		t.Fatalf("rotating to the current secret: %v", err)
	}
	got, err = st.RetireSourceSecrets(ctx, "ws", "stripe")
	if a := got.ActiveSecrets(now); err != nil || len(a) != 1 || a[0] != "whsec_new" {
		t.Fatalf("after retire: %d secrets, %v", len(a), err)
	}
	list, err := st.ListSources(ctx, "ws")
	if err != nil || len(list) != 1 || list[0].Scheme != "stripe" || list[0].ToleranceSeconds != 300 {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if b, _ := json.Marshal(list); strings.Contains(string(b), "whsec_") {
		t.Fatalf("listed sources show a secret: %s", b)
	}
	if err := st.DeleteSource(ctx, "ws", "stripe"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteSource(ctx, "ws", "stripe"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("second delete: %v", err)
	}
}

func TestDedupeClaimOnceWithinTheWindow(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			c, err := st.ClaimDedupe(ctx, "ws", "stripe", "evt_1", time.Hour)
			if err != nil {
				t.Error(err)
			}
			if c.Won {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d of 20 concurrent claims won, want 1", wins.Load())
	}
	if c, _ := st.ClaimDedupe(ctx, "ws", "stripe", "evt_1", time.Hour); c.Won || c.Queued || time.Since(c.FirstAt) > time.Minute {
		t.Fatalf("later claim = %+v", c)
	}
	if err := st.MarkDedupeQueued(ctx, "ws", "stripe", "evt_1"); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.ClaimDedupe(ctx, "ws", "stripe", "evt_1", time.Hour); c.Won || !c.Queued {
		t.Fatalf("claim after the claimant queued = %+v", c)
	}
	if c, _ := st.ClaimDedupe(ctx, "ws", "github", "evt_1", time.Hour); !c.Won {
		t.Fatal("the same key of another source was taken as a duplicate")
	}
	if err := st.ReleaseDedupe(ctx, "ws", "stripe", "evt_1"); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.ClaimDedupe(ctx, "ws", "stripe", "evt_1", 10*time.Millisecond); !c.Won || c.Queued {
		t.Fatal("a released key was taken as a duplicate")
	}
	time.Sleep(20 * time.Millisecond)
	if c, _ := st.ClaimDedupe(ctx, "ws", "stripe", "evt_1", time.Hour); !c.Won {
		t.Fatal("a key past its window was taken as a duplicate")
	}
}

func TestRoleRoutesAndBindings(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	if r, err := st.RoleRoutes(ctx, "ws"); err != nil || len(r) != 0 {
		t.Fatalf("unset routes = %v, %v", r, err)
	}
	want := []RoleRoute{{Pattern: "webhook.stripe.*", Agent: "echo"}}
	if err := st.PutRoleRoutes(ctx, "ws", want); err != nil {
		t.Fatal(err)
	}
	if r, err := st.RoleRoutes(ctx, "ws"); err != nil || len(r) != 1 || r[0] != want[0] {
		t.Fatalf("routes = %v, %v", r, err)
	}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	put := func(status string, at time.Time) bool {
		ok, err := st.PutBindingStatus(ctx, BindingStatus{WorkspaceID: "ws", Channel: "slack", BindingID: "b1", Status: status, ReportedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !put("connected", t0) || !put("degraded", t0.Add(900*time.Millisecond)) || put("stale", t0.Add(100*time.Millisecond)) {
		t.Fatal("newer reports must win and older ones be ignored")
	}
	l, err := st.ListBindings(ctx, "ws")
	if err != nil || len(l) != 1 || l[0].Status != "degraded" || !l[0].ReportedAt.Equal(t0.Add(900*time.Millisecond)) {
		t.Fatalf("bindings = %+v, %v", l, err)
	}
}
