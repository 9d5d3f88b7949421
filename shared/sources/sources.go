// Package sources resolves a workspace's inbound source to a ready verifier and caches it briefly, so a
// warm Lambda verifies without a table read; rotations take effect within the cache's TTL.
package sources

import (
	"context"
	"sync"
	"time"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/verify"
)

// Store reads sources.
type Store interface {
	GetSource(ctx context.Context, ws, name string) (store.Source, error)
}

// Resolved is a source with its verifier.
type Resolved struct {
	Source   store.Source
	Verifier *verify.Verifier
	// Alternates also prove a request: the other schemes of a source the stack configures with
	// several (the default workspace's trigger secret is an HMAC key or a Bearer token).
	Alternates []*verify.Verifier
}

// Resolver resolves (workspace, source name) to a verifier.
type Resolver struct {
	st       Store
	ttl      time.Duration
	now      func() time.Time
	fallback map[string][]store.Source // sources of the default workspace that config supplies

	defaultWS string
	mu        sync.Mutex
	cache     map[string]entry
}

type entry struct {
	res     Resolved
	err     error // a NotFound is cached too: unknown senders must not cost a read each
	expires time.Time
}

// New returns a Resolver. fallback holds sources of the default workspace configured by the
// stack (for example the Telegram secret token parameter); a stored source of the same name wins.
// Several fallbacks of one name are one source with several schemes: the first, or any other.
func New(st Store, ttl time.Duration, now func() time.Time, defaultWS string, fallback ...store.Source) *Resolver {
	fb := map[string][]store.Source{}
	for _, src := range fallback {
		if len(src.Secrets) > 0 || src.Scheme == string(verify.None) {
			fb[src.Name] = append(fb[src.Name], src)
		}
	}
	return &Resolver{st: st, ttl: ttl, now: now, fallback: fb, defaultWS: defaultWS, cache: map[string]entry{}}
}

// ErrUnknown is what an unknown workspace or source gets: the same answer for both, so that a
// caller learns nothing about which workspaces exist.
func errUnknown() error { return apierr.New(apierr.NotFound, "unknown workspace or source") }

// Get returns the workspace's source name with its verifier, which checks the source's own scheme
// and no other, or NotFound.
func (r *Resolver) Get(ctx context.Context, ws, name string) (Resolved, error) {
	now := r.now()
	k := ws + "\x00" + name
	r.mu.Lock()
	e, ok := r.cache[k]
	r.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.res, e.err
	}
	e = r.load(ctx, ws, name, now)
	if apierr.CodeOf(e.err) == apierr.Unavailable {
		return e.res, e.err // never cache an outage
	}
	r.mu.Lock()
	if len(r.cache) >= maxCached {
		r.sweep(now)
	}
	r.cache[k] = e
	r.mu.Unlock()
	return e.res, e.err
}

// maxCached bounds the cache: a caller naming random workspaces and sources must not grow a warm
// function's memory without end.
const maxCached = 10_000

// sweep drops the expired entries, and every entry if that frees nothing (then each source is
// read again once). The caller holds r.mu.
func (r *Resolver) sweep(now time.Time) {
	for k, e := range r.cache {
		if !now.Before(e.expires) {
			delete(r.cache, k)
		}
	}
	if len(r.cache) >= maxCached {
		clear(r.cache)
	}
}

// cached is how many entries the cache holds (for tests).
func (r *Resolver) cached() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cache)
}

func (r *Resolver) load(ctx context.Context, ws, name string, now time.Time) entry {
	e := entry{expires: now.Add(r.ttl)}
	src, err := r.st.GetSource(ctx, ws, name)
	var alternates []store.Source
	if apierr.CodeOf(err) == apierr.NotFound {
		fb, ok := r.fallback[name]
		if !ok || ws != r.defaultWS {
			e.err = errUnknown()
			return e
		}
		src, alternates, err = fb[0], fb[1:], nil
		src.WorkspaceID = ws
	}
	if err != nil {
		e.err = apierr.Wrap(apierr.Unavailable, err, "the source could not be read; retry later")
		return e
	}
	for _, sec := range src.Secrets {
		if sec.ExpiresAt != nil && sec.ExpiresAt.Before(e.expires) {
			e.expires = *sec.ExpiresAt // a secret that leaves its overlap stops verifying on time
		}
	}
	v, err := verify.New(verify.Scheme(src.Scheme), src.ActiveSecrets(now), verify.Options{
		Header: src.Header, Tolerance: time.Duration(src.ToleranceSeconds) * time.Second,
	})
	if err != nil {
		// A stored source the verifier cannot use (no active secret left): nobody can prove it.
		e.err = apierr.Wrap(apierr.Unauthorized, err, "invalid signature")
		return e
	}
	e.res = Resolved{Source: src, Verifier: v}
	for _, alt := range alternates {
		av, err := verify.New(verify.Scheme(alt.Scheme), alt.ActiveSecrets(now), verify.Options{Header: alt.Header})
		if err != nil {
			e.err = apierr.Wrap(apierr.Unauthorized, err, "invalid signature")
			return e
		}
		e.res.Alternates = append(e.res.Alternates, av)
	}
	return e
}
