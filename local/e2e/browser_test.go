package e2e_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The widget in a real browser: headless Chromium (Debian's chromium, installed by make deps)
// driven by playwright-core (package.json) runs testdata/widget_e2e.mjs against the live stack:
// the demo page, a message, the echo agent's reply, a reload that resumes the conversation; then
// the widget embedded by a page of another, allowed origin (CORS, preflights and a cross-origin
// EventSource for real), and by a page of an origin that is not allowed (no session). The
// screenshots land in testdata/artifacts/ at the repository root (git-ignored).
func TestWidgetInChromium(t *testing.T) {
	inLane(t, laneLive)
	chromium := os.Getenv("HOOKGATE_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	root, _ := filepath.Abs("../..")
	for _, need := range []string{chromium, filepath.Join(root, "node_modules", "playwright-core", "package.json")} {
		if _, err := os.Stat(need); err != nil {
			t.Fatalf("%s is missing: run make deps (it installs Debian's chromium and the npm packages)", need)
		}
	}
	e := liveStack(t)
	artifacts := filepath.Join(root, "testdata", "artifacts")
	for _, f := range []string{"widget.png", "widget-phone.png", "widget-failure.png"} {
		_ = os.Remove(filepath.Join(artifacts, f))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// A site whose origin is not allowed embeds the widget too: it must get no session.
	denied := httptest.NewServer(embedPage(func() string { return e.stack.URL }))
	defer denied.Close()
	cmd := exec.CommandContext(ctx, "node", "widget_e2e.mjs", e.stack.URL, artifacts, e.shop.URL, denied.URL)
	cmd.Dir = "testdata"
	cmd.Env = append(os.Environ(), "HOOKGATE_CHROMIUM="+chromium)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("the browser test failed: %v (screenshot: %s)", err, filepath.Join(artifacts, "widget-failure.png"))
	}
	png, err := os.ReadFile(filepath.Join(artifacts, "widget.png"))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("no screenshot: %v", err)
	}
}
