package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/shared/delivery"
)

// listen forwards with a subscription's User-Agent.
func TestForwardsWithTheDeliveriesUserAgent(t *testing.T) {
	if deliveryUserAgent != delivery.UserAgent {
		t.Fatalf("listen sends %q, deliveries %q", deliveryUserAgent, delivery.UserAgent)
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "hookgate", "config.json")
	os.MkdirAll(filepath.Dir(file), 0o755)
	os.WriteFile(file, []byte(`{"default":{"api":"https://file.example","api_key":"file-key"},"prod":{"api":"https://prod.example","workspace":"acme"}}`), 0o600)
	env := func(kv ...string) func(string) string {
		m := map[string]string{"XDG_CONFIG_HOME": dir}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	for _, tt := range []struct {
		name  string
		flags configFlags
		env   func(string) string
		want  Config
	}{
		{"make dev's values without a file", configFlags{}, func(string) string { return "" },
			Config{DefaultAPI, DefaultAPIKey, DefaultInboundSecret, DefaultWorkspace}},
		{"the default profile", configFlags{}, env(), Config{"https://file.example", "file-key", DefaultInboundSecret, DefaultWorkspace}},
		{"environment over file", configFlags{}, env("HOOKGATE_API", "https://env.example"), Config{"https://env.example", "file-key", DefaultInboundSecret, DefaultWorkspace}},
		{"flags over environment", configFlags{api: "https://flag.example"}, env("HOOKGATE_API", "https://env.example"), Config{"https://flag.example", "file-key", DefaultInboundSecret, DefaultWorkspace}},
		{"a named profile", configFlags{profile: "prod"}, env(), Config{"https://prod.example", DefaultAPIKey, DefaultInboundSecret, "acme"}},
	} {
		got, err := resolve(tt.flags, tt.env)
		if err != nil || got != tt.want {
			t.Errorf("%s: %+v %v, want %+v", tt.name, got, err, tt.want)
		}
	}
	if _, err := resolve(configFlags{profile: "staging"}, env()); err == nil {
		t.Error("an unknown profile is accepted")
	}
}

// Bad usage exits 2, a failed verification 1 with its reason, and --json prints JSON.
func TestExitCodes(t *testing.T) {
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Run(context.Background(), args, IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
		return code, out.String(), errb.String()
	}
	if code, _, _ := run("sign", "--scheme", "rot13", "--secret", "x"); code != 2 {
		t.Errorf("unknown scheme: exit %d", code)
	}
	code, out, _ := run("verify", "--scheme", "github", "--secret", "s", "-H", "X-Hub-Signature-256: sha256=00", "--data", "{}")
	if code != 1 || !strings.Contains(out, "no: invalid signature: malformed header (x-hub-signature-256)") {
		t.Errorf("verify: exit %d, %q", code, out)
	}
	code, out, _ = run("sign", "--json", "--scheme", "github", "--secret", "s", "--data", "{}", "--id", "d1")
	if code != 0 || !strings.HasPrefix(out, `{"headers":{"X-GitHub-Delivery":"d1","X-Hub-Signature-256":"sha256=`) {
		t.Errorf("sign --json: exit %d, %q", code, out)
	}
}

// The resume line is a command to paste: a --types pattern with shell characters in it is quoted,
// so the shell does not glob run.* against the files of the current directory.
func TestResumeLineIsQuotedForTheShell(t *testing.T) {
	var errb bytes.Buffer
	a := &app{io: IO{Stderr: &errb}}
	a.printResume(nil, "tail", "run.*", "42")
	want := "Resume with: hookgate tail --types 'run.*' --since 42\n"
	if !strings.HasSuffix(errb.String(), want) {
		t.Fatalf("%q, want it to end %q", errb.String(), want)
	}
}
