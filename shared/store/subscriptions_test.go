package store

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/ids"
)

// clock is a settable test clock.
type clock struct{ t atomic.Pointer[time.Time] }

func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)  { c.t.Store(&t) }
func (c *clock) now() time.Time   { return *c.t.Load() }

func newSub(ws, url string, secrets ...string) Subscription {
	sub := Subscription{WorkspaceID: ws, URL: url, Events: []string{"run.*", "message.received"}, Description: "test"}
	for _, sec := range secrets {
		sub.Secrets = append(sub.Secrets, SigningSecret{Value: sec})
	}
	return sub
}

func TestActiveSecretsNewestFirstWithoutExpired(t *testing.T) {
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	sub := Subscription{Secrets: []SigningSecret{
		{Value: "older", ExpiresAt: at(time.Hour)},
		{Value: "expired", ExpiresAt: at(-time.Second)},
		{Value: "current"},
		{Value: "just-expired", ExpiresAt: at(0)},
		{Value: "previous", ExpiresAt: at(2 * time.Hour)},
	}}
	if got, want := sub.ActiveSecrets(now), []string{"current", "previous", "older"}; !slices.Equal(got, want) {
		t.Fatalf("ActiveSecrets = %v, want %v", got, want)
	}
	if got := (Subscription{}).ActiveSecrets(now); len(got) != 0 {
		t.Fatalf("no secrets: %v", got)
	}
}

func TestSubscriptionNeverPrintsSecrets(t *testing.T) {
	exp := time.Now()
	sub := newSub("ws", "https://example.com/hook", "whsec_topsecretvalue")
	sub.Secrets = append(sub.Secrets, SigningSecret{Value: "whsec_oldsecretvalue", ExpiresAt: &exp})
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("sub", "sub", sub, "secret", sub.Secrets[0], "secrets", sub.Secrets)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("sub", "sub", sub, "secret", sub.Secrets[0], "secrets", sub.Secrets)
	js2, _ := json.Marshal(sub.Secrets)
	js, _ := json.Marshal(sub)
	for _, out := range []string{fmt.Sprintf("%v", sub), fmt.Sprintf("%+v", sub), fmt.Sprintf("%#v", sub), fmt.Sprint(sub.Secrets), string(js), string(js2), logged.String()} {
		if strings.Contains(out, "secretvalue") {
			t.Errorf("a secret leaked: %s", out)
		}
	}
}

func TestSubscriptionCRUD(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()

	sub, err := st.CreateSubscription(ctx, newSub("ws-a", "https://example.com/hook", "whsec_one"))
	if err != nil {
		t.Fatal(err)
	}
	if !ids.Valid("sub", sub.ID) || sub.Status != SubscriptionActive || sub.CreatedAt.IsZero() || !sub.UpdatedAt.Equal(sub.CreatedAt) {
		t.Fatalf("created %+v", sub)
	}
	got, err := st.GetSubscription(ctx, "ws-a", sub.ID)
	if err != nil || got.URL != sub.URL || !slices.Equal(got.Events, sub.Events) || got.Description != "test" ||
		len(got.Secrets) != 1 || got.Secrets[0].Value != "whsec_one" || got.Secrets[0].ExpiresAt != nil || !got.CreatedAt.Equal(sub.CreatedAt) {
		t.Fatalf("GetSubscription = %+v, %v", got, err)
	}
	if _, err := st.GetSubscription(ctx, "ws-b", sub.ID); apierr.CodeOf(err) != apierr.NotFound || apierr.MessageOf(err) != "subscription not found" {
		t.Fatalf("another workspace: %v", err)
	}
	if _, err := st.CreateSubscription(ctx, Subscription{ID: sub.ID, WorkspaceID: "ws-a", URL: "https://x", Secrets: []SigningSecret{{Value: "s"}}}); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("duplicate id: %v", err)
	}
	if _, err := st.CreateSubscription(ctx, Subscription{WorkspaceID: "ws-a", URL: "https://x"}); err == nil {
		t.Fatal("a subscription without a secret was stored")
	}

	// Patch: each given field replaces; the rest stays.
	url, desc := "https://example.org/other", ""
	events := []string{"*"}
	upd, err := st.UpdateSubscription(ctx, "ws-a", sub.ID, SubscriptionPatch{URL: &url, Events: &events, Description: &desc})
	if err != nil || upd.URL != url || !slices.Equal(upd.Events, events) || upd.Description != "" || upd.Status != SubscriptionActive ||
		len(upd.Secrets) != 1 || !upd.CreatedAt.Equal(sub.CreatedAt) || upd.UpdatedAt.Before(sub.UpdatedAt) {
		t.Fatalf("UpdateSubscription = %+v, %v", upd, err)
	}
	if same, err := st.UpdateSubscription(ctx, "ws-a", sub.ID, SubscriptionPatch{}); err != nil || !same.UpdatedAt.Equal(upd.UpdatedAt) {
		t.Fatalf("empty patch = %+v, %v", same, err)
	}
	bad := "paused"
	if _, err := st.UpdateSubscription(ctx, "ws-a", sub.ID, SubscriptionPatch{Status: &bad}); apierr.CodeOf(err) != apierr.Invalid {
		t.Fatalf("bad status: %v", err)
	}
	if _, err := st.UpdateSubscription(ctx, "ws-b", sub.ID, SubscriptionPatch{URL: &url}); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("patch from another workspace: %v", err)
	}

	if err := st.DeleteSubscription(ctx, "ws-b", sub.ID); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("delete from another workspace: %v", err)
	}
	if err := st.DeleteSubscription(ctx, "ws-a", sub.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteSubscription(ctx, "ws-a", sub.ID); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := st.GetSubscription(ctx, "ws-a", sub.ID); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("get after delete: %v", err)
	}
	// Nothing recreates a deleted subscription.
	if _, err := st.RecordDeliveryOutcome(ctx, "ws-a", sub.ID, false); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("outcome of a deleted subscription: %v", err)
	}
	if _, err := st.DisableSubscription(ctx, "ws-a", sub.ID, "gone"); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("disable a deleted subscription: %v", err)
	}
	if _, err := st.GetSubscription(ctx, "ws-a", sub.ID); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("a deleted subscription came back: %v", err)
	}
}

func TestListSubscriptionsPages(t *testing.T) {
	t.Parallel()
	base := newStore(t)
	clk := newClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	st := New(base.db, base.table, clk.now)
	ctx := context.Background()
	var want []string
	for i := range 25 {
		clk.set(clk.now().Add(time.Millisecond)) // ids are time-ordered to the millisecond
		sub, err := st.CreateSubscription(ctx, newSub("ws", fmt.Sprintf("https://example.com/%d", i), "whsec_x"))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, sub.ID)
		if i%5 == 0 { // another workspace's subscriptions never show up
			if _, err := st.CreateSubscription(ctx, newSub("ws-other", "https://other.example", "whsec_y")); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []string
	var sizes []int
	cursor := ""
	for {
		page, next, err := st.ListSubscriptions(ctx, "ws", 10, cursor)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page))
		for _, sub := range page {
			got = append(got, sub.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(sizes, []int{10, 10, 5}) || !slices.Equal(got, want) {
		t.Fatalf("pages %v, ids %v; want 10,10,5 and %v", sizes, got, want)
	}
	// Exactly a page's worth: no empty page after it.
	page, next, err := st.ListSubscriptions(ctx, "ws", 25, "")
	if err != nil || len(page) != 25 || next != "" {
		t.Fatalf("limit 25: %d, %q, %v", len(page), next, err)
	}
	for _, c := range []string{"!!", "bm9wZQ", "czE6"} { // not base64; "nope"; "s1:" with no id
		if _, _, err := st.ListSubscriptions(ctx, "ws", 10, c); apierr.CodeOf(err) != apierr.Invalid {
			t.Errorf("cursor %q: %v", c, err)
		}
	}
	if page, _, err := st.ListSubscriptions(ctx, "nobody", 10, ""); err != nil || len(page) != 0 {
		t.Fatalf("empty workspace: %v, %v", page, err)
	}
}

func TestListActiveSubscriptionsAndStatus(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	a, _ := st.CreateSubscription(ctx, newSub("ws", "https://a.example", "whsec_a"))
	b, _ := st.CreateSubscription(ctx, newSub("ws", "https://b.example", "whsec_b"))
	if _, err := st.CreateSubscription(ctx, Subscription{WorkspaceID: "ws", URL: "https://c.example", Status: SubscriptionDisabled, DisabledReason: "paused", Secrets: []SigningSecret{{Value: "c"}}}); err != nil {
		t.Fatal(err)
	}

	for i := 1; i <= 3; i++ {
		if n, err := st.RecordDeliveryOutcome(ctx, "ws", b.ID, false); err != nil || n != i {
			t.Fatalf("failure %d: %d, %v", i, n, err)
		}
	}
	changed, err := st.DisableSubscription(ctx, "ws", b.ID, "the endpoint answered 410 Gone")
	if err != nil || !changed {
		t.Fatalf("DisableSubscription = %v, %v", changed, err)
	}
	if changed, err := st.DisableSubscription(ctx, "ws", b.ID, "again"); err != nil || changed {
		t.Fatalf("disable twice = %v, %v", changed, err)
	}
	got, _ := st.GetSubscription(ctx, "ws", b.ID)
	if got.Status != SubscriptionDisabled || got.DisabledReason != "the endpoint answered 410 Gone" || got.ConsecutiveFailures != 3 {
		t.Fatalf("disabled: %+v", got)
	}
	active, err := st.ListActiveSubscriptions(ctx, "ws")
	if err != nil || len(active) != 1 || active[0].ID != a.ID || len(active[0].Secrets) != 1 {
		t.Fatalf("ListActiveSubscriptions = %+v, %v", active, err)
	}

	// Re-enabling clears the reason and the failure count.
	on := SubscriptionActive
	got, err = st.UpdateSubscription(ctx, "ws", b.ID, SubscriptionPatch{Status: &on})
	if err != nil || got.Status != SubscriptionActive || got.DisabledReason != "" || got.ConsecutiveFailures != 0 {
		t.Fatalf("re-enabled: %+v, %v", got, err)
	}
	// Patching an active subscription to active keeps its count.
	if _, err := st.RecordDeliveryOutcome(ctx, "ws", b.ID, false); err != nil {
		t.Fatal(err)
	}
	if got, err = st.UpdateSubscription(ctx, "ws", b.ID, SubscriptionPatch{Status: &on}); err != nil || got.ConsecutiveFailures != 1 {
		t.Fatalf("active → active: %+v, %v", got, err)
	}
	if n, err := st.RecordDeliveryOutcome(ctx, "ws", b.ID, true); err != nil || n != 0 {
		t.Fatalf("success: %d, %v", n, err)
	}
	off := SubscriptionDisabled
	if got, err = st.UpdateSubscription(ctx, "ws", b.ID, SubscriptionPatch{Status: &off}); err != nil || got.Status != SubscriptionDisabled || got.DisabledReason != DisabledByAPI {
		t.Fatalf("disabled by patch: %+v, %v", got, err)
	}
}

func TestRecordDeliveryOutcomeIsAtomic(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	sub, _ := st.CreateSubscription(ctx, newSub("ws", "https://a.example", "whsec_a"))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := st.RecordDeliveryOutcome(ctx, "ws", sub.ID, false); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, _ := st.GetSubscription(ctx, "ws", sub.ID); got.ConsecutiveFailures != 20 {
		t.Fatalf("ConsecutiveFailures = %d, want 20", got.ConsecutiveFailures)
	}
}

func TestRotateSecret(t *testing.T) {
	t.Parallel()
	base := newStore(t)
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	clk := newClock(t0)
	st := New(base.db, base.table, clk.now)
	ctx := context.Background()
	sub, err := st.CreateSubscription(ctx, newSub("ws", "https://a.example", "whsec_one"))
	if err != nil {
		t.Fatal(err)
	}

	clk.set(t0.Add(time.Minute))
	sub, err = st.RotateSecret(ctx, "ws", sub.ID, "whsec_two", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := sub.ActiveSecrets(clk.now()); !slices.Equal(got, []string{"whsec_two", "whsec_one"}) {
		t.Fatalf("during the overlap: %v", got)
	}
	if exp := sub.Secrets[1].ExpiresAt; exp == nil || !exp.Equal(t0.Add(time.Minute+time.Hour)) || !sub.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("secrets %v, updated %s", sub.Secrets, sub.UpdatedAt)
	}
	if got := sub.ActiveSecrets(t0.Add(2 * time.Hour)); !slices.Equal(got, []string{"whsec_two"}) {
		t.Fatalf("after the overlap: %v", got)
	}
	if _, err := st.RotateSecret(ctx, "ws", sub.ID, "whsec_one", time.Hour); apierr.CodeOf(err) != apierr.Invalid {
		t.Fatalf("reusing a secret: %v", err)
	}
	if _, err := st.RotateSecret(ctx, "other", sub.ID, "whsec_x", time.Hour); apierr.CodeOf(err) != apierr.NotFound {
		t.Fatalf("another workspace: %v", err)
	}

	// A second rotation inside the overlap with a shorter overlap caps every old secret.
	clk.set(t0.Add(10 * time.Minute))
	sub, err = st.RotateSecret(ctx, "ws", sub.ID, "whsec_three", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got := sub.ActiveSecrets(clk.now()); !slices.Equal(got, []string{"whsec_three", "whsec_two", "whsec_one"}) {
		t.Fatalf("two rotations: %v", got)
	}
	for _, sec := range sub.Secrets[1:] {
		if !sec.ExpiresAt.Equal(t0.Add(15 * time.Minute)) {
			t.Fatalf("old secret not capped: %v", sub.Secrets)
		}
	}

	// Expired secrets are pruned at the next rotation; overlap 0 retires the old one at once.
	clk.set(t0.Add(3 * time.Hour))
	sub, err = st.RotateSecret(ctx, "ws", sub.ID, "whsec_four", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(sub.Secrets) != 1 || sub.Secrets[0].Value != "whsec_four" || sub.Secrets[0].ExpiresAt != nil {
		t.Fatalf("after pruning: %v", sub.Secrets)
	}
	stored, _ := st.GetSubscription(ctx, "ws", sub.ID)
	if got := stored.ActiveSecrets(clk.now()); !slices.Equal(got, []string{"whsec_four"}) {
		t.Fatalf("stored: %v", got)
	}

	// Too many secrets in rotation at once is refused.
	for i := range MaxSigningSecrets - 1 {
		if _, err := st.RotateSecret(ctx, "ws", sub.ID, fmt.Sprintf("whsec_r%d", i), time.Hour); err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
	}
	if _, err := st.RotateSecret(ctx, "ws", sub.ID, "whsec_overflow", time.Hour); apierr.CodeOf(err) != apierr.Conflict {
		t.Fatalf("rotation over the limit: %v", err)
	}
}

// Concurrent rotations and patches all land: none overwrites another's change.
func TestConcurrentRotateAndPatch(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	sub, _ := st.CreateSubscription(ctx, newSub("ws", "https://a.example", "whsec_0"))
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if _, err := st.RotateSecret(ctx, "ws", sub.ID, fmt.Sprintf("whsec_%d", i+1), time.Hour); err != nil {
				t.Error(err)
			}
		})
	}
	desc := "patched"
	wg.Go(func() {
		if _, err := st.UpdateSubscription(ctx, "ws", sub.ID, SubscriptionPatch{Description: &desc}); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	got, _ := st.GetSubscription(ctx, "ws", sub.ID)
	if len(got.Secrets) != 5 || got.Description != "patched" || got.Secrets[0].ExpiresAt != nil {
		t.Fatalf("after concurrent writes: %v, %q", got.Secrets, got.Description)
	}
}
