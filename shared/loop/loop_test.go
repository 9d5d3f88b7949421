package loop

import (
	"net/netip"
	"net/url"
	"testing"

	"github.com/hookgate/hookgate/shared/apierr"
)

func TestOwnURL(t *testing.T) {
	hosts, err := ParseHosts("abc123.execute-api.us-east-1.amazonaws.com,hooks.example.com", " 127.0.0.1:3000 , localhost:3000,api.example.org:8443,[::1]:4000,10.0.0.7")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		url  string
		want bool
	}{
		// The API's own execute-api host, and every other one.
		{"https://abc123.execute-api.us-east-1.amazonaws.com/v1/inbound/generic", true},
		{"https://ABC123.Execute-Api.US-EAST-1.AmazonAWS.com/x", true},
		{"https://abc123.execute-api.us-east-1.amazonaws.com./x", true},
		{"https://abc123.execute-api.us-east-1.amazonaws.com..:443/x", true},
		{"https://other99.execute-api.eu-west-3.amazonaws.com/prod/hook", true},
		{"https://abc-vpce-0123.execute-api.us-east-1.vpce.amazonaws.com/x", true},
		{"https://abc.execute-api.cn-north-1.amazonaws.com.cn/x", true},
		{"https://abc.execute-api.us-east-1.amazonaws.com:8443/x", true},
		{"https://execute-api.example.com/x", false},
		{"https://abc.execute-api.us-east-1.amazonaws.com.evil.example/x", false},
		{"https://s3.us-east-1.amazonaws.com/bucket", false},
		{"https://notexecute-api.us-east-1.amazonaws.com/x", false},
		// Custom domains: a name without a port is every port.
		{"https://hooks.example.com/in", true},
		{"https://HOOKS.EXAMPLE.COM./in", true},
		{"http://hooks.example.com:8080/in", true},
		{"https://sub.hooks.example.com/in", false},
		{"https://api.example.org:8443/x", true},
		{"https://api.example.org/x", false},
		{"https://api.example.org:08443/x", true},
		{"http://127.0.0.1:03000/x", true},
		// Local mode's listen address: that address and port only.
		{"http://127.0.0.1:3000/v1/inbound/generic", true},
		{"http://localhost:3000/x", true},
		{"http://LOCALHOST.:3000/x", true},
		{"http://0.0.0.0:3000/x", true},
		{"http://[::ffff:127.0.0.1]:3000/x", true},
		{"http://127.0.0.1:3001/x", false},
		{"http://127.0.0.1/x", false},
		{"http://localhost:4000/x", false},
		{"http://[::1]:4000/x", true},
		{"http://[::1]:3000/x", false},
		{"http://10.0.0.7:1234/x", true},
		{"https://10.0.0.7/x", true},
		{"https://10.0.0.8/x", false},
		{"https://example.com/x", false},
	} {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatalf("%s: %v", c.url, err)
		}
		if got := hosts.OwnURL(u); got != c.want {
			t.Errorf("OwnURL(%s) = %v, want %v", c.url, got, c.want)
		}
	}
}

func TestZeroHostsRefuseExecuteAPI(t *testing.T) {
	var h Hosts
	if !h.OwnAddr("x1.execute-api.ap-south-1.amazonaws.com:443") || h.OwnAddr("example.com:443") || h.OwnAddr("127.0.0.1:3000") {
		t.Fatal("the zero Hosts must hold the execute-api rule and nothing else")
	}
}

func TestOwnIP(t *testing.T) {
	hosts, err := ParseHosts("127.0.0.1:3000,0.0.0.0:5000,203.0.113.9")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:3000", true},
		{"[::ffff:127.0.0.1]:3000", true},
		{"0.0.0.0:3000", true},
		{"127.0.0.1:3001", false},
		{"127.0.0.2:3000", false},
		{"127.0.0.1:5000", true}, // a listener on 0.0.0.0 takes loopback connections
		{"[::1]:5000", true},
		{"192.0.2.1:5000", false},
		{"203.0.113.9:443", true},
		{"203.0.113.9:80", true},
	} {
		if got := hosts.OwnIP(netip.MustParseAddrPort(c.addr)); got != c.want {
			t.Errorf("OwnIP(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
}

func TestParseHosts(t *testing.T) {
	for _, bad := range []string{"https://", "a b.example", "host/path", "user@host", "127.0.0.1:99999"} {
		if _, err := ParseHosts(bad); err == nil {
			t.Errorf("ParseHosts(%q) accepted", bad)
		}
	}
	h, err := ParseHosts("", " , ", "https://hooks.example.com/base")
	if err != nil || !h.OwnAddr("hooks.example.com:443") {
		t.Fatalf("a URL item is taken for its host: %v", err)
	}
}

func TestRefuse(t *testing.T) {
	for _, c := range []struct {
		headers map[string]string
		want    bool
	}{
		{map[string]string{"hookgate-hop": "1"}, true},
		{map[string]string{"hookgate-hop": ""}, true},
		{map[string]string{"Hookgate-Hop": "anything"}, true},
		{map[string]string{"HOOKGATE-HOP": "2"}, true},
		{map[string]string{"hookgate-hops": "1", "x-hookgate-hop": "1"}, false},
		{nil, false},
	} {
		err := Refuse(c.headers)
		if (err != nil) != c.want {
			t.Errorf("Refuse(%v) = %v, want refused %v", c.headers, err, c.want)
		}
		if err != nil && apierr.CodeOf(err) != apierr.LoopDetected {
			t.Errorf("code %s", apierr.CodeOf(err))
		}
	}
}

func TestWith(t *testing.T) {
	base, err := ParseHosts("hooks.example.com")
	if err != nil {
		t.Fatal(err)
	}
	h := base.With("api.example.net").With("127.0.0.1:3000").With("not a host")
	for addr, want := range map[string]bool{
		"hooks.example.com:443": true, "api.example.net:443": true, "API.Example.Net.:8080": true,
		"127.0.0.1:3000": true, "127.0.0.1:3001": false, "example.org:443": false,
	} {
		if got := h.OwnAddr(addr); got != want {
			t.Errorf("OwnAddr(%s) = %v, want %v", addr, got, want)
		}
	}
	if base.OwnAddr("api.example.net:443") {
		t.Fatal("With changed the hosts it was called on")
	}
}
