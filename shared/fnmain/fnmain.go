// Package fnmain is how every Hookgate function starts: a JSON slog logger that adds the Lambda
// request id, the operator's secrets from where SecretsSource says, configuration built once per
// process, then the Lambda loop.
package fnmain

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/fnmain/bare"
	"github.com/hookgate/hookgate/shared/opsecrets"
)

// RefreshEvery is how long a process uses the operator's secrets it read from SSM or Secrets
// Manager before it reads them again (a rotation reaches every instance within this time).
const RefreshEvery = 15 * time.Minute

// Builder builds a function's handler from its environment.
type Builder[TIn, TOut any] func(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, TIn) (TOut, error), error)

// Start builds the handler from the environment and serves invocations. A configuration error is
// logged and ends the process, so Lambda reports an init failure instead of serving requests.
// A function that reads none of them starts with bare.Start instead (a smaller bootstrap).
func Start[TIn, TOut any](build Builder[TIn, TOut]) {
	log := bare.Logger()
	h, err := New(context.Background(), build, os.Getenv, os.LookupEnv, fetcher, time.Now, log)
	bare.Serve(h, err, log)
}

// fetcher is the Fetch of SSM or Secrets Manager, with the SDK configuration of the environment.
func fetcher(ctx context.Context, source string, getenv func(string) string) (opsecrets.Fetch, error) {
	cfg, err := awscfg.Load(ctx, getenv)
	if err != nil {
		return nil, err
	}
	if source == opsecrets.SSM {
		return opsecrets.FromSSM(ssm.NewFromConfig(cfg.AWS)), nil
	}
	return opsecrets.FromSecretsManager(secretsmanager.NewFromConfig(cfg.AWS)), nil
}

// New builds the handler. With SecretsSource environment it is build's handler as it is. Otherwise
// the operator's secrets the environment declares are read first (a missing one fails, naming
// it), build sees them through getenv, and every RefreshEvery they are read again: when one has
// changed the handler is rebuilt with them (a failed read or rebuild is logged, without values,
// and the current handler serves on until the next try).
func New[TIn, TOut any](ctx context.Context, build Builder[TIn, TOut], getenv func(string) string, lookup func(string) (string, bool),
	newFetch func(context.Context, string, func(string) string) (opsecrets.Fetch, error), now func() time.Time, log *slog.Logger,
) (func(context.Context, TIn) (TOut, error), error) {
	c, err := opsecrets.ConfigFrom(getenv)
	if err != nil {
		return nil, err
	}
	if c.Source == opsecrets.Environment {
		return build(ctx, getenv, log)
	}
	fetch, err := newFetch(ctx, c.Source, getenv)
	if err != nil {
		return nil, err
	}
	secrets, err := opsecrets.Load(ctx, c, lookup, fetch)
	if err != nil {
		return nil, err
	}
	h, err := build(ctx, opsecrets.Overlay(getenv, secrets), log)
	if err != nil {
		return nil, err
	}
	r := &refresher[TIn, TOut]{h: h, secrets: secrets, read: now(), now: now, log: log,
		reload: func(ctx context.Context) (map[string]string, error) { return opsecrets.Load(ctx, c, lookup, fetch) },
		build: func(ctx context.Context, s map[string]string) (func(context.Context, TIn) (TOut, error), error) {
			return build(ctx, opsecrets.Overlay(getenv, s), log)
		}}
	return r.handle, nil
}

type refresher[TIn, TOut any] struct {
	reload func(context.Context) (map[string]string, error)
	build  func(context.Context, map[string]string) (func(context.Context, TIn) (TOut, error), error)
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	h       func(context.Context, TIn) (TOut, error)
	secrets map[string]string
	read    time.Time
}

func (r *refresher[TIn, TOut]) handle(ctx context.Context, in TIn) (TOut, error) {
	return r.current(ctx)(ctx, in)
}

// current is the handler to use, refreshed first when the secrets are RefreshEvery old.
func (r *refresher[TIn, TOut]) current(ctx context.Context) func(context.Context, TIn) (TOut, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.now().Sub(r.read) < RefreshEvery {
		return r.h
	}
	r.read = r.now()
	secrets, err := r.reload(ctx)
	if err != nil {
		r.log.ErrorContext(ctx, "the operator's secrets could not be read again; the ones read before stay in use", "err", err)
		return r.h
	}
	if maps.Equal(secrets, r.secrets) {
		return r.h
	}
	h, err := r.build(ctx, secrets)
	if err != nil {
		r.log.ErrorContext(ctx, "the operator's secrets changed but the function could not be configured with them; the ones read before stay in use", "err", err)
		return r.h
	}
	r.log.InfoContext(ctx, "the operator's secrets changed: configured again")
	r.h, r.secrets = h, secrets
	return h
}
