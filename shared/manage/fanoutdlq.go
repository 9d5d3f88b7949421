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
	Replay(ctx context.Context, o fanoutdlq.Options) (fanoutdlq.Result, error)
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
			MaxMessages int      `json:"max_messages"`
			Workspaces  []string `json:"workspaces"` // event logs to rebuild from, past the stream's 24 h
		}
		if err := body(req, &in, true); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		if in.MaxMessages < 0 || in.MaxMessages > fanoutdlq.MaxMessages {
			return events.APIGatewayV2HTTPResponse{}, invalid("max_messages must be between 1 and 50")
		}
		if len(in.Workspaces) > fanoutdlq.MaxWorkspaces {
			return events.APIGatewayV2HTTPResponse{}, invalid("workspaces names at most 20 workspaces")
		}
		for _, ws := range in.Workspaces {
			if err := checkWorkspace("workspaces", ws); err != nil {
				return events.APIGatewayV2HTTPResponse{}, err
			}
		}
		res, err := r.Replay(ctx, fanoutdlq.Options{MaxMessages: in.MaxMessages, Workspaces: in.Workspaces})
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, apierr.Wrap(apierr.Unavailable, err, "FanoutDLQ could not be read; try again")
		}
		h.audit(ctx, c, "FanoutDLQ replayed", "replayed", res.Replayed, "records", res.Records, "failed", res.Failed, "rebuilt", res.Rebuilt,
			"expired", res.Expired, "unreadable", res.Unreadable, "remaining", res.Remaining)
		return respond(http.StatusOK, res), nil
	}
	return h
}
