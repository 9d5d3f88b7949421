// Command adapter is the Lambda behind the webhook adapter routes (/webhook/{name}/...).
package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/adapter"
	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/apigw"
	"github.com/hookgate/hookgate/shared/approval"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/envcfg"
	"github.com/hookgate/hookgate/shared/fnmain"
	"github.com/hookgate/hookgate/shared/ids"
	"github.com/hookgate/hookgate/shared/limit"
	"github.com/hookgate/hookgate/shared/limit/limitenv"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/seal"
	"github.com/hookgate/hookgate/shared/store"
)

func main() { fnmain.Start(newHandler) }

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), error) {
	env := envcfg.New(getenv)
	// Events, runs, messages and threads expire this long after they are written (0: kept).
	retention := time.Duration(env.Int("HOOKGATE_RETENTION_DAYS", 90, 0, 36500)) * 24 * time.Hour
	shards := env.Int("HOOKGATE_EVENT_SHARDS", 1, 1, store.MaxShards)
	table := env.Required("HOOKGATE_TABLE")
	// Opens the adapters' secrets (kms:Decrypt, adapter.secret) and seals the stack's seeded ones
	// (kms:GenerateDataKey, adapter.secret).
	keyID := env.Required("HOOKGATE_KMS_KEY_ID")
	queueURL := env.Required("HOOKGATE_INBOUND_QUEUE_URL")
	workspace := env.Required("HOOKGATE_DEFAULT_WORKSPACE")
	ttl := time.Duration(env.Int("HOOKGATE_SOURCE_CACHE_SECONDS", 10, 0, 300)) * time.Second
	maxBody := env.Int("HOOKGATE_MAX_BODY_BYTES", adapter.DefaultMaxBodyBytes, 1024, 6_000_000)
	cfg := adapter.Config{
		Lease:         time.Duration(env.Int("HOOKGATE_RUN_LEASE_SECONDS", 900, 30, 43200)) * time.Second,
		MaxSyncWait:   time.Duration(env.Int("HOOKGATE_SYNC_MAX_WAIT_MS", 25_000, 0, 28_000)) * time.Millisecond,
		AllowHTTPURLs: env.Bool("HOOKGATE_ALLOW_HTTP_URLS", false),
		IDs:           ids.NewKeyed(env.Secret("HOOKGATE_ID_DERIVATION_KEY", ids.MinKeyLen)),
	}
	limits := limitenv.Gate(env)
	adapters, aerr := adapter.ParseAdapters(getenv("HOOKGATE_ADAPTERS"), getenv("HOOKGATE_ADAPTER_SECRET"), workspace, maxBody)
	keys, kerr := approval.NewKeys(time.Now, env.List("HOOKGATE_APPROVAL_SIGNING_KEY")...)
	if kerr != nil {
		kerr = errors.New("HOOKGATE_APPROVAL_SIGNING_KEY: " + kerr.Error())
	}
	cfg.Approvals = keys
	if err := errors.Join(env.Err(), aerr, kerr); err != nil {
		return nil, err
	}
	aws, err := awscfg.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	sealed := seal.New(aws.KMS(), keyID, time.Now)
	st := store.New(aws.DynamoDB(), table, time.Now).WithRetention(retention).WithShards(shards).WithSealer(sealed).WithOpener(sealed)
	cfg.Adapters = adapter.NewStored(st, ttl, time.Now, maxBody)
	// The stack's Adapters parameter seeds the store (its adapters' workspaces, the default one
	// unless named), at first use and again whenever the parameter or AdapterSecret changes.
	seeds := adapter.Seeds(adapters)
	sums := store.SeedSums(env.List("HOOKGATE_APPROVAL_SIGNING_KEY"), getenv("HOOKGATE_ADAPTERS")+"\x00"+getenv("HOOKGATE_ADAPTER_SECRET")+"\x00"+workspace+store.SeedVersion)
	seeder := store.NewSeeder(func(ctx context.Context) error {
		return st.SeedOnce(ctx, workspace, "adapters", sums, func(ctx context.Context) error {
			return adapter.PutSeeds(ctx, st.PutAdapter, seeds, log)
		})
	})
	gate := limit.NewGate(limit.New(aws.DynamoDB(), table, time.Now), limits, time.Now)
	h := adapter.New(cfg, st, queue.NewSender(aws.SQS(), queueURL), log, time.Now).WithGate(gate).WithMetrics(metrics.FromEnv(getenv))
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		if err := seeder.Ensure(ctx); err != nil {
			log.ErrorContext(ctx, "could not seed the stack's adapters", "err", err)
			return apigw.Error(ctx, log, apierr.Wrap(apierr.Unavailable, err, "the adapters could not be read; retry later")), nil
		}
		return h.Handle(ctx, req)
	}, nil
}
