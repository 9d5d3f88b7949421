package doors

import (
	"context"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/apigw"
	"github.com/hookgate/hookgate/shared/fields"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/queue"
)

// Binding handles POST /v1/inbound/binding/status: a connector reports
// {channel, binding_id, status, detail?}. The latest report of each binding is stored and
// readable (GET /v1/bindings), and each is recorded as binding.status. The sender proves itself
// with the workspace's source named binding (?source= for another) or, for the default
// workspace, the stack's inbound secret (hmac_sha256), by that source's scheme only: a plain
// secret or a Bearer token never stands in for an HMAC signature.
func (d *Doors) Binding(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return d.serve(ctx, "binding", &req, d.binding)
}

type bindingReport struct {
	Channel   string `json:"channel"`
	BindingID string `json:"binding_id"`
	Status    string `json:"status"`
	Detail    string `json:"detail"`
}

func (d *Doors) binding(ctx context.Context, req *events.APIGatewayV2HTTPRequest) (Accepted, error) {
	ws, source := d.workspace(req), strings.TrimSpace(req.QueryStringParameters["source"])
	if source == "" {
		source = "binding"
	}
	if !validWorkspace.MatchString(ws) || !validSourceName(source) {
		return Accepted{}, apierr.New(apierr.NotFound, "unknown workspace or source")
	}
	body, err := apigw.Body(req, d.cfg.MaxBodyBytes) // 413 before anything else
	if err != nil {
		return Accepted{}, err
	}
	if _, _, err := d.check(ctx, req, ws, source, body); err != nil {
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
	m := queue.Inbound{
		Version: queue.InboundVersion, WorkspaceID: ws, MessageID: ids.New("bnd", now), Source: "binding", ReceivedAt: now,
		Group:   ids.Derive("grp", ws, "binding", r.Channel, r.BindingID), // one binding's reports in order
		Binding: &queue.Binding{Channel: r.Channel, BindingID: r.BindingID, Status: r.Status, Detail: r.Detail, ReportedAt: now},
	}
	if err := d.send(ctx, &m, ws, "", "", false); err != nil {
		return Accepted{}, err
	}
	return Accepted{Accepted: true, Role: "binding.status"}, nil
}
