package doors

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/apigw"
	"github.com/hookgate/hookgate/shared/fields"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/normalize"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/verify"
)

// validWorkspace is the shape of a workspace id (as the template's DefaultWorkspace and the
// management API's keys have it); anything else cannot exist.
var validWorkspace = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

func validSourceName(s string) bool { return normalize.ValidSource(s) }

// payloadIDField is where a scheme's provider puts its own delivery id in the payload.
var payloadIDField = map[verify.Scheme]string{verify.Stripe: "id", verify.Slack: "event_id", verify.Telegram: "update_id"}

// Webhook handles POST /v1/webhooks/generic/{workspace_id}: any JSON object from any SaaS,
// verified with the workspace's source named by ?source= (default generic), normalized, recorded
// as the event webhook.{source}.{event_type_slug}, and run by an agent when a role route matches.
func (d *Doors) Webhook(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return d.serve(ctx, "webhook", &req, d.webhook)
}

func (d *Doors) webhook(ctx context.Context, req *events.APIGatewayV2HTTPRequest) (Accepted, error) {
	ws := req.PathParameters["workspace_id"]
	source := strings.TrimSpace(req.QueryStringParameters["source"])
	if source == "" {
		source = "generic"
	}
	body, src, res, err := d.verified(ctx, req, doorWebhook, ws, source)
	if err != nil {
		return Accepted{}, err
	}
	// The payload is stored byte for byte, not decoded: only bytes that are not UTF-8 are refused.
	if err := fields.CheckRaw(body); err != nil {
		return Accepted{}, err
	}
	if challenge := slackChallenge(src.Verifier.Scheme(), body); challenge != "" {
		return Accepted{Accepted: true, Challenge: challenge}, nil // a verified handshake, not an event
	}
	ev, err := normalize.Normalize(normalize.Input{
		WorkspaceID: ws, Query: req.QueryStringParameters, Body: body,
		Header:             func(name string) string { return apigw.Header(req, name) },
		ProviderDeliveryID: res.DeliveryID, PayloadIDField: payloadIDField[src.Verifier.Scheme()],
	})
	if err != nil {
		return Accepted{}, err
	}
	routes, err := d.store.RoleRoutes(ctx, ws)
	if err != nil {
		return Accepted{}, apierr.Wrap(apierr.Unavailable, err, "the workspace's routes could not be read; retry later")
	}
	// Replays are recognised by the provider's own id where its scheme has one (signed, unlike the
	// generic headers), else by the dedupe key; and, where the scheme signs the body but no time,
	// by the body itself: a copy of a signed body with other unsigned URL parameters or headers
	// (?event_type=, ?dedupe_key=, X-Request-Id) is the same delivery, acknowledged and not
	// processed again.
	scope, key := ev.SourceKind, cmp.Or(ev.DeliveryID, ev.DedupeKey)
	var keys []dedupeKey
	bodyKey := ""
	if s := src.Verifier.Scheme(); s == verify.HMACSHA256 || s == verify.GitHub {
		sum := sha256.Sum256(body)
		bodyKey = "sha256:" + hex.EncodeToString(sum[:])
		keys = append(keys, dedupeKey{scope + "#body", bodyKey})
	}
	if key != "" {
		keys = append(keys, dedupeKey{scope, key})
	}
	first, resend, admit, err := d.claimAll(ctx, ws, keys)
	if err != nil || !resend {
		return Accepted{}, err
	}

	now := d.now().UTC()
	subject := cmp.Or(bodyKey, key) // a copy queued again gets the same ids, which SQS and the worker drop
	if subject == "" {
		subject = ids.New("whk", now) // nothing to dedupe by: every delivery is its own event
	}
	data, err := eventData(ev)
	if err != nil {
		return Accepted{}, err
	}
	m := queue.Inbound{
		Version: queue.InboundVersion, WorkspaceID: ws, MessageID: d.cfg.IDs.Derive("msg", ws, scope, subject),
		Source: ev.SourceKind, ReceivedAt: now, Group: d.cfg.IDs.Derive("grp", ws, scope, subject),
		Event: &queue.Event{Subject: scope + "\x00" + subject, Type: ev.Role, Data: data},
	}
	acc := Accepted{Accepted: first, Role: ev.Role}
	if route, ok := normalize.Route(roleRoutes(routes), ev.Role); ok {
		m.Channel, m.ExternalID = ev.SourceKind, ev.SourceIdentifier
		m.ThreadID = d.cfg.IDs.Thread(ws, m.Channel, m.ExternalID)
		m.RunID = d.cfg.IDs.Derive("run", ws, scope, subject)
		m.Text = ev.Role // the run's input: the role as text, the event (m.Event.Data) as data
		m.Agent = route.Agent
		acc.ThreadID, acc.RunID = m.ThreadID, m.RunID
	}
	if err := d.send(ctx, &m, ws, first, admit, keys...); err != nil {
		return Accepted{}, err
	}
	return acc, nil
}

// slackChallenge returns the challenge of a verified Slack url_verification request, or "".
func slackChallenge(s verify.Scheme, body []byte) string {
	if s != verify.Slack {
		return ""
	}
	var probe struct{ Type, Challenge string }
	if json.Unmarshal(body, &probe) != nil || probe.Type != "url_verification" {
		return ""
	}
	return probe.Challenge
}

// eventData is the event's JSON with the payload spliced in as received, byte for byte
// (encoding/json would compact it and escape <, > and &).
func eventData(ev normalize.Event) (string, error) {
	payload := ev.Payload
	ev.Payload = nil
	meta, err := json.Marshal(ev) // ends with "payload":null}
	if err != nil {
		return "", fmt.Errorf("encode event: %w", err)
	}
	meta, ok := bytes.CutSuffix(meta, []byte("null}"))
	if !ok {
		return "", fmt.Errorf("encode event: unexpected layout")
	}
	return string(meta) + string(payload) + "}", nil
}

func roleRoutes(rs []store.RoleRoute) []normalize.RoleRoute {
	out := make([]normalize.RoleRoute, len(rs))
	for i, r := range rs {
		out[i] = normalize.RoleRoute{Pattern: r.Pattern, Agent: r.Agent}
	}
	return out
}
