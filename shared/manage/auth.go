package manage

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/verify"
)

// KeyLookup finds a stored API key by its plaintext (store.Store.LookupAPIKey): a malformed,
// unknown or revoked key is an Unauthorized error.
type KeyLookup interface {
	LookupAPIKey(ctx context.Context, plaintext string) (store.APIKey, error)
}

// Authenticator finds who calls an API-key route, the way the management API does: the admin key
// (kept as a SHA-256 digest, compared in constant time) acts on the default workspace, a stored
// key (looked up by its hash) on its own. Other functions with API-key routes (the event stream)
// use it too, so a key means the same everywhere.
type Authenticator struct {
	defaultWorkspace string
	admin            *verify.Secrets
	keys             KeyLookup
}

// NewAuthenticator returns an Authenticator. An empty adminKey admits no admin. The previous admin
// keys (a rotation's overlap: AdminApiKeyPrevious) admit the admin too, until they are removed.
func NewAuthenticator(defaultWorkspace, adminKey string, keys KeyLookup, previous ...string) *Authenticator {
	admin := verify.NewSecrets(adminKey)
	if adminKey != "" {
		admin = verify.NewSecrets(append([]string{adminKey}, previous...)...)
	}
	return &Authenticator{defaultWorkspace: defaultWorkspace, admin: admin, keys: keys}
}

// Authenticate finds the caller from the X-API-Key or Authorization: Bearer header. A missing,
// unknown or revoked key is Unauthorized. The key itself is never logged.
func (a *Authenticator) Authenticate(ctx context.Context, req *events.APIGatewayV2HTTPRequest) (Caller, error) {
	presented := presentedKey(req)
	if presented == "" {
		return Caller{}, apierr.New(apierr.Unauthorized, "missing API key: send X-API-Key or Authorization: Bearer")
	}
	if a.admin.Equal(presented) {
		return Caller{Workspace: a.defaultWorkspace, Admin: true}, nil
	}
	k, err := a.keys.LookupAPIKey(ctx, presented)
	if err != nil {
		return Caller{}, err
	}
	return Caller{Workspace: k.WorkspaceID, KeyID: k.ID}, nil
}
