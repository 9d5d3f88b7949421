package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"unicode"
)

// hostile is text a sender, an agent or a receiver controls, with terminal escapes: clear the
// screen, set the window title, move the cursor, a bare carriage return, a C1 CSI and a bidi override.
const hostile = "hi\x1b[2J\x1b]0;pwned\x07\r\x1b[1A\u009b31m\u202eevil"

// The command line prints what the API says (events a Telegram user or a sender wrote, a
// receiver's answer, an error message) to a terminal: no control character of that text reaches it.
func TestTerminalEscapesAreNotPrinted(t *testing.T) {
	h, _ := json.Marshal(hostile)
	envelope := fmt.Sprintf(`{"id":"evt_1\u001b[2J","type":"message.received","created_at":"2026-01-01T00:00:00Z","workspace_id":"w","data":{"text":%s}}`, h)
	var stream atomic.Int32
	var cancel context.CancelFunc
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/events/stream":
			if stream.Add(1) > 1 {
				cancel()
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "id: 1\x1b[2J\nevent: message.received\x1b]0;x\x07\ndata: %s\n\n", envelope)
		case r.URL.Path == "/v1/webhooks":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"data":[{"id":"sub_1","url":"https://example.com","description":%s,"events":["*"],"status":"active"}]}`, h)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":{"code":"bad","message":%s}}`, h)
		}
	}))
	defer api.Close()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer receiver.Close()

	for _, args := range [][]string{
		{"tail", "--since", "0"},
		{"listen", "--since", "0", "--forward-to", receiver.URL},
		{"webhooks", "list"},
		{"webhooks", "show", "sub_404"},
	} {
		stream.Store(0)
		var ctx context.Context
		ctx, cancel = context.WithCancel(context.Background())
		var out, errb bytes.Buffer
		Run(ctx, append(args, "--api", api.URL, "--api-key", "k"), IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
			Getenv: func(string) string { return "" }})
		cancel()
		for name, s := range map[string]string{"stdout": out.String(), "stderr": errb.String()} {
			for _, r := range s {
				if r != '\n' && r != '\t' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)) {
					t.Errorf("%s: %s prints %U: %q", strings.Join(args, " "), name, r, s)
					break
				}
			}
		}
	}
}
