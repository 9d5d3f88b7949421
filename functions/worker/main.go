// Command worker is the Lambda on the inbound queue: it turns each message into a thread, a run and
// events, and calls the workspace's agent.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/agent"
	"github.com/hookgate/hookgate/shared/approval"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/envcfg"
	"github.com/hookgate/hookgate/shared/fnmain"
	"github.com/hookgate/hookgate/shared/loop"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/seal"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/worker"
)

func main() { fnmain.Start(newHandler) }

// messageMargin is the time a message needs besides its agent call: its reads and writes, each
// bounded by awscfg's per-call budget.
const messageMargin = 15 * time.Second

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, events.SQSEvent) (events.SQSEventResponse, error), error) {
	env := envcfg.New(getenv)
	// Events, runs, messages and threads expire this long after they are written (0: kept).
	retention := time.Duration(env.Int("HOOKGATE_RETENTION_DAYS", 90, 0, 36500)) * 24 * time.Hour
	shards := env.Int("HOOKGATE_EVENT_SHARDS", 1, 1, store.MaxShards)
	table := env.Required("HOOKGATE_TABLE")
	// Opens the workspaces' agents' secrets (kms:Decrypt, agent.secret) and seals the stack's
	// seeded ones (kms:GenerateDataKey, agent.secret).
	keyID := env.Required("HOOKGATE_KMS_KEY_ID")
	queueURL := env.Required("HOOKGATE_INBOUND_QUEUE_URL")
	defaultAgent := env.Optional("HOOKGATE_AGENT", agent.TypeEcho)
	retry, serr := outbound.ParseSchedule(env.Optional("HOOKGATE_AGENT_RETRY_SCHEDULE", "0s,10s,1m,5m"))
	cfg := worker.Config{
		Retry: retry, Lease: time.Duration(env.Int("HOOKGATE_RUN_LEASE_SECONDS", 900, 30, 43200)) * time.Second,
		ApprovalTTL:  time.Duration(env.Int("HOOKGATE_APPROVAL_TTL_MINUTES", 4320, 1, 43200)) * time.Minute,
		FailureDelay: time.Duration(env.Int("HOOKGATE_FAILURE_DELAY_SECONDS", 10, 0, 900)) * time.Second,
		Hold:         time.Duration(env.Int("HOOKGATE_OPENING_HOLD_MS", int(worker.DefaultHold/time.Millisecond), 0, 5000)) * time.Millisecond,
	}
	keys, kerr := approval.NewKeys(time.Now, env.List("HOOKGATE_APPROVAL_SIGNING_KEY")...)
	if kerr != nil {
		kerr = errors.New("HOOKGATE_APPROVAL_SIGNING_KEY: " + kerr.Error())
	}
	cfg.Approvals = keys
	workspace := env.Optional("HOOKGATE_DEFAULT_WORKSPACE", "default")
	ttl := time.Duration(env.Int("HOOKGATE_SOURCE_CACHE_SECONDS", 10, 0, 300)) * time.Second
	allowPrivate := env.Bool("HOOKGATE_ALLOW_PRIVATE_DESTINATIONS", false)
	own, herr := loop.ParseHosts(getenv("HOOKGATE_API_HOSTS"))
	// The stack's Agents parameter is the default workspace's seed; checked here, written below.
	seeds, rerr := agent.Seeds(getenv("HOOKGATE_AGENTS"), workspace, getenv("HOOKGATE_OPENAI_API_KEY"))
	if err := errors.Join(env.Err(), serr, rerr, kerr, herr); err != nil {
		return nil, err
	}
	if defaultAgent != agent.TypeEcho && !slices.ContainsFunc(seeds, func(a store.Agent) bool { return a.Name == defaultAgent }) {
		return nil, fmt.Errorf("HOOKGATE_AGENT: unknown agent %q", defaultAgent)
	}
	// A message may take the longest agent call a workspace may configure plus its table writes and
	// the SDK's retries of them.
	cfg.MessageTime = agent.MaxTimeoutSeconds*time.Second + messageMargin
	aws, err := awscfg.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	sealed := seal.New(aws.KMS(), keyID, time.Now)
	st := store.New(aws.DynamoDB(), table, time.Now).WithRetention(retention).WithShards(shards).WithSealer(sealed).WithOpener(sealed)
	seeder := store.NewSeeder(func(ctx context.Context) error {
		sums := store.SeedSums(env.List("HOOKGATE_APPROVAL_SIGNING_KEY"), getenv("HOOKGATE_AGENTS")+"\x00"+getenv("HOOKGATE_OPENAI_API_KEY")+store.SeedVersion)
		return st.SeedOnce(ctx, workspace, "agents", sums, func(ctx context.Context) error {
			return agent.PutSeeds(ctx, st.PutAgent, seeds)
		})
	})
	// Agents of the workspaces dial public addresses only (unless the stack allows private ones)
	// and never the gateway's own API; the operator's seeded agents may call a private model server.
	tenant := outbound.NewClient(outbound.ClientOptions{Timeout: agent.MaxTimeoutSeconds * time.Second, AllowPrivate: allowPrivate, OwnHosts: &own})
	agents := agent.NewWorkspaces(st, ttl, time.Now, workspace, defaultAgent, agent.Options{Client: tenant}, agent.Options{})
	h := worker.New(cfg, st, store.NewLogWriter(st), agents, queue.NewPostponer(aws.SQS(), queueURL), log, time.Now).WithMetrics(metrics.FromEnv(getenv))
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		if err := seeder.Ensure(ctx); err != nil { // the batch returns to the queue and comes back
			return h.GiveBack(ctx, ev, fmt.Errorf("seed the default workspace's agents: %w", err)), nil
		}
		return h.Handle(ctx, ev)
	}, nil
}
