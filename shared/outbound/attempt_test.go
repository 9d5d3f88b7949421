package outbound

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hookgate/hookgate/shared/loop"
)

// attempt posts the vector body to a test server running handler, with a private-allowed client.
func attempt(t *testing.T, timeout time.Duration, handler http.HandlerFunc) Result {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	c := NewClient(ClientOptions{AllowPrivate: true, Timeout: timeout})
	return Post(context.Background(), c, "Hookgate/test", Request{
		URL: srv.URL + "/hook", MsgID: vecMsgID, Body: []byte(vecBody),
		Signer: mustSigner(t, vecSecret), Now: time.Unix(vecTS, 0),
	})
}

func TestPostSignedRequest(t *testing.T) {
	got := make(chan *http.Request, 1)
	var body []byte
	res := attempt(t, time.Second, func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		got <- r
		w.WriteHeader(http.StatusNoContent)
	})
	r := <-got
	if res.Err != "" || res.StatusCode != http.StatusNoContent || !res.Success() || res.Gone() || res.Latency <= 0 {
		t.Fatalf("result %+v, want a 204 success", res)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/hook" || string(body) != vecBody {
		t.Errorf("request %s %s %q", r.Method, r.URL.Path, body)
	}
	for k, v := range map[string]string{
		"Content-Type":        "application/json",
		"User-Agent":          "Hookgate/test",
		"Webhook-Id":          vecMsgID,
		"Webhook-Timestamp":   "1614265330",
		"Webhook-Signature":   vecSig,
		"X-Webhook-Signature": vecHex,
		"Hookgate-Hop":        "1", // the hop marker every inbound route refuses
	} {
		if r.Header.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, r.Header.Get(k), v)
		}
	}
	if !verifyStandard(vecSecret, r.Header, body) || !verifyHex(vecSecret, r.Header, body) {
		t.Error("the receiver's verifiers reject the request")
	}
}

func TestPostResponses(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		status     int
		success    bool
		gone       bool
		retryAfter time.Duration
		snippet    string
	}{
		{"200 with body", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		}, 200, true, false, 0, "ok"},
		{"500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, 500, false, false, 0, "boom\n"},
		{"410 gone", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(410) }, 410, false, true, 0, ""},
		{"429 with Retry-After seconds", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(429)
		}, 429, false, false, 2 * time.Minute, ""},
		{"503 with Retry-After date", func(w http.ResponseWriter, r *http.Request) {
			// The attempt's clock is vecTS, so a date 90 s later is 90 s less the latency.
			w.Header().Set("Retry-After", time.Unix(vecTS+90, 0).UTC().Format(http.TimeFormat))
			w.WriteHeader(503)
		}, 503, false, false, 89 * time.Second, ""},
		{"Retry-After ignored on 500", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(500)
		}, 500, false, false, 0, ""},
		{"3xx is the result", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		}, 302, false, false, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := attempt(t, time.Second, tt.handler)
			if res.Err != "" || res.StatusCode != tt.status || res.Success() != tt.success || res.Gone() != tt.gone {
				t.Fatalf("result %+v, want status %d", res, tt.status)
			}
			// Retry-After dates have one-second resolution and the latency is subtracted.
			if d := res.RetryAfter - tt.retryAfter; d < 0 || d > time.Second {
				t.Errorf("RetryAfter = %s, want %s", res.RetryAfter, tt.retryAfter)
			}
			if tt.snippet != "" && res.ResponseSnippet != tt.snippet {
				t.Errorf("snippet %q, want %q", res.ResponseSnippet, tt.snippet)
			}
		})
	}
}

func TestPostSnippetCapped(t *testing.T) {
	// 1023 ASCII bytes then "é" (2 bytes) straddles the cap, then far more than the drain bound.
	big := strings.Repeat("a", SnippetBytes-1) + "é" + strings.Repeat("b", 200<<10)
	res := attempt(t, time.Second, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) })
	if res.Err != "" || res.StatusCode != 200 {
		t.Fatalf("result %+v", res)
	}
	if want := big[:SnippetBytes-1]; res.ResponseSnippet != want {
		t.Fatalf("snippet of %d bytes, want the %d before the cut rune", len(res.ResponseSnippet), len(want))
	}

	invalid := "ok \xff\xfe end"
	res = attempt(t, time.Second, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, invalid) })
	if !utf8.ValidString(res.ResponseSnippet) || !strings.HasPrefix(res.ResponseSnippet, "ok ") {
		t.Fatalf("snippet %q is not valid UTF-8", res.ResponseSnippet)
	}
}

func TestSnippet(t *testing.T) {
	euro := "€" // 3 bytes
	tests := []struct {
		in   string
		cut  bool
		want string
	}{
		{"abc", false, "abc"},
		{"ab" + euro, true, "ab" + euro},
		{"ab" + euro[:2], true, "ab"},
		{"ab" + euro[:1], true, "ab"},
		{"ab" + euro[:2], false, "ab\uFFFD"},
		{"a\xffb", true, "a\uFFFDb"},
		{"", true, ""},
	}
	for _, tt := range tests {
		if got := snippet([]byte(tt.in), tt.cut); got != tt.want {
			t.Errorf("snippet(%q, %v) = %q, want %q", tt.in, tt.cut, got, tt.want)
		}
	}
}

func TestPostFailures(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		res := attempt(t, 50*time.Millisecond, func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body) // then the server notices the client hanging up
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
		if res.Err != FailTimeout || res.StatusCode != 0 {
			t.Fatalf("result %+v, want Err %q", res, FailTimeout)
		}
	})

	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		res := Post(context.Background(), NewClient(ClientOptions{AllowPrivate: true}), "", Request{
			URL: "http://" + addr + "/", MsgID: vecMsgID, Body: []byte("{}"), Signer: mustSigner(t, vecSecret),
		})
		if res.Err != FailRefused {
			t.Fatalf("result %+v, want Err %q", res, FailRefused)
		}
	})

	t.Run("blocked", func(t *testing.T) {
		var hit atomic.Bool
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit.Store(true) }))
		defer srv.Close()
		res := Post(context.Background(), NewClient(ClientOptions{}), "", Request{
			URL: srv.URL, MsgID: vecMsgID, Body: []byte("{}"), Signer: mustSigner(t, vecSecret),
		})
		if res.Err != FailBlocked || hit.Load() {
			t.Fatalf("result %+v (server hit %v), want Err %q", res, hit.Load(), FailBlocked)
		}
	})

	t.Run("own host", func(t *testing.T) {
		var hit atomic.Bool
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit.Store(true) }))
		defer srv.Close()
		own, err := loop.ParseHosts(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		res := Post(context.Background(), NewClient(ClientOptions{AllowPrivate: true, OwnHosts: &own}), "", Request{
			URL: srv.URL, MsgID: vecMsgID, Body: []byte("{}"), Signer: mustSigner(t, vecSecret),
		})
		if res.Err != FailOwnHost || !res.Permanent || hit.Load() {
			t.Fatalf("result %+v (server hit %v), want a permanent Err %q", res, hit.Load(), FailOwnHost)
		}
	})

	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res := Post(ctx, NewClient(ClientOptions{AllowPrivate: true}), "", Request{
			URL: "http://127.0.0.1:9/", MsgID: vecMsgID, Signer: mustSigner(t, vecSecret),
		})
		if res.Err != FailCanceled {
			t.Fatalf("result %+v, want Err %q", res, FailCanceled)
		}
	})

	t.Run("connection closed", func(t *testing.T) {
		res := attempt(t, time.Second, func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		})
		if res.Err != FailClosed {
			t.Fatalf("result %+v, want Err %q", res, FailClosed)
		}
	})
}

func TestPostRefusesBadRequests(t *testing.T) {
	c := NewClient(ClientOptions{})
	signer := mustSigner(t, vecSecret)
	secretURL := "https://user:hunter2@exa mple.com/hook?token=hunter2"
	tests := []struct {
		name string
		req  Request
		want string
	}{
		{"no signer", Request{URL: "https://example.com/", MsgID: vecMsgID}, FailNoSigner},
		{"empty id", Request{URL: "https://example.com/", Signer: signer}, FailInvalidMsgID},
		{"dot in id", Request{URL: "https://example.com/", MsgID: "msg.1", Signer: signer}, FailInvalidMsgID},
		{"newline in id", Request{URL: "https://example.com/", MsgID: "msg\n1", Signer: signer}, FailInvalidMsgID},
		{"bad url", Request{URL: "http://[::1", MsgID: vecMsgID, Signer: signer}, FailInvalidURL},
		{"relative url", Request{URL: "/hook", MsgID: vecMsgID, Signer: signer}, FailInvalidURL},
		{"file scheme", Request{URL: "file:///etc/passwd", MsgID: vecMsgID, Signer: signer}, FailInvalidURL},
		{"secret in a bad url", Request{URL: secretURL, MsgID: vecMsgID, Signer: signer}, FailInvalidURL},
	}
	for _, tt := range tests {
		res := Post(context.Background(), c, "", tt.req)
		if res.Err != tt.want || res.StatusCode != 0 {
			t.Errorf("%s: result %+v, want Err %q", tt.name, res, tt.want)
		}
		if strings.Contains(res.Err, "hunter2") {
			t.Errorf("%s: Err leaks the URL's secret", tt.name)
		}
	}
}
