package doors

import (
	"context"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// Trigger serves POST /v1/integrations/trigger (Zapier, Make): the generic inbound message
// {channel, external_id, text, user?, data?, event_id?}, authenticated by authenticateTrigger.
func (d *Doors) Trigger(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	g := NewGeneric(GenericConfig{MaxBodyBytes: d.cfg.MaxBodyBytes, Authenticate: d.authenticateTrigger, Source: "trigger", IDs: d.cfg.IDs, Gate: d.gate}, d.queue, d.log, d.now).WithMetrics(d.metrics)
	return g.Handle(ctx, req)
}

// authenticateTrigger authenticates POST /v1/integrations/trigger (Zapier, Make): the body is the generic
// inbound message, proven by the scheme of the workspace's source named trigger (?source= for
// another): X-Hookgate-Signature (sha256 HMAC of the body) for hmac_sha256, which the default
// workspace's stack inbound secret is, Authorization: Bearer for a bearer source. Only the
// source's own scheme is accepted, and only hmac_sha256 or bearer: a plain secret or a Bearer
// token never stands in for an HMAC signature, and a source of another scheme opens nothing here.
// It returns the workspace and the source.
func (d *Doors) authenticateTrigger(ctx context.Context, req *events.APIGatewayV2HTTPRequest, body []byte) (string, string, error) {
	ws, source := d.workspace(req), strings.TrimSpace(req.QueryStringParameters["source"])
	if source == "" {
		source = "trigger"
	}
	if _, _, err := d.check(ctx, req, doorTrigger, ws, source, body); err != nil {
		return "", "", err
	}
	return ws, source, nil
}
