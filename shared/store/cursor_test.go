package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/apierr"
)

// cursorOf encodes a start key as pageCursor does, whatever it holds.
func cursorOf(t *testing.T, k map[string]string) string {
	t.Helper()
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(t *testing.T, c string) map[string]string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(c)
	var k map[string]string
	if err == nil {
		err = json.Unmarshal(b, &k)
	}
	if err != nil {
		t.Fatalf("cursor %q: %v", c, err)
	}
	return k
}

// A delivery list cursor is the start key of one query: one that is not (garbage, a key of another
// shape, another subscription's or workspace's, outside the time range asked for) is Invalid, never
// a DynamoDB error.
func TestListDeliveriesRefusesForeignCursors(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	for _, d := range []Delivery{
		{ID: "dlv_a1", WorkspaceID: "ws", SubscriptionID: "sub_a"}, {ID: "dlv_a2", WorkspaceID: "ws", SubscriptionID: "sub_a"},
		{ID: "dlv_a3", WorkspaceID: "ws", SubscriptionID: "sub_a"},
		{ID: "dlv_b1", WorkspaceID: "ws", SubscriptionID: "sub_b"}, {ID: "dlv_b2", WorkspaceID: "ws", SubscriptionID: "sub_b"},
		{ID: "dlv_o1", WorkspaceID: "other", SubscriptionID: "sub_a"}, {ID: "dlv_o2", WorkspaceID: "other", SubscriptionID: "sub_a"},
	} {
		d.EventID, d.EventType, d.Payload = "evt", "t", json.RawMessage(`{}`)
		if _, _, err := st.CreateDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	next := func(ws, sub string) string {
		t.Helper()
		_, c, err := st.ListDeliveries(ctx, ws, sub, DeliveryFilter{Limit: 1})
		if err != nil || c == "" {
			t.Fatalf("first page of %s/%s: %q %v", ws, sub, c, err)
		}
		return c
	}
	own := next("ws", "sub_a")
	if page, _, err := st.ListDeliveries(ctx, "ws", "sub_a", DeliveryFilter{Limit: 1, Cursor: own}); err != nil || len(page) != 1 {
		t.Fatalf("own cursor: %v %v", page, err)
	}
	k := decodeCursor(t, own)
	with := func(change func(map[string]string)) string {
		c := map[string]string{}
		for n, v := range k {
			c[n] = v
		}
		change(c)
		return cursorOf(t, c)
	}
	cases := map[string]string{
		"garbage":              "!!",
		"not an object":        base64.RawURLEncoding.EncodeToString([]byte(`["pk"]`)),
		"other attributes":     cursorOf(t, map[string]string{"x": "y"}),
		"number value":         base64.RawURLEncoding.EncodeToString([]byte(`{"pk":1,"sk":"DLV","gsi1pk":"a","gsi1sk":"b"}`)),
		"index keys only":      with(func(c map[string]string) { delete(c, "pk"); delete(c, "sk") }),
		"table keys only":      with(func(c map[string]string) { delete(c, "gsi1pk"); delete(c, "gsi1sk") }),
		"an extra attribute":   with(func(c map[string]string) { c["status"] = "failed" }),
		"an empty value":       with(func(c map[string]string) { c["sk"] = "" }),
		"a value over 1 KB":    with(func(c map[string]string) { c["pk"] = strings.Repeat("p", 3000) }),
		"another subscription": next("ws", "sub_b"),
		"another workspace":    next("other", "sub_a"),
		"a forged partition":   with(func(c map[string]string) { c["gsi1pk"] = subDeliveriesPK("ws", "sub_b") }),
		"a forged item key":    with(func(c map[string]string) { c["pk"] = "WS#other#DLV#dlv_o1" }),
		"a forged sort key":    with(func(c map[string]string) { c["sk"] = "SUB#x" }),
	}
	for name, c := range cases {
		_, _, err := st.ListDeliveries(ctx, "ws", "sub_a", DeliveryFilter{Limit: 1, Cursor: c})
		if apierr.CodeOf(err) != apierr.Invalid || apierr.MessageOf(err) != "cursor is not valid" {
			t.Errorf("%s: %v, want Invalid: cursor is not valid", name, err)
		}
	}
	// A cursor of an unbounded listing, reused with a range it lies outside of.
	future := DeliveryFilter{Limit: 1, Cursor: own, Since: time.Now().Add(time.Hour)}
	if _, _, err := st.ListDeliveries(ctx, "ws", "sub_a", future); apierr.CodeOf(err) != apierr.Invalid {
		t.Errorf("cursor outside the range: %v, want Invalid", err)
	}
}

// A subscription list cursor names an id; one no subscription can have is Invalid.
func TestListSubscriptionsRefusesMalformedCursors(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	for range 2 {
		if _, err := st.CreateSubscription(ctx, newSub("ws", "https://example.com/hook", "whsec_x")); err != nil {
			t.Fatal(err)
		}
	}
	_, own, err := st.ListSubscriptions(ctx, "ws", 1, "")
	if err != nil || own == "" {
		t.Fatalf("first page: %q %v", own, err)
	}
	if page, _, err := st.ListSubscriptions(ctx, "ws", 1, own); err != nil || len(page) != 1 {
		t.Fatalf("own cursor: %v %v", page, err)
	}
	for _, id := range []string{"\xff\xfe", "sub_#x", "sub x", strings.Repeat("a", 257), "sub_\x00"} {
		c := base64.RawURLEncoding.EncodeToString([]byte(subCursorVersion + id))
		if _, _, err := st.ListSubscriptions(ctx, "ws", 1, c); apierr.CodeOf(err) != apierr.Invalid {
			t.Errorf("cursor of id %q: %v, want Invalid", fmt.Sprintf("%.20s", id), err)
		}
	}
}
