package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A hostile API that streams one endless line: the follower stops reading it at a bound (it does
// not buffer it all) and gives up rather than asking for it again.
func TestStreamRefusesAnEndlessLine(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var requests atomic.Int32
	var written atomic.Int64
	const total = 256 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) > 1 {
			cancel() // asked again: the old code retries a bad line forever
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("id: 1\ndata: "))
		chunk := []byte(strings.Repeat("a", 64<<10))
		for written.Load() < total {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			written.Add(int64(len(chunk)))
		}
	}))
	defer srv.Close()
	f := &Follower{Client: &Client{Base: srv.URL, Key: "k"}, MaxWait: time.Millisecond}
	var got int
	_, err := f.Follow(ctx, "0", func(Event) error { got++; return nil })
	if err == nil {
		t.Error("an endless line is not refused")
	}
	if got != 0 || requests.Load() != 1 {
		t.Errorf("%d events handed on, %d requests", got, requests.Load())
	}
	if n := written.Load(); n >= 64<<20 {
		t.Errorf("the follower read %d MiB of one line", n>>20)
	}
}
