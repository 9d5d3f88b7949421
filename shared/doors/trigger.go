package doors

import (
	"context"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
)

// TriggerHandler serves POST /v1/integrations/trigger (Zapier, Make): the generic inbound message
// {channel, external_id, text, user?, data?, event_id?}, authenticated by Trigger.
func (d *Doors) TriggerHandler() func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return NewGeneric(GenericConfig{MaxBodyBytes: d.cfg.MaxBodyBytes, Authenticate: d.Trigger, Source: "trigger", Gate: d.gate}, d.queue, d.log, d.now).Handle
}

// Trigger authenticates POST /v1/integrations/trigger (Zapier, Make): the body is the generic
// inbound message, proven by the scheme of the workspace's source named trigger (?source= for
// another): X-Hookgate-Signature (sha256 HMAC of the body) for hmac_sha256, which the default
// workspace's stack inbound secret is, Authorization: Bearer for a bearer source. Only the
// source's own scheme is accepted: a plain secret or a Bearer token never stands in for an HMAC
// signature. It returns the workspace.
func (d *Doors) Trigger(ctx context.Context, req *events.APIGatewayV2HTTPRequest, body []byte) (string, error) {
	ws, source := d.workspace(req), strings.TrimSpace(req.QueryStringParameters["source"])
	if source == "" {
		source = "trigger"
	}
	if !validWorkspace.MatchString(ws) || !validSourceName(source) {
		return "", apierr.New(apierr.NotFound, "unknown workspace or source")
	}
	if _, _, err := d.check(ctx, req, ws, source, body); err != nil {
		return "", err
	}
	return ws, nil
}
