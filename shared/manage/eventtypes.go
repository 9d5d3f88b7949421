package manage

import (
	"context"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/catalog"
)

// GET /v1/event-types → {data: [{name, description, schema, name_pattern?}], next_cursor: null}:
// the catalog, one page (it is small and the same for every workspace).
func (h *Handler) listEventTypes(context.Context, Caller, *events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return respond(http.StatusOK, list[catalog.EventType]{Data: catalog.All()}), nil
}
