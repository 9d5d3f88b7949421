package widget

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hookgate/hookgate/local/emf"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/verify"
)

func TestWidgetEmitsEMFForItsMessages(t *testing.T) {
	var buf bytes.Buffer
	q := &fakeQueue{}
	h := lambda.NewHandler(New(testCfg(), q, slog.New(slog.DiscardHandler), func() time.Time { return t0 }).
		WithMetrics(metrics.New(&buf, "", time.Now)).Handle).Invoke
	s := Session{Workspace: "default", ID: ids.New("wss", t0), Origin: site, Expires: t0.Add(time.Hour)}
	auth := map[string]string{"origin": site, "authorization": "Bearer " + Sign(verify.NewSecrets(signKey), s), "content-type": "application/json"}
	if r := invoke(t, h, "POST /v1/web/messages", auth, nil, `{"text":"hello","client_id":"c1"}`); r.status != 202 {
		t.Fatalf("send: %d %v", r.status, r.body)
	}
	if r := invoke(t, h, "POST /v1/web/messages", map[string]string{"origin": site}, nil, `{"text":"hello"}`); r.status != 401 {
		t.Fatalf("no token: %d %v", r.status, r.body)
	}
	ds, err := emf.ParseAll(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, d := range ds {
		got[d.Name+"/"+d.Dimensions["Door"]+"/"+d.Dimensions["Reason"]] += d.Values[0]
	}
	if got["InboundAccepted/widget/"] != 1 || got["InboundRefused/widget/unauthorized"] != 1 || len(got) != 2 {
		t.Fatalf("metrics %v", got)
	}
}
