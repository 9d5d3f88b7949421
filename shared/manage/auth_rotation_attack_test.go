package manage

import (
	"context"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/store"
)

type noKeys struct{}

func (noKeys) LookupAPIKey(context.Context, string) (store.APIKey, error) {
	return store.APIKey{}, apierr.New(apierr.Unauthorized, "invalid API key")
}

// An empty AdminApiKeyPrevious (the rotation's overlap ended) admits no empty or blank key, and a
// previous key never admits anyone once the current admin key is unset.
func TestAdminKeyPreviousEmptyAdmitsNothing(t *testing.T) {
	t.Parallel()
	const cur, prev = "current-admin-key-0123456789", "previous-admin-key-0123456789"
	presented := []map[string]string{
		{"x-api-key": ""}, {"x-api-key": " "}, {"authorization": "Bearer "}, {"authorization": "Bearer  \t"},
		{"x-api-key": prev}, {"authorization": "Bearer " + prev},
	}
	for _, a := range []*Authenticator{
		NewAuthenticator("default", cur, noKeys{}, ""),
		NewAuthenticator("default", cur, noKeys{}),
		NewAuthenticator("default", "", noKeys{}, prev),
		NewAuthenticator("default", "", noKeys{}, ""),
	} {
		for _, h := range presented {
			c, err := a.Authenticate(context.Background(), &events.APIGatewayV2HTTPRequest{Headers: h})
			if err == nil || c.Admin {
				t.Errorf("headers %q admitted: %+v", h, c)
			}
		}
	}
}
