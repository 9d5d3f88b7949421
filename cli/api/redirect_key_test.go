package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// A hostile or misconfigured API that answers with a redirect to another host must not get the
// API key sent there: neither a call nor the event stream follows a redirect.
func TestRedirectDoesNotCarryTheAPIKeyElsewhere(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var leaked atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-API-Key") != "" {
			leaked.Add(1)
		}
		if r.URL.Path == "/v1/events/stream" {
			cancel() // the old follower reads empty windows from here forever
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
	}))
	defer elsewhere.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer api.Close()

	c := &Client{Base: api.URL, Key: "hgk_secret_key"}
	if _, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/v1/webhooks"}); err == nil {
		t.Error("a redirect was taken as the answer")
	}
	f := &Follower{Client: c, OnRetry: func(error, time.Duration) { cancel() }}
	_, err := f.Follow(ctx, "0", func(Event) error { return nil })
	if err == nil {
		t.Error("the stream's redirect is not refused")
	}
	if n := leaked.Load(); n != 0 {
		t.Fatalf("the API key was sent to the redirect's host %d times", n)
	}
}
