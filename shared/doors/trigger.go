package doors

import (
	"context"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/inbound"
)

// TriggerHandler serves POST /v1/integrations/trigger (Zapier, Make): the generic inbound message
// {channel, external_id, text, user?, data?, event_id?}, authenticated by Trigger.
func (d *Doors) TriggerHandler() func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return inbound.New(inbound.Config{MaxBodyBytes: d.cfg.MaxBodyBytes, Authenticate: d.Trigger, Source: "trigger"}, d.queue, d.log, d.now).Handle
}

// Trigger authenticates POST /v1/integrations/trigger (Zapier, Make): the body is the generic
// inbound message, proven by X-Hookgate-Signature (sha256 HMAC of the body) or by
// Authorization: Bearer with the secret of the workspace's source named trigger (?source= for
// another) or, for the default workspace, the stack's inbound secret. It returns the workspace.
func (d *Doors) Trigger(ctx context.Context, req *events.APIGatewayV2HTTPRequest, body []byte) (string, error) {
	ws, source := d.workspace(req), strings.TrimSpace(req.QueryStringParameters["source"])
	if source == "" {
		source = "trigger"
	}
	if !validWorkspace.MatchString(ws) || !validSourceName(source) {
		return "", apierr.New(apierr.NotFound, "unknown workspace or source")
	}
	as, err := d.hookgateScheme(ctx, req, ws, source)
	if err != nil {
		return "", err
	}
	if _, _, err := d.check(ctx, req, ws, source, as, body); err != nil {
		return "", err
	}
	return ws, nil
}
