package fanout

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/local/emf"
	"github.com/hookgate/hookgate/shared/manage"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/store"
)

func TestFanOutEmitsEMFLagAndPassesTheEventsTrace(t *testing.T) {
	var buf bytes.Buffer
	st := &fakeStore{created: map[string]store.Delivery{}, subs: []store.Subscription{{ID: "sub_all", Events: []string{"*"}}}}
	q := &fakeQueue{}
	now := time.Date(2026, 11, 25, 10, 0, 2, 0, time.UTC) // 2 s after the events' created_at
	h := New(st, q, manage.MatchEvent, slog.New(slog.DiscardHandler)).WithMetrics(metrics.New(&buf, "", time.Now), func() time.Time { return now })
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	traced := eventRecord("1", "evt_1", "run.completed", `{}`)
	traced.Change.NewImage["trace"] = str(tp)
	forged := eventRecord("2", "evt_2", "run.completed", `{}`)
	forged.Change.NewImage["trace"] = str("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nX-Evil: 1")
	resp, _ := h.Handle(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{traced, forged}})
	if len(resp.BatchItemFailures) != 0 || len(q.sent) != 2 {
		t.Fatalf("failures %v, sent %d", resp.BatchItemFailures, len(q.sent))
	}
	traces := map[string]string{}
	for _, m := range q.sent {
		traces[m.DeliveryID] = m.Trace
	}
	for _, d := range st.created {
		want := ""
		if d.EventID == "evt_1" {
			want = tp
		}
		if traces[d.ID] != want {
			t.Fatalf("delivery of %s queued with trace %q, want %q", d.EventID, traces[d.ID], want)
		}
	}
	ds, err := emf.ParseAll(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Name != metrics.FanoutLag || ds[0].Dimensions["Target"] != "webhook" || len(ds[0].Values) != 2 || ds[0].Values[0] != 2000 {
		t.Fatalf("metrics %+v", ds)
	}
}
