package sources

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/store"
)

// noSources knows no source; a fake is enough here: what is bounded is the resolver's own memory.
type noSources struct{ reads int }

func (n *noSources) GetSource(context.Context, string, string) (store.Source, error) {
	n.reads++
	return store.Source{}, apierr.New(apierr.NotFound, "source not found")
}

// A caller naming a new workspace and source on every request grows the cache only to its bound,
// and an unknown source is still cached (no read for a repeat within the TTL).
func TestCacheOfUnknownSourcesIsBounded(t *testing.T) {
	st := &noSources{}
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	r := New(st, 10*time.Second, func() time.Time { return now }, "default")
	for i := range maxCached + 500 {
		if _, err := r.Get(context.Background(), fmt.Sprintf("ws-%d", i), "src"); apierr.CodeOf(err) != apierr.NotFound {
			t.Fatalf("get %d: %v", i, err)
		}
		if n := r.cached(); n > maxCached {
			t.Fatalf("after %d unknown sources the cache holds %d, more than %d", i+1, n, maxCached)
		}
	}
	reads := st.reads
	last := fmt.Sprintf("ws-%d", maxCached+499)
	if _, err := r.Get(context.Background(), last, "src"); apierr.CodeOf(err) != apierr.NotFound || st.reads != reads {
		t.Fatalf("a repeat within the TTL read the table again (%d reads, was %d): %v", st.reads, reads, err)
	}
}
