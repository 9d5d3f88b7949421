package outbound

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/shared/loop"
)

func TestBlocked(t *testing.T) {
	tests := []struct {
		ip      string
		blocked bool
	}{
		// IPv4 ranges refused.
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"10.0.0.1", true},
		{"10.255.255.255", true},
		{"100.64.0.1", true},
		{"100.127.255.254", true},
		{"127.0.0.1", true},
		{"127.255.0.9", true},
		{"169.254.169.254", true}, // instance metadata
		{"169.254.170.2", true},   // ECS task metadata
		{"169.254.0.1", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"192.168.1.1", true},
		{"192.0.0.170", true},
		{"192.0.2.1", true},
		{"198.18.0.1", true},
		{"198.19.255.255", true},
		{"198.51.100.7", true},
		{"203.0.113.9", true},
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"240.0.0.1", true},
		{"255.255.255.255", true},
		// IPv4 public, including the neighbours of the refused ranges.
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"9.255.255.255", false},
		{"11.0.0.0", false},
		{"100.63.255.255", false},
		{"100.128.0.0", false},
		{"126.255.255.255", false},
		{"128.0.0.1", false},
		{"169.253.255.255", false},
		{"172.15.255.255", false},
		{"172.32.0.0", false},
		{"192.0.1.1", false},
		{"192.0.3.1", false},
		{"192.169.0.1", false},
		{"198.17.255.255", false},
		{"198.20.0.0", false},
		{"203.0.114.1", false},
		{"223.255.255.255", false},
		// IPv6 refused.
		{"::", true},
		{"::1", true},
		{"::127.0.0.1", true}, // IPv4-compatible, deprecated
		{"::8.8.8.8", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"febf::1", true},
		{"fec0::1", true}, // site-local, deprecated
		{"fc00::1", true},
		{"fd00:ec2::254", true}, // instance metadata over IPv6
		{"fdff:ffff::1", true},
		{"ff02::1", true},
		{"ff0e::1", true},
		{"100::1", true},
		{"64:ff9b:1::1", true},
		{"2001::1", true}, // Teredo
		{"2001:2::1", true},
		{"2001:db8::1", true},
		{"3fff::1", true},
		// IPv4-mapped, NAT64 and 6to4 forms of refused IPv4 addresses.
		{"::ffff:127.0.0.1", true},
		{"::ffff:10.1.2.3", true},
		{"::ffff:169.254.169.254", true},
		{"::ffff:100.64.0.1", true},
		{"::ffff:0.0.0.0", true},
		{"::ffff:224.0.0.1", true},
		{"64:ff9b::a9fe:a9fe", true}, // 169.254.169.254
		{"64:ff9b::7f00:1", true},    // 127.0.0.1
		{"2002:a00:1::1", true},      // 10.0.0.1
		{"2002:a9fe:a9fe::", true},   // 169.254.169.254
		// IPv6 public, and public IPv4 in mapped, NAT64 and 6to4 forms.
		{"2606:4700:4700::1111", false},
		{"2a00:1450:4001:80b::200e", false},
		{"2001:4860:4860::8888", false},
		{"2001:db9::1", false},
		{"::ffff:8.8.8.8", false},
		{"64:ff9b::808:808", false},
		{"2002:808:808::1", false},
	}
	for _, tt := range tests {
		ip := netip.MustParseAddr(tt.ip)
		if got := blocked(ip); got != tt.blocked {
			t.Errorf("blocked(%s) = %v, want %v", tt.ip, got, tt.blocked)
		}
	}
	if !blocked(netip.Addr{}) {
		t.Error("the zero Addr must be refused")
	}
}

func TestGuardAddressForms(t *testing.T) {
	for addr, wantBlocked := range map[string]bool{
		"127.0.0.1:80":                true,
		"[::1]:443":                   true,
		"[fe80::1%lo]:80":             true,
		"[::ffff:169.254.169.254]:80": true,
		"8.8.8.8:443":                 false,
		"[2606:4700::1111]:443":       false,
		"localhost:80":                true, // not an IP: fail closed
		"":                            true,
	} {
		err := guard("tcp", addr, nil)
		var be *BlockedAddressError
		if got := errors.As(err, &be); got != wantBlocked {
			t.Errorf("guard(%q) = %v, want blocked %v", addr, err, wantBlocked)
		}
	}
}

func TestClientRefusesLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	localhost := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) // through DNS resolution

	for _, url := range []string{srv.URL, localhost} {
		resp, err := NewClient(ClientOptions{}).Get(url)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("GET %s: the guard let a loopback dial through", url)
		}
		var be *BlockedAddressError
		if !errors.As(err, &be) || !be.IP.IsLoopback() {
			t.Fatalf("GET %s: error %v, want a *BlockedAddressError for a loopback IP", url, err)
		}
	}

	resp, err := NewClient(ClientOptions{AllowPrivate: true}).Get(srv.URL)
	if err != nil {
		t.Fatalf("AllowPrivate: %v", err)
	}
	resp.Body.Close()
}

// TestClientIgnoresProxyEnv: a proxy from the environment would dial in the guard's place.
// (net/http reads the environment once per process; nothing in this package reads it earlier.)
func TestClientIgnoresProxyEnv(t *testing.T) {
	var proxied atomic.Bool
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { proxied.Store(true) }))
	defer proxy.Close()
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	// 192.0.2.1 is unroutable: without a proxy the attempt times out.
	resp, err := NewClient(ClientOptions{AllowPrivate: true, Timeout: 100 * time.Millisecond}).Get("http://192.0.2.1:9/")
	if err == nil {
		resp.Body.Close()
	}
	if proxied.Load() {
		t.Fatal("the request went through the environment proxy")
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) { followed.Store(true) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	c := NewClient(ClientOptions{AllowPrivate: true})
	resp, err := c.Post(srv.URL+"/hook", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || followed.Load() {
		t.Fatalf("status %d, followed %v: want the 307 itself", resp.StatusCode, followed.Load())
	}
}

func TestClientUserAgent(t *testing.T) {
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.UserAgent() }))
	defer srv.Close()
	c := NewClient(ClientOptions{AllowPrivate: true, UserAgent: "Hookgate/test"})
	for _, set := range []string{"", "Custom/1"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if set != "" {
			req.Header.Set("User-Agent", set)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := set
		if want == "" {
			want = "Hookgate/test"
		}
		if ua := <-got; ua != want {
			t.Errorf("User-Agent = %q, want %q", ua, want)
		}
	}
}

// The gateway's own host is refused even where private destinations are allowed (local mode): by
// name before DNS, and by address after it (a name that resolves to the API's own address).
func TestClientRefusesOwnHost(t *testing.T) {
	var reached atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer srv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer other.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	own, err := loop.ParseHosts(addr)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	for _, allowPrivate := range []bool{true, false} {
		c := NewClient(ClientOptions{AllowPrivate: allowPrivate, OwnHosts: &own})
		for _, url := range []string{srv.URL, "http://localhost:" + port, "http://0.0.0.0:" + port} {
			resp, err := c.Get(url)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("GET %s reached the gateway's own address", url)
			}
			if got := Classify(err); got != FailOwnHost {
				t.Fatalf("GET %s (allowPrivate %v): %v classified %q, want %q", url, allowPrivate, err, got, FailOwnHost)
			}
		}
	}
	c := NewClient(ClientOptions{AllowPrivate: true, OwnHosts: &own})
	resp, err := c.Get(other.URL) // another port of the same machine is not the gateway
	if err != nil {
		t.Fatalf("another local port: %v", err)
	}
	resp.Body.Close()
	if _, err := c.Get("https://abc.execute-api.us-east-1.amazonaws.com/x"); Classify(err) != FailOwnHost {
		t.Fatalf("execute-api host: %v", err)
	}
	if reached.Load() != 0 {
		t.Fatal("a refused request reached the server")
	}
}
