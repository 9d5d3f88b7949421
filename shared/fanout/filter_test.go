package fanout

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/manage"
	"github.com/hookgate/hookgate/shared/store"
)

// Payload filters select among the events a subscription's types match: a filter that does not
// hold, or a stored one that does not compile, creates no delivery.
func TestFanOutAppliesPayloadFilters(t *testing.T) {
	st := &fakeStore{created: map[string]store.Delivery{}, subs: []store.Subscription{
		{ID: "sub_big", Events: []string{"webhook.*"}, Filter: `{"data.payload.amount":{"$gte":100}}`},
		{ID: "sub_eur", Events: []string{"*"}, Filter: `{"type":"webhook.shop.order","data.payload.currency":{"$in":["eur"]}}`},
		{ID: "sub_all", Events: []string{"webhook.*"}},
		{ID: "sub_broken", Events: []string{"*"}, Filter: `{"$or":[]}`},
		{ID: "sub_runs", Events: []string{"run.*"}, Filter: `{"data.amount":{"$gte":0}}`},
	}}
	h := New(st, &fakeQueue{}, manage.MatchEvent, slog.New(slog.DiscardHandler))
	batch := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		eventRecord("1", "evt_small", "webhook.shop.order", `{"payload":{"amount":5,"currency":"eur"}}`),
		eventRecord("2", "evt_big", "webhook.shop.order", `{"payload":{"amount":500,"currency":"usd"}}`),
		eventRecord("3", "evt_run", "run.completed", `{"run_id":"r"}`),
	}}
	resp, _ := h.Handle(context.Background(), batch)
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", resp.BatchItemFailures)
	}
	got := map[string]bool{}
	for _, d := range st.created {
		got[d.EventID+"→"+d.SubscriptionID] = true
	}
	want := map[string]bool{"evt_small→sub_eur": true, "evt_small→sub_all": true, "evt_big→sub_big": true, "evt_big→sub_all": true}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("deliveries %v, want %v", got, want)
	}
}

// BenchmarkFanoutFilter plans one event for ten subscriptions: by type patterns only (baseline),
// and with a payload filter on each that lets it through (the same deliveries), so that the
// ratio is the cost of decoding the event once and evaluating ten filters.
func BenchmarkFanoutFilter(b *testing.B) {
	rec := eventRecord("1", "evt_bench", "webhook.stripe.charge_succeeded",
		`{"source":"stripe","source_kind":"webhook.stripe","event_type":"charge.succeeded","event_type_slug":"charge_succeeded","role":"webhook.stripe.charge_succeeded","dedupe_key":"d","source_identifier":"ch_1","payload":{"id":"ch_1","amount":2500,"currency":"eur","customer":{"id":"cus_1","country":"DE"},"metadata":{"order":"o-17"}}}`)
	filters := []string{
		`{"data.payload.amount":{"$gte":100}}`,
		`{"data.payload.currency":{"$in":["eur","usd"]}}`,
		`{"data.payload.customer.country":"DE"}`,
		`{"data.payload.metadata.order":{"$exists":true}}`,
		`{"$or":[{"data.payload.amount":{"$gt":10000}},{"data.payload.currency":"eur"}]}`,
		`{"$not":{"data.payload.customer.country":"US"}}`,
		`{"type":"webhook.stripe.charge_succeeded","data.payload.amount":{"$lt":1000000}}`,
		`{"data.source":"stripe"}`,
		`{"$and":[{"data.payload.amount":{"$gte":1}},{"data.payload.amount":{"$lte":5000}}]}`,
		`{"data.payload.id":{"$ne":"ch_0"}}`,
	}
	for _, tc := range []struct {
		name   string
		filter bool
	}{{"baseline", false}, {"filter", true}} {
		b.Run(tc.name, func(b *testing.B) {
			st := &fakeStore{created: map[string]store.Delivery{}}
			for i, f := range filters {
				sub := store.Subscription{ID: fmt.Sprintf("sub_%d", i), Events: []string{"webhook.stripe.*", "run.completed"}}
				if tc.filter {
					sub.Filter = f
				}
				st.subs = append(st.subs, sub)
			}
			h := New(st, &fakeQueue{}, manage.MatchEvent, slog.New(slog.DiscardHandler))
			cache := newAudiences()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				want, err := h.plan(ctx, rec, cache)
				if err != nil || len(want) != len(filters) {
					b.Fatalf("%d deliveries, %v", len(want), err)
				}
			}
		})
	}
}

// An event whose data the filters cannot read (a number out of range inside a filtered object)
// is skipped by the filtered subscriptions only, and never blocks the stream.
func TestFanOutSkipsWhatFiltersCannotRead(t *testing.T) {
	st := &fakeStore{created: map[string]store.Delivery{}, subs: []store.Subscription{
		{ID: "sub_filtered", Events: []string{"*"}, Filter: `{"data.payload":{"$exists":true}}`},
		{ID: "sub_plain", Events: []string{"*"}},
	}}
	h := New(st, &fakeQueue{}, manage.MatchEvent, slog.New(slog.DiscardHandler))
	resp, _ := h.Handle(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		eventRecord("1", "evt_huge", "webhook.shop.order", `{"payload":{"amount":1e999}}`),
	}})
	if len(resp.BatchItemFailures) != 0 || len(st.created) != 1 {
		t.Fatalf("failures %v, deliveries %v", resp.BatchItemFailures, st.created)
	}
	for _, d := range st.created {
		if d.SubscriptionID != "sub_plain" {
			t.Fatalf("delivered to %s", d.SubscriptionID)
		}
	}
}
