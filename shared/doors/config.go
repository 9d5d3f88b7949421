package doors

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/envcfg"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/verify"
)

// MaxStoredBody bounds a webhook body: the event that keeps it whole is one DynamoDB item
// (400 KB at most, with room for its other attributes).
const MaxStoredBody = 350_000

// HandlerFunc is a door's Lambda handler.
type HandlerFunc = func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// IDKeyFromEnv reads HOOKGATE_ID_DERIVATION_KEY (the IdDerivationKey parameter, at least
// ids.MinKeyLen characters): the key every function that derives ids from what senders chose uses.
func IDKeyFromEnv(env *envcfg.Reader) ids.Keyed {
	return ids.NewKeyed(env.Secret("HOOKGATE_ID_DERIVATION_KEY", ids.MinKeyLen))
}

// StackSources are the default workspace's sources that the stack's parameters configure, unless
// it stores sources of those names. The inbound secret is an HMAC key or a Bearer token (Zapier
// and Make send either); a workspace's own trigger or binding source is checked by its scheme only.
// inboundSecrets are the current secret, then the one being rotated out (InboundSecretPrevious),
// which verifies too until it is removed.
func StackSources(inboundSecrets []string, telegramToken string) []store.Source {
	src := func(name string, scheme verify.Scheme, secrets ...string) store.Source {
		s := store.Source{Name: name, Scheme: string(scheme)}
		if len(secrets) == 0 || secrets[0] == "" {
			return s // no current secret: the door stays shut
		}
		for _, sec := range secrets {
			if sec != "" {
				s.Secrets = append(s.Secrets, store.SigningSecret{Value: sec})
			}
		}
		return s
	}
	return []store.Source{
		src("trigger", verify.HMACSHA256, inboundSecrets...), src("trigger", verify.Bearer, inboundSecrets...),
		src("binding", verify.HMACSHA256, inboundSecrets...), src("binding", verify.Bearer, inboundSecrets...),
		src("telegram", verify.Telegram, telegramToken),
	}
}
