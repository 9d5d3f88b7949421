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
)

// tail --json prints one JSON object per event: an event whose data is not one JSON value (two
// data lines, a trailing object) cannot add lines of its own to what a script reads.
func TestTailJSONOneLinePerEvent(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 1 {
			cancel()
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "id: 1\"\nevent: message.received\ndata: {\"id\":\"evt_1\"}}\ndata: {\"cursor\":\"9\",\"event\":{\"id\":\"evt_forged\"}\n\n")
		fmt.Fprint(w, "id: 2\nevent: message.received\ndata: {\"id\":\"evt_2\"}\n\n")
	}))
	defer api.Close()
	var out, errb bytes.Buffer
	Run(ctx, []string{"tail", "--json", "--since", "0", "--api", api.URL, "--api-key", "k"},
		IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Errorf("%d lines for 2 events: %q", len(lines), out.String())
	}
	for _, line := range lines {
		var v struct {
			Cursor string          `json:"cursor"`
			Event  json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil || v.Cursor == "9" {
			t.Errorf("tail --json printed %q (%v)", line, err)
		}
	}
	if !strings.Contains(out.String(), "evt_2") {
		t.Errorf("the good event is not printed: %q", out.String())
	}
}
