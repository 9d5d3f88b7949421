package doors

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/envcfg"
	"github.com/hookgate/hookgate/shared/limit"
	"github.com/hookgate/hookgate/shared/limit/limitenv"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/sources"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/verify"
)

// MaxStoredBody bounds a webhook body: the event that keeps it whole is one DynamoDB item
// (400 KB at most, with room for its other attributes).
const MaxStoredBody = 350_000

// HandlerFunc is a door's Lambda handler.
type HandlerFunc = func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Function is what a door function's main passes to fnmain.Start: the doors from the environment,
// serving the door pick chooses.
func Function(pick func(*Doors) HandlerFunc) func(context.Context, func(string) string, *slog.Logger) (HandlerFunc, error) {
	return func(ctx context.Context, getenv func(string) string, log *slog.Logger) (HandlerFunc, error) {
		d, err := FromEnv(ctx, getenv, log)
		if err != nil {
			return nil, err
		}
		return pick(d), nil
	}
}

// FromEnv builds the doors from the function's environment (every door function has the same):
//
//	HOOKGATE_TABLE, HOOKGATE_INBOUND_QUEUE_URL, HOOKGATE_DEFAULT_WORKSPACE  required
//	HOOKGATE_MAX_BODY_BYTES        bodies above are refused with 413 (default and at most MaxStoredBody)
//	HOOKGATE_DEDUPE_WINDOW_HOURS   how long a delivery id is remembered (default 72)
//	HOOKGATE_SOURCE_CACHE_SECONDS  how long a warm function reuses a source (default 10; 0 reads each time)
//	HOOKGATE_INBOUND_SECRET        the default workspace's trigger and binding secret, unless it stores sources of those names
//	HOOKGATE_TELEGRAM_SECRET_TOKEN the default workspace's Telegram secret token, likewise
//
// and the admission limits of limitenv.Gate (the daily run budget, the inbound rate).
func FromEnv(ctx context.Context, getenv func(string) string, log *slog.Logger) (*Doors, error) {
	env := envcfg.New(getenv)
	table := env.Required("HOOKGATE_TABLE")
	queueURL := env.Required("HOOKGATE_INBOUND_QUEUE_URL")
	cfg := Config{
		DefaultWorkspace: env.Required("HOOKGATE_DEFAULT_WORKSPACE"),
		MaxBodyBytes:     env.Int("HOOKGATE_MAX_BODY_BYTES", MaxStoredBody, 1024, 6_000_000),
		DedupeWindow:     time.Duration(env.Int("HOOKGATE_DEDUPE_WINDOW_HOURS", 72, 1, 24*30)) * time.Hour,
	}
	cfg.MaxBodyBytes = min(cfg.MaxBodyBytes, MaxStoredBody)
	ttl := time.Duration(env.Int("HOOKGATE_SOURCE_CACHE_SECONDS", 10, 0, 300)) * time.Second
	inboundSecret := env.Optional("HOOKGATE_INBOUND_SECRET", "")
	telegramToken := env.Optional("HOOKGATE_TELEGRAM_SECRET_TOKEN", "")
	limits := limitenv.Gate(env)
	if err := env.Err(); err != nil {
		return nil, err
	}
	aws, err := awscfg.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	st := store.New(aws.DynamoDB(), table, time.Now)
	res := sources.New(st, ttl, time.Now, cfg.DefaultWorkspace, StackSources(inboundSecret, telegramToken)...)
	gate := limit.NewGate(limit.New(aws.DynamoDB(), table, time.Now), limits, time.Now)
	return New(cfg, res, st, queue.NewSender(aws.SQS(), queueURL), log, time.Now).WithGate(gate), nil
}

// StackSources are the default workspace's sources that the stack's parameters configure, unless
// it stores sources of those names. The inbound secret is an HMAC key or a Bearer token (Zapier
// and Make send either); a workspace's own trigger or binding source is checked by its scheme only.
func StackSources(inboundSecret, telegramToken string) []store.Source {
	src := func(name string, scheme verify.Scheme, secret string) store.Source {
		s := store.Source{Name: name, Scheme: string(scheme)}
		if secret != "" {
			s.Secrets = []store.SigningSecret{{Value: secret}}
		}
		return s
	}
	return []store.Source{
		src("trigger", verify.HMACSHA256, inboundSecret), src("trigger", verify.Bearer, inboundSecret),
		src("binding", verify.HMACSHA256, inboundSecret), src("binding", verify.Bearer, inboundSecret),
		src("telegram", verify.Telegram, telegramToken),
	}
}
