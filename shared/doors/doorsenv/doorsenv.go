// Package doorsenv builds the doors from a door function's environment: the wiring the four
// door functions share (the generic door's function reads fewer variables and wires itself).
package doorsenv

import (
	"context"
	"log/slog"
	"time"

	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/doors"
	"github.com/hookgate/hookgate/shared/envcfg"
	"github.com/hookgate/hookgate/shared/limit"
	"github.com/hookgate/hookgate/shared/limit/limitenv"
	"github.com/hookgate/hookgate/shared/metrics"
	"github.com/hookgate/hookgate/shared/queue"
	"github.com/hookgate/hookgate/shared/seal"
	"github.com/hookgate/hookgate/shared/sources"
	"github.com/hookgate/hookgate/shared/store"
)

// Function is what a door function's main passes to fnmain.Start: the doors from the environment,
// serving the door pick chooses.
func Function(pick func(*doors.Doors) doors.HandlerFunc) func(context.Context, func(string) string, *slog.Logger) (doors.HandlerFunc, error) {
	return func(ctx context.Context, getenv func(string) string, log *slog.Logger) (doors.HandlerFunc, error) {
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
//	HOOKGATE_ID_DERIVATION_KEY     required: the key of derived ids (doors.IDKeyFromEnv)
//	HOOKGATE_KMS_KEY_ID            required: the KMS key the sources' secrets are sealed under
//	HOOKGATE_MAX_BODY_BYTES        bodies above are refused with 413 (default and at most doors.MaxStoredBody)
//	HOOKGATE_DEDUPE_WINDOW_HOURS   how long a delivery id is remembered (default 72)
//	HOOKGATE_SOURCE_CACHE_SECONDS  how long a warm function reuses a source (default 10; 0 reads each time)
//	HOOKGATE_INBOUND_SECRET        the default workspace's trigger and binding secret, unless it stores sources of those names
//	HOOKGATE_INBOUND_SECRET_PREVIOUS  the one being rotated out: it verifies too until removed
//	HOOKGATE_TELEGRAM_SECRET_TOKEN the default workspace's Telegram secret token, likewise
//
// and the admission limits of limitenv.Gate (the daily run budget, the inbound rate).
func FromEnv(ctx context.Context, getenv func(string) string, log *slog.Logger) (*doors.Doors, error) {
	env := envcfg.New(getenv)
	table := env.Required("HOOKGATE_TABLE")
	keyID := env.Required("HOOKGATE_KMS_KEY_ID") // opens the sources' secrets (kms:Decrypt only)
	queueURL := env.Required("HOOKGATE_INBOUND_QUEUE_URL")
	cfg := doors.Config{
		DefaultWorkspace: env.Required("HOOKGATE_DEFAULT_WORKSPACE"),
		MaxBodyBytes:     env.Int("HOOKGATE_MAX_BODY_BYTES", doors.MaxStoredBody, 1024, 6_000_000),
		DedupeWindow:     time.Duration(env.Int("HOOKGATE_DEDUPE_WINDOW_HOURS", 72, 1, 24*30)) * time.Hour,
	}
	cfg.MaxBodyBytes = min(cfg.MaxBodyBytes, doors.MaxStoredBody)
	cfg.IDs = doors.IDKeyFromEnv(env)
	ttl := time.Duration(env.Int("HOOKGATE_SOURCE_CACHE_SECONDS", 10, 0, 300)) * time.Second
	inboundSecrets := []string{env.Optional("HOOKGATE_INBOUND_SECRET", ""), env.Optional("HOOKGATE_INBOUND_SECRET_PREVIOUS", "")}
	telegramToken := env.Optional("HOOKGATE_TELEGRAM_SECRET_TOKEN", "")
	limits := limitenv.Gate(env)
	if err := env.Err(); err != nil {
		return nil, err
	}
	aws, err := awscfg.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	st := store.New(aws.DynamoDB(), table, time.Now).WithOpener(seal.New(aws.KMS(), keyID, time.Now))
	res := sources.New(st, ttl, time.Now, cfg.DefaultWorkspace, doors.StackSources(inboundSecrets, telegramToken)...)
	gate := limit.NewGate(limit.New(aws.DynamoDB(), table, time.Now), limits, time.Now)
	return doors.New(cfg, res, st, queue.NewSender(aws.SQS(), queueURL), log, time.Now).WithGate(gate).WithMetrics(metrics.FromEnv(getenv)), nil
}
