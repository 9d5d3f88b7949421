// Command worker is the Lambda on the inbound queue: it turns each message into a thread, a run and
// events, and calls the workspace's agent.
package main

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/agent"
	"github.com/hookgate/hookgate/shared/approval"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/envcfg"
	"github.com/hookgate/hookgate/shared/fnmain"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/worker"
)

func main() { fnmain.Start(newHandler) }

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, events.SQSEvent) (events.SQSEventResponse, error), error) {
	env := envcfg.New(getenv)
	table := env.Required("HOOKGATE_TABLE")
	queueURL := env.Required("HOOKGATE_INBOUND_QUEUE_URL")
	defaultAgent := env.Optional("HOOKGATE_AGENT", agent.TypeEcho)
	retry, serr := outbound.ParseSchedule(env.Optional("HOOKGATE_AGENT_RETRY_SCHEDULE", "0s,10s,1m,5m"))
	cfg := worker.Config{
		Retry: retry, Lease: time.Duration(env.Int("HOOKGATE_RUN_LEASE_SECONDS", 900, 30, 43200)) * time.Second,
		ApprovalTTL: time.Duration(env.Int("HOOKGATE_APPROVAL_TTL_MINUTES", 4320, 1, 43200)) * time.Minute,
	}
	keys, kerr := approval.NewKeys(time.Now, env.List("HOOKGATE_APPROVAL_SIGNING_KEY")...)
	if kerr != nil {
		kerr = errors.New("HOOKGATE_APPROVAL_SIGNING_KEY: " + kerr.Error())
	}
	cfg.Approvals = keys
	reg, rerr := agent.ParseRegistry(getenv("HOOKGATE_AGENTS"), agent.Options{OpenAIAPIKey: getenv("HOOKGATE_OPENAI_API_KEY")})
	if err := errors.Join(env.Err(), serr, rerr, kerr); err != nil {
		return nil, err
	}
	if _, err := reg.Get(defaultAgent); err != nil {
		return nil, errors.New("HOOKGATE_AGENT: " + err.Error())
	}
	aws, err := awscfg.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	st := store.New(aws.DynamoDB(), table, time.Now)
	agents := agents{reg, defaultAgent}
	return worker.New(cfg, st, store.NewLogWriter(st), agents, queue.NewPostponer(aws.SQS(), queueURL), log, time.Now).WithMetrics(metrics.FromEnv(getenv)).Handle, nil
}

// agents resolves the empty name (the workspace's agent) to the configured default.
type agents struct {
	reg *agent.Registry
	def string
}

func (a agents) Get(name string) (agent.Agent, error) { return a.reg.Get(cmp.Or(name, a.def)) }
func (a agents) HistoryLimit(name string) int         { return a.reg.HistoryLimit(cmp.Or(name, a.def)) }
