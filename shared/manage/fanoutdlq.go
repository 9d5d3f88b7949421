package manage

import (
	"context"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/fanoutdlq"
)

// FanoutReplayer replays FanoutDLQ's messages (shared/fanoutdlq).
type FanoutReplayer interface {
	Replay(ctx context.Context, limit int) (fanoutdlq.Result, error)
}

// RouteFanoutReplay replays what the fan-out gave up on. It acts on every workspace's events, so
// only the admin key may call it.
const RouteFanoutReplay = "POST /v1/admin/fanout-dlq/replay"

// WithFanoutReplay adds the FanoutDLQ replay route.
func (h *Handler) WithFanoutReplay(r FanoutReplayer) *Handler {
	h.routes[RouteFanoutReplay] = func(ctx context.Context, c Caller, req *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		if !c.Admin {
			return events.APIGatewayV2HTTPResponse{}, apierr.New(apierr.Forbidden, "only the admin key may replay FanoutDLQ")
		}
		var in struct {
			MaxMessages int `json:"max_messages"`
		}
		if err := body(req, &in, true); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		if in.MaxMessages < 0 || in.MaxMessages > fanoutdlq.MaxMessages {
			return events.APIGatewayV2HTTPResponse{}, invalid("max_messages must be between 1 and 50")
		}
		res, err := r.Replay(ctx, in.MaxMessages)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, apierr.Wrap(apierr.Unavailable, err, "FanoutDLQ could not be read; try again")
		}
		h.audit(ctx, c, "FanoutDLQ replayed", "replayed", res.Replayed, "records", res.Records, "failed", res.Failed,
			"expired", res.Expired, "unreadable", res.Unreadable, "remaining", res.Remaining)
		return respond(http.StatusOK, res), nil
	}
	return h
}
