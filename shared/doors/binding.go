package doors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/fields"
	"github.com/hookgate/hookgate/shared/queue"
)

// Binding handles POST /v1/inbound/binding/status: a connector reports
// {channel, binding_id, status, detail?}. The latest report of each binding is stored and
// readable (GET /v1/bindings), and each is recorded as binding.status. The sender proves itself
// with the workspace's source named binding (?source= for another) or, for the default
// workspace, the stack's inbound secret (hmac_sha256), by that source's scheme only (hmac_sha256,
// bearer or standard_webhooks): a plain secret or a Bearer token never stands in for an HMAC
// signature. Reports are ordered by the time they carry (reported_at), and a copy of an accepted
// report is acknowledged with {"accepted": false} and changes nothing.
func (d *Doors) Binding(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return d.serve(ctx, "binding", &req, d.binding)
}

type bindingReport struct {
	Channel   string `json:"channel"`
	BindingID string `json:"binding_id"`
	Status    string `json:"status"`
	Detail    string `json:"detail"`
	// ReportedAt is when the connector saw the status (RFC 3339, in the signed body): reports are
	// ordered by it, so a replayed older report changes nothing.
	ReportedAt *time.Time `json:"reported_at"`
}

// maxReportSkew is how far in the future a report's time may be (clocks differ): further, and it
// would hold the binding's status against every later report.
const maxReportSkew = 5 * time.Minute

func (d *Doors) binding(ctx context.Context, req *events.APIGatewayV2HTTPRequest) (Accepted, error) {
	ws, source := d.workspace(req), strings.TrimSpace(req.QueryStringParameters["source"])
	if source == "" {
		source = "binding"
	}
	body, _, res, err := d.verified(ctx, req, doorBinding, ws, source)
	if err != nil {
		return Accepted{}, err
	}
	var r bindingReport
	if err := json.Unmarshal(body, &r); err != nil || !strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
		return Accepted{}, apierr.New(apierr.Invalid, "body must be a JSON object {channel, binding_id, status, detail?}")
	}
	if err := fields.CheckJSON(body); err != nil {
		return Accepted{}, err
	}
	r.Channel, r.BindingID, r.Status = strings.TrimSpace(r.Channel), strings.TrimSpace(r.BindingID), strings.TrimSpace(r.Status)
	for _, f := range []struct {
		name, value string
		max         int
	}{{"channel", r.Channel, 64}, {"binding_id", r.BindingID, 256}, {"status", r.Status, 64}} {
		if f.value == "" {
			return Accepted{}, apierr.New(apierr.Invalid, "%s is required", f.name)
		}
		if len(f.value) > f.max || !fields.Printable(f.value) {
			return Accepted{}, apierr.New(apierr.Invalid, "%s must be at most %d printable characters", f.name, f.max)
		}
	}
	if len(r.Detail) > 2000 || !utf8.ValidString(r.Detail) {
		return Accepted{}, apierr.New(apierr.Invalid, "detail must be at most 2000 bytes of UTF-8")
	}
	now := d.now().UTC()
	// The report's time: the signed body's reported_at, else the signed timestamp of the request
	// (Standard Webhooks), else its arrival.
	at := now
	switch {
	case r.ReportedAt != nil:
		if r.ReportedAt.After(now.Add(maxReportSkew)) {
			return Accepted{}, apierr.New(apierr.Invalid, "reported_at is in the future")
		}
		// An old report is a replay, or would order before every real one (far enough back, its
		// nanoseconds even wrap and it would order after them, freezing the status).
		if r.ReportedAt.Before(now.Add(-d.cfg.DedupeWindow)) {
			return Accepted{}, apierr.New(apierr.Invalid, "reported_at is older than the dedupe window (%s)", d.cfg.DedupeWindow)
		}
		at = r.ReportedAt.UTC()
	case !res.Timestamp.IsZero():
		at = res.Timestamp.UTC()
	}
	// A byte-for-byte copy of a report already accepted is a replay: acknowledged, not processed.
	sum := sha256.Sum256(body)
	scope, key := "binding:"+source, hex.EncodeToString(sum[:])
	first, resend, admit, err := d.claim(ctx, ws, scope, key)
	if err != nil || !resend {
		return Accepted{}, err
	}
	m := queue.Inbound{
		Version: queue.InboundVersion, WorkspaceID: ws, MessageID: d.cfg.IDs.Derive("bnd", ws, scope, key), Source: "binding", ReceivedAt: now,
		Group:   d.cfg.IDs.Derive("grp", ws, "binding", r.Channel, r.BindingID), // one binding's reports in order
		Binding: &queue.Binding{Channel: r.Channel, BindingID: r.BindingID, Status: r.Status, Detail: r.Detail, ReportedAt: at},
	}
	if err := d.send(ctx, &m, ws, first, admit, dedupeKey{scope, key}); err != nil {
		return Accepted{}, err
	}
	return Accepted{Accepted: first, Role: "binding.status"}, nil
}
