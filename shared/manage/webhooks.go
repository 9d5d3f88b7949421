package manage

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/loop"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/store"
)

// Paging and rotation limits.
const (
	DefaultPageSize      = 20
	MaxPageSize          = 100
	DefaultRotateOverlap = 24 * time.Hour
	MaxRotateOverlap     = 7 * 24 * time.Hour
)

// WebhookView is a subscription as the API shows it. It never holds a secret: only how many
// secrets sign right now (two or more during a rotation's overlap).
type WebhookView struct {
	ID                  string          `json:"id"`
	URL                 string          `json:"url"`
	Events              []string        `json:"events"`
	Description         string          `json:"description"`
	Status              string          `json:"status"`
	DisabledReason      string          `json:"disabled_reason,omitempty"`
	ConsecutiveFailures int             `json:"consecutive_failures"`
	ActiveSecrets       int             `json:"active_secret_count"`
	HeaderNames         []string        `json:"header_names"`     // custom headers: names only, values are never shown
	Filter              json.RawMessage `json:"filter,omitempty"` // the payload filter, when there is one
	FIFO                bool            `json:"fifo"`             // deliveries one at a time, in log order
	ThrottleView                        // rate_limit, max_in_flight, circuit (limits.go)
	CreatedAt           time.Time       `json:"created_at"`
	UpdatedAt           time.Time       `json:"updated_at"`
}

// CreatedWebhook is the response to creating a subscription: the only time, with rotation, that
// its secret is shown.
type CreatedWebhook struct {
	WebhookView
	Secret string `json:"secret"`
}

// RotatedSecret is the response to a rotation.
type RotatedSecret struct {
	Secret            string    `json:"secret"`
	PreviousExpiresAt time.Time `json:"previous_expires_at"`
}

func (h *Handler) webhookView(sub store.Subscription) WebhookView {
	evs := sub.Events
	if evs == nil {
		evs = []string{}
	}
	return WebhookView{
		ID: sub.ID, URL: sub.URL, Events: evs, Description: sub.Description, Status: sub.Status,
		DisabledReason: sub.DisabledReason, ConsecutiveFailures: sub.ConsecutiveFailures,
		ActiveSecrets: sub.ActiveSecretCount(h.now()), CreatedAt: sub.CreatedAt, UpdatedAt: sub.UpdatedAt,
		ThrottleView: throttleView(sub),
		HeaderNames:  headerNames(sub), Filter: filterView(sub), FIFO: sub.FIFO,
	}
}

// ownHosts are the configured hosts and the one this request came in through: the API's
// execute-api host, or a custom domain even when it is not configured.
func (h *Handler) ownHosts(req *events.APIGatewayV2HTTPRequest) loop.Hosts {
	return h.cfg.OwnHosts.With(req.RequestContext.DomainName)
}

// POST /v1/webhooks {url, events[], secret?, description?, headers?, filter?, fifo?} → 201 with the secret.
func (h *Handler) createWebhook(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var in struct {
		URL         string            `json:"url"`
		Events      []string          `json:"events"`
		Secret      *string           `json:"secret"`
		Description string            `json:"description"`
		Headers     map[string]string `json:"headers"`
		Filter      json.RawMessage   `json:"filter"`
		FIFO        bool              `json:"fifo"`
		limitsIn
	}
	if err := body(req, &in, false); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	limits, _, err := in.patch()
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if err := checkURL(in.URL, h.cfg.AllowHTTPURLs, h.ownHosts(req)); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	evs, err := checkEvents(in.Events)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if err := checkDescription(in.Description); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	headers, err := checkHeaders(in.Headers)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	filter, err := checkFilter(in.Filter)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	secret := outbound.NewSecret()
	if in.Secret != nil {
		if err := checkSecret(*in.Secret); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		secret = *in.Secret
	}
	sub, err := h.store.CreateSubscription(ctx, store.Subscription{
		WorkspaceID: c.Workspace, URL: in.URL, Events: evs, Description: in.Description,
		Secrets: []store.SigningSecret{{Value: secret}}, Headers: store.NewCustomHeaders(headers), Filter: filter,
		FIFO: in.FIFO, RateLimit: limits.RateLimit, MaxInFlight: derefInt(limits.MaxInFlight),
	})
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	h.audit(ctx, c, "subscription created", "subscription_id", sub.ID)
	resp := respond(http.StatusCreated, CreatedWebhook{WebhookView: h.webhookView(sub), Secret: secret})
	resp.Headers["location"] = "/v1/webhooks/" + sub.ID
	return resp, nil
}

// GET /v1/webhooks?limit=&cursor= → {data, next_cursor}.
func (h *Handler) listWebhooks(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	limit := DefaultPageSize
	if v, ok := req.QueryStringParameters["limit"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageSize {
			return events.APIGatewayV2HTTPResponse{}, invalid("limit must be an integer from 1 to %d", MaxPageSize)
		}
		limit = n
	}
	subs, next, err := h.store.ListSubscriptions(ctx, c.Workspace, limit, req.QueryStringParameters["cursor"])
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	out := list[WebhookView]{Data: make([]WebhookView, 0, len(subs))}
	for _, sub := range subs {
		out.Data = append(out.Data, h.webhookView(sub))
	}
	if next != "" {
		out.NextCursor = &next
	}
	return respond(http.StatusOK, out), nil
}

// subID is the {id} path parameter. One that is not a subscription id names none: it is not
// found without asking the table (whose key size limit an overlong id would break).
func subID(req *events.APIGatewayV2HTTPRequest) (string, error) {
	id := req.PathParameters["id"]
	if !ids.Valid("sub", id) {
		return "", apierr.New(apierr.NotFound, "subscription not found")
	}
	return id, nil
}

// GET /v1/webhooks/{id}. Another workspace's subscription is not found (not forbidden), so ids
// do not leak across workspaces.
func (h *Handler) getWebhook(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	id, err := subID(req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	sub, err := h.store.GetSubscription(ctx, c.Workspace, id)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return respond(http.StatusOK, h.webhookView(sub)), nil
}

// PATCH /v1/webhooks/{id} {url?, events?, description?, status?, headers?, filter?}. headers
// replaces every custom header ({} removes them); filter replaces the payload filter ({} removes it).
func (h *Handler) patchWebhook(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	id, err := subID(req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	var in struct {
		URL         *string            `json:"url"`
		Events      *[]string          `json:"events"`
		Description *string            `json:"description"`
		Status      *string            `json:"status"`
		Headers     *map[string]string `json:"headers"`
		Filter      json.RawMessage    `json:"filter"`
		FIFO        *bool              `json:"fifo"`
		limitsIn
	}
	if err := body(req, &in, false); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if in.FIFO != nil {
		// The queue a delivery waits in is chosen when it is created: switching would leave the
		// deliveries already queued out of order with the new ones.
		return events.APIGatewayV2HTTPResponse{}, invalid("fifo is chosen when a subscription is created; create another subscription to change it")
	}
	limits, setLimits, err := in.patch()
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	patch := store.SubscriptionPatch{URL: in.URL, Description: in.Description, Status: in.Status}
	if in.Headers != nil {
		headers, err := checkHeaders(*in.Headers)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		patch.Headers = &headers
	}
	if in.Filter != nil && string(in.Filter) != "null" {
		filter, err := checkFilter(in.Filter)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		patch.Filter = &filter
	}
	if in.URL != nil {
		if err := checkURL(*in.URL, h.cfg.AllowHTTPURLs, h.ownHosts(req)); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
	}
	if in.Events != nil {
		evs, err := checkEvents(*in.Events)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		patch.Events = &evs
	}
	if in.Description != nil {
		if err := checkDescription(*in.Description); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
	}
	if in.Status != nil && *in.Status != store.SubscriptionActive && *in.Status != store.SubscriptionDisabled {
		return events.APIGatewayV2HTTPResponse{}, invalid("status must be active or disabled")
	}
	sub, err := h.store.UpdateSubscription(ctx, c.Workspace, id, patch)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if setLimits {
		if sub, err = h.store.SetSubscriptionLimits(ctx, c.Workspace, id, limits); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
	}
	h.audit(ctx, c, "subscription updated", "subscription_id", sub.ID, "status", sub.Status)
	return respond(http.StatusOK, h.webhookView(sub)), nil
}

// DELETE /v1/webhooks/{id} → 204.
func (h *Handler) deleteWebhook(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	id, err := subID(req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if err := h.store.DeleteSubscription(ctx, c.Workspace, id); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	h.audit(ctx, c, "subscription deleted", "subscription_id", id)
	return noContent(), nil
}

// POST /v1/webhooks/{id}/rotate-secret {secret?, overlap_seconds?} → {secret, previous_expires_at}.
// Every previous secret keeps signing until previous_expires_at at the latest.
func (h *Handler) rotateSecret(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	id, err := subID(req)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	var in struct {
		Secret         *string `json:"secret"`
		OverlapSeconds *int64  `json:"overlap_seconds"`
	}
	if err := body(req, &in, true); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	overlap, err := rotateOverlap(in.OverlapSeconds, DefaultRotateOverlap, MaxRotateOverlap)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	secret := outbound.NewSecret()
	if in.Secret != nil {
		if err := checkSecret(*in.Secret); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		secret = *in.Secret
	}
	sub, err := h.store.RotateSecret(ctx, c.Workspace, id, secret, overlap)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	h.audit(ctx, c, "signing secret rotated", "subscription_id", sub.ID, "overlap_seconds", int64(overlap/time.Second))
	// The store stamps the rotation's time as UpdatedAt; the previous secrets end overlap later.
	return respond(http.StatusOK, RotatedSecret{Secret: secret, PreviousExpiresAt: sub.UpdatedAt.Add(overlap)}), nil
}

// rotateOverlap is a rotation's overlap_seconds (def when not given) as a duration of at most
// most: how long the previous secrets keep working.
func rotateOverlap(seconds *int64, def, most time.Duration) (time.Duration, error) {
	if seconds == nil {
		return def, nil
	}
	if maxSec := int64(most / time.Second); *seconds < 0 || *seconds > maxSec {
		return 0, invalid("overlap_seconds must be from 0 to %d", maxSec)
	}
	return time.Duration(*seconds) * time.Second, nil
}
