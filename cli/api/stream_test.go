package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A fake event stream of 30 events, three per window; every other window is cut in the middle of
// its last event. The follower hands on each event once, in order, and resumes after the last.
func TestFollowResumesAfterACutWithoutLossOrRepeats(t *testing.T) {
	const total = 30
	var windows atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-API-Key") != "k" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"code":"unauthorized","message":"invalid API key"}}`)
			return
		}
		since, _ := strconv.Atoi(r.URL.Query().Get("since"))
		w.Header().Set("Content-Type", "text/event-stream")
		var b strings.Builder
		last := since
		for c := since + 1; c <= min(since+3, total); c++ {
			fmt.Fprintf(&b, "id: %d\nevent: run.completed\ndata: {\"id\":\"evt_%d\"}\n\n", c, c)
			last = c
		}
		if last == since {
			b.WriteString(": keep-alive\n")
		}
		fmt.Fprintf(&b, "retry: 100\nid: %d\n\n", last)
		body := b.String()
		if windows.Add(1)%2 == 0 && last > since {
			i := strings.LastIndex(body, "\ndata: ")
			w.Write([]byte(body[:i+8]))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		w.Write([]byte(body))
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []string
	retries := 0
	f := &Follower{Client: &Client{Base: srv.URL, Key: "k"}, MaxWait: time.Millisecond,
		OnRetry: func(error, time.Duration) { retries++ }}
	cursor, err := f.Follow(ctx, "0", func(ev Event) error {
		got = append(got, ev.Cursor+" "+string(ev.Data))
		if len(got) == total {
			cancel()
		}
		return nil
	})
	if err != nil || cursor != strconv.Itoa(total) {
		t.Fatalf("Follow: cursor %q, %v", cursor, err)
	}
	for i, g := range got {
		if want := fmt.Sprintf("%d {\"id\":\"evt_%d\"}", i+1, i+1); g != want {
			t.Fatalf("event %d is %q, want %q", i, g, want)
		}
	}
	if len(got) != total || retries == 0 {
		t.Fatalf("%d events, %d retries", len(got), retries)
	}

	// A refused stream (401) ends Follow with the API's error.
	f.Client.Key = "wrong"
	_, err = f.Follow(context.Background(), "now", func(Event) error { return nil })
	if e, ok := IsAPI(err); !ok || e.Code != "unauthorized" || e.Status != 401 {
		t.Fatalf("Follow with a wrong key: %v", err)
	}
}
