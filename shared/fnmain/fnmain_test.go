package fnmain

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/opsecrets"
)

// store is a fake SSM/Secrets Manager: values by full name, changeable, and failing on demand.
type store struct {
	mu     sync.Mutex
	values map[string]string
	fail   bool
	reads  int
}

func (s *store) fetch(_ context.Context, name string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.fail {
		return "", false, errors.New("throttled")
	}
	v, ok := s.values[name]
	return v, ok, nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// builder is a function's newHandler: it checks the admin key as a function does (with an error
// that names the variable, never the value) and answers with the key it was built with.
func builder(builds *int) Builder[string, string] {
	return func(_ context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, string) (string, error), error) {
		key := getenv("HOOKGATE_ADMIN_API_KEY")
		if len(key) < 16 {
			return nil, errors.New("HOOKGATE_ADMIN_API_KEY: shorter than 16 characters")
		}
		*builds++
		log.Info("configured", "table", getenv("HOOKGATE_TABLE"))
		return func(context.Context, string) (string, error) { return key, nil }, nil
	}
}

func TestSecretsFromTheStoreAreRefreshed(t *testing.T) {
	const first, second, tooShort = "admin-key-first-0123456789", "admin-key-second-0123456789", "short-admin"
	env := map[string]string{opsecrets.EnvSource: "ssm", opsecrets.EnvPrefix: "/hg/", "HOOKGATE_TABLE": "t", "HOOKGATE_ADMIN_API_KEY": "", "HOOKGATE_ADMIN_API_KEY_PREVIOUS": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	st := &store{values: map[string]string{"/hg/AdminApiKey": first}}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	builds := 0
	newFetch := func(context.Context, string, func(string) string) (opsecrets.Fetch, error) { return st.fetch, nil }
	h, err := New(context.Background(), builder(&builds), func(k string) string { return env[k] }, lookup, newFetch, clk.now, log)
	if err != nil {
		t.Fatal(err)
	}
	call := func() string {
		t.Helper()
		got, err := h(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if call() != first || builds != 1 {
		t.Fatalf("the handler was not built with the stored key (%d builds)", builds)
	}
	st.mu.Lock()
	st.values["/hg/AdminApiKey"] = second
	reads := st.reads
	st.mu.Unlock()
	clk.t = clk.t.Add(RefreshEvery - time.Second)
	if call() != first || st.reads != reads {
		t.Fatal("the secrets were read again before RefreshEvery")
	}
	clk.t = clk.t.Add(time.Second)
	if call() != second || builds != 2 {
		t.Fatalf("the changed key was not used after RefreshEvery (%d builds)", builds)
	}
	// Unchanged: not rebuilt. A failed read and a value the function refuses keep the current one.
	clk.t = clk.t.Add(RefreshEvery)
	if call() != second || builds != 2 {
		t.Fatalf("rebuilt with unchanged secrets (%d builds)", builds)
	}
	st.fail = true
	clk.t = clk.t.Add(RefreshEvery)
	if call() != second {
		t.Fatal("a failed read replaced the handler")
	}
	st.fail = false
	st.values["/hg/AdminApiKey"] = tooShort
	clk.t = clk.t.Add(RefreshEvery)
	if call() != second {
		t.Fatal("a refused value replaced the handler")
	}
	for _, v := range []string{first, second, tooShort} {
		if strings.Contains(logs.String(), v) {
			t.Errorf("a secret reached the log: %s", logs.String())
		}
	}
	// The short key is refused by the read itself (the template's 16-character minimum), not later.
	if !strings.Contains(logs.String(), "could not be read again") || !strings.Contains(logs.String(), "shorter than 16 characters") {
		t.Errorf("the failed refreshes were not logged: %s", logs.String())
	}
}

// A secret the store lacks fails the init with an error naming its parameter; the values it did
// read appear in no error and no log.
func TestMissingSecretFailsInit(t *testing.T) {
	const inbound = "inbound-secret-value-0123456"
	env := map[string]string{opsecrets.EnvSource: "secretsmanager", opsecrets.EnvPrefix: "hookgate/prod/", "HOOKGATE_INBOUND_SECRET": "", "HOOKGATE_ADMIN_API_KEY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	st := &store{values: map[string]string{"hookgate/prod/InboundSecret": inbound}}
	var logs bytes.Buffer
	builds := 0
	_, err := New(context.Background(), builder(&builds), func(k string) string { return env[k] }, lookup,
		func(context.Context, string, func(string) string) (opsecrets.Fetch, error) { return st.fetch, nil }, time.Now, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err == nil || !strings.Contains(err.Error(), "hookgate/prod/AdminApiKey") || builds != 0 {
		t.Fatalf("init with a missing secret: %v (%d builds)", err, builds)
	}
	if strings.Contains(err.Error(), inbound) || strings.Contains(logs.String(), inbound) {
		t.Errorf("a secret reached the error or the log: %v %s", err, logs.String())
	}
	env[opsecrets.EnvSource] = "vault"
	if _, err := New(context.Background(), builder(&builds), func(k string) string { return env[k] }, lookup, nil, time.Now, slog.Default()); err == nil || !strings.Contains(err.Error(), opsecrets.EnvSource) {
		t.Errorf("an unknown source: %v", err)
	}
}

// With SecretsSource environment nothing is fetched: the handler is build's own.
func TestEnvironmentSourceReadsNothing(t *testing.T) {
	env := map[string]string{"HOOKGATE_ADMIN_API_KEY": "admin-key-in-the-environment"}
	builds := 0
	h, err := New(context.Background(), builder(&builds), func(k string) string { return env[k] }, func(string) (string, bool) { return "", true },
		func(context.Context, string, func(string) string) (opsecrets.Fetch, error) {
			t.Fatal("fetched with SecretsSource environment")
			return nil, nil
		}, time.Now, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := h(context.Background(), ""); got != env["HOOKGATE_ADMIN_API_KEY"] {
		t.Error("wrong handler")
	}
}
