package adapter

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/verify"
)

// Static is a fixed set of adapters by name (tests, and ParseAdapters' result).
type Static map[string]*Adapter

// Get returns the adapter named name, or NotFound.
func (s Static) Get(_ context.Context, name string) (*Adapter, error) {
	if a, ok := s[name]; ok {
		return a, nil
	}
	return nil, apierr.New(apierr.NotFound, "adapter not found")
}

// StoredAdapters reads adapters by name (store.Store.LookupAdapter).
type StoredAdapters interface {
	LookupAdapter(ctx context.Context, name string) (store.Adapter, error)
}

// Stored is the Directory of the adapters the workspaces keep in the table, each cached for a
// short ttl (and never past the end of a secret's overlap), at most maxCachedAdapters of them, with
// the secrets the store opened (in this process's memory only; the table keeps them sealed). Safe
// for concurrent use.
type Stored struct {
	st      StoredAdapters
	ttl     time.Duration
	now     func() time.Time
	maxBody int // an adapter's maxBodyBytes when it names none

	mu    sync.Mutex
	cache map[string]cachedAdapter
}

type cachedAdapter struct {
	a       *Adapter
	err     error
	expires time.Time
}

const maxCachedAdapters = 1000

// NewStored returns a Stored directory.
func NewStored(st StoredAdapters, ttl time.Duration, now func() time.Time, defaultMaxBody int) *Stored {
	return &Stored{st: st, ttl: ttl, now: now, maxBody: defaultMaxBody, cache: map[string]cachedAdapter{}}
}

// Get returns the adapter named name, or NotFound (cached too: unknown names must not cost a read
// each); a failed read is returned and not cached.
func (d *Stored) Get(ctx context.Context, name string) (*Adapter, error) {
	now := d.now()
	d.mu.Lock()
	e, ok := d.cache[name]
	d.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.a, e.err
	}
	e = cachedAdapter{expires: now.Add(d.ttl)}
	sa, err := d.st.LookupAdapter(ctx, name)
	switch {
	case apierr.CodeOf(err) == apierr.NotFound:
		e.err = err
	case err != nil:
		return nil, err
	default:
		e.a = FromStored(sa, now, d.maxBody)
		for _, sec := range sa.Secrets {
			if sec.ExpiresAt != nil && sec.ExpiresAt.Before(e.expires) {
				e.expires = *sec.ExpiresAt // a secret leaving its overlap stops opening on time
			}
		}
	}
	d.mu.Lock()
	if len(d.cache) >= maxCachedAdapters {
		clear(d.cache)
	}
	d.cache[name] = e
	d.mu.Unlock()
	return e.a, e.err
}

// FromStored is the Adapter of a stored one, with the secrets that open it at now.
func FromStored(sa store.Adapter, now time.Time, defaultMaxBody int) *Adapter {
	a := &Adapter{
		Name: sa.Name, Workspace: sa.WorkspaceID, Secrets: sa.ActiveSecrets(now), ReplyHosts: sa.ReplyHosts,
		MaxBodyBytes: sa.MaxBodyBytes, MaxInFlight: sa.MaxInFlight, Agent: sa.Agent, Approvers: sa.Approvers,
		LegacyApprovals: sa.LegacyApprovals, ReadAllRuns: sa.ReadAllRuns,
	}
	if a.MaxBodyBytes == 0 {
		a.MaxBodyBytes = defaultMaxBody
	}
	if a.MaxInFlight == 0 {
		a.MaxInFlight = DefaultMaxInFlight
	}
	a.secrets = verify.NewSecrets(a.Secrets...)
	return a
}

// Seeds are the adapters of the stack's Adapters parameter (as ParseAdapters returns them) as
// stored adapters of their workspaces (the default one unless they name another).
func Seeds(parsed map[string]*Adapter) []store.Adapter {
	out := make([]store.Adapter, 0, len(parsed))
	for _, a := range parsed {
		sa := store.Adapter{
			WorkspaceID: a.Workspace, Name: a.Name, Agent: a.Agent, ReplyHosts: a.ReplyHosts, MaxBodyBytes: a.MaxBodyBytes,
			MaxInFlight: a.MaxInFlight, Approvers: a.Approvers, LegacyApprovals: a.LegacyApprovals, ReadAllRuns: a.ReadAllRuns,
		}
		for _, s := range a.Secrets {
			sa.Secrets = append(sa.Secrets, store.SigningSecret{Value: s})
		}
		out = append(out, sa)
	}
	return out
}

// PutSeeds writes seeds; one whose name another workspace had taken replaces that workspace's
// adapter, with a warning naming it.
func PutSeeds(ctx context.Context, put func(context.Context, store.Adapter) (string, error), seeds []store.Adapter, log *slog.Logger) error {
	for _, sa := range seeds {
		displaced, err := put(ctx, sa)
		if err != nil {
			return err
		}
		if displaced != "" {
			log.WarnContext(ctx, "the stack's adapter replaced another workspace's adapter of its name", "adapter", sa.Name, "displaced_workspace_id", displaced)
		}
	}
	return nil
}
