package adapter

import (
	"bytes"
	"testing"
	"time"

	"github.com/hookgate/hookgate/local/emf"
	"github.com/hookgate/hookgate/shared/metrics"
)

func TestAdapterEmitsEMFForItsMessageRoutesOnly(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	r := newRig(t, `[{"name":"ops"}]`)
	r.h.WithMetrics(metrics.New(&buf, "", time.Now))
	ok := r.post(t, "ops", `{"text":"hello"}`)
	if ok.status != 202 {
		t.Fatalf("post: %d %s", ok.status, ok.raw)
	}
	if rep := r.post(t, "ops", `{"text":"  "}`); rep.status != 400 {
		t.Fatalf("empty text: %d", rep.status)
	}
	if rep := r.call(t, "GET "+runRoute, runParams("ops", ok), nil, ""); rep.status != 200 {
		t.Fatalf("status: %d %s", rep.status, rep.raw)
	}
	ds, err := emf.ParseAll(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, d := range ds {
		got[d.Name+"/"+d.Dimensions["Door"]+"/"+d.Dimensions["Reason"]] += d.Values[0]
	}
	if got["InboundAccepted/adapter/"] != 1 || got["InboundRefused/adapter/invalid_request"] != 1 || len(got) != 2 {
		t.Fatalf("metrics %v (a status poll counts nothing)", got)
	}
}
