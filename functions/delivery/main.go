// Command delivery is the Lambda on the delivery queue: one signed attempt per message, retried
// on the configured schedule, dead-lettered as a failed delivery when the schedule is used up.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/adapter"
	"github.com/hookgate/hookgate/shared/approval"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/delivery"
	"github.com/hookgate/hookgate/shared/envcfg"
	"github.com/hookgate/hookgate/shared/fnmain"
	"github.com/hookgate/hookgate/shared/loop"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/seal"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/telegram"
)

func main() { fnmain.Start(newHandler) }

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, events.SQSEvent) (events.SQSEventResponse, error), error) {
	env := envcfg.New(getenv)
	// Events, runs, messages and threads expire this long after they are written (0: kept).
	retention := time.Duration(env.Int("HOOKGATE_RETENTION_DAYS", 90, 0, 36500)) * 24 * time.Hour
	table := env.Required("HOOKGATE_TABLE")
	keyID := env.Required("HOOKGATE_KMS_KEY_ID") // the key subscriptions' secrets and bot tokens are sealed under
	queueURL := env.Required("HOOKGATE_DELIVERY_QUEUE_URL")
	// FIFO subscriptions' deliveries wait in this queue: their waits are visibility timeouts.
	orderedURL := env.Required("HOOKGATE_DELIVERY_FIFO_QUEUE_URL")
	schedule, serr := outbound.ParseSchedule(env.Optional("HOOKGATE_DELIVERY_SCHEDULE", "default"))
	timeout := time.Duration(env.Int("HOOKGATE_DELIVERY_TIMEOUT_SECONDS", 15, 1, 25)) * time.Second
	allowPrivate := env.Bool("HOOKGATE_ALLOW_PRIVATE_DESTINATIONS", false)
	// The gateway's own hosts: refused at dial time, so no delivery or callback feeds it.
	own, herr := loop.ParseHosts(getenv("HOOKGATE_API_HOSTS"))
	circuit, cerr := delivery.ParseCircuit(env.Optional("HOOKGATE_CIRCUIT_BREAKER", "70,10,60,60"))
	cfg := delivery.Config{
		Schedule:      schedule,
		MaxRetryAfter: time.Duration(env.Int("HOOKGATE_MAX_RETRY_AFTER_SECONDS", 3600, 0, 43200)) * time.Second,
		// After a timeout, a 429 or a 503, a retry waits at least this (or Retry-After, if longer).
		BackoffFloor: time.Duration(env.Int("HOOKGATE_DELIVERY_BACKOFF_FLOOR_SECONDS", 60, 0, 3600)) * time.Second,
		// One endpoint's retries of a schedule step go at least this far apart, across instances.
		RetrySpacing: time.Duration(env.Int("HOOKGATE_DELIVERY_RETRY_SPACING_MS", 200, 0, 60000)) * time.Millisecond,
		Circuit:      circuit,
		Lease:        timeout + 15*time.Second,
		DisableAfter: env.Int("HOOKGATE_DISABLE_AFTER_FAILURES", 10, 0, 1000),
		// Local tests shorten SQS's 15-minute delay to compress the schedule's time, and lift the
		// re-queue bound to show what Lambda's recursion rule does to a queue-only schedule.
		MaxQueueDelay: time.Duration(env.Int("HOOKGATE_DELIVERY_MAX_QUEUE_DELAY_SECONDS", 900, 1, 900)) * time.Second,
		MaxRequeues:   env.Int("HOOKGATE_DELIVERY_MAX_REQUEUES", 4, 0, 1<<20),
	}
	adapters, aerr := adapter.ParseAdapters(getenv("HOOKGATE_ADAPTERS"), getenv("HOOKGATE_ADAPTER_SECRET"), env.Optional("HOOKGATE_DEFAULT_WORKSPACE", "default"), 0)
	approvalKeys := env.List("HOOKGATE_APPROVAL_SIGNING_KEY")
	var kerr error
	if _, err := approval.NewKeys(time.Now, approvalKeys...); err != nil {
		kerr = errors.New("HOOKGATE_APPROVAL_SIGNING_KEY: " + err.Error())
	}
	// Replies to Telegram go through the bot of the source that received the update: its own
	// token, or in the default workspace the stack's.
	newBot := func(token string) (delivery.Bot, error) {
		return telegram.New(telegram.Config{BaseURL: getenv("HOOKGATE_TELEGRAM_API_URL"), Token: token})
	}
	var stackBot delivery.Bot
	var terr error
	if token := getenv("HOOKGATE_TELEGRAM_BOT_TOKEN"); token != "" {
		stackBot, terr = newBot(token)
	}
	if err := errors.Join(env.Err(), serr, aerr, terr, kerr, herr, cerr); err != nil {
		return nil, err
	}
	// Callbacks to a run's replyUrl are signed with its adapter's callback secret (configured, or
	// derived from the approval signing keys), never with the secret that calls the adapter.
	cfg.Callbacks = map[string]*outbound.Signer{}
	for name, a := range adapters {
		signer, err := outbound.NewSharedSigner(a.CallbackSecrets(approvalKeys)...)
		if err != nil {
			return nil, fmt.Errorf("adapter %s: %w", name, err)
		}
		cfg.Callbacks[delivery.CallbackKey(a.Workspace, name)] = signer
	}
	// The workspaces' own adapters (management API) sign with the derived secret.
	cfg.DeriveCallback = func(ws, name string) (*outbound.Signer, error) {
		a := adapter.Adapter{Name: name, Workspace: ws}
		return outbound.NewSharedSigner(a.CallbackSecrets(approvalKeys)...)
	}
	aws, err := awscfg.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	client := outbound.NewClient(outbound.ClientOptions{Timeout: timeout, AllowPrivate: allowPrivate, OwnHosts: &own})
	post := func(ctx context.Context, r outbound.Request) outbound.Result {
		return outbound.Post(ctx, client, delivery.UserAgent, r)
	}
	// It opens subscriptions' signing secrets and sources' bot tokens (kms:Decrypt only).
	st := store.New(aws.DynamoDB(), table, time.Now).WithRetention(retention).WithOpener(seal.New(aws.KMS(), keyID, time.Now))
	cfg.Telegram = delivery.TelegramSender(delivery.NewBots(st, env.Optional("HOOKGATE_DEFAULT_WORKSPACE", "default"), stackBot, newBot))
	h := delivery.New(cfg, st, queue.NewDeliverySender(aws.SQS(), queueURL), post, log, time.Now)
	h.WithOrdered(queue.NewPostponer(aws.SQS(), orderedURL))
	return h.WithMetrics(metrics.FromEnv(getenv)).Handle, nil
}
