package outbound

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"github.com/hookgate/hookgate/shared/loop"
)

// DefaultTimeout bounds one attempt: connect, TLS, request, response headers and body.
const DefaultTimeout = 15 * time.Second

// ClientOptions configure NewClient.
type ClientOptions struct {
	Timeout      time.Duration // whole attempt; DefaultTimeout when 0
	AllowPrivate bool          // dial private, loopback and link-local addresses too (local mode)
	UserAgent    string        // set on requests that carry none
	// OwnHosts, when set, are the gateway's own hosts: a dial to one of them is refused (before
	// DNS by name, after DNS by address), even with AllowPrivate, so no delivery feeds the
	// gateway itself. Agents' clients leave it nil.
	OwnHosts *loop.Hosts
}

// BlockedAddressError is the error of a dial to an address the client refuses.
type BlockedAddressError struct {
	IP netip.Addr
}

func (e *BlockedAddressError) Error() string {
	return "delivery: destination address " + e.IP.String() + " is not public"
}

// OwnHostError is the error of a dial to one of the gateway's own hosts.
type OwnHostError struct{}

func (*OwnHostError) Error() string { return "delivery: destination is the gateway's own API" }

// NewClient returns the client for outbound deliveries. Unless o.AllowPrivate, it refuses at dial
// time, after DNS resolution so rebinding cannot slip through, every address that is not public
// unicast (see blocked). It follows no redirects (the 3xx is the result) and uses no proxy: an
// environment proxy would dial in the guard's place.
func NewClient(o ClientOptions) *http.Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	dialer := &net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}
	dial := dialer.DialContext
	switch own := o.OwnHosts; {
	case own != nil:
		dialer.Control = func(network, address string, c syscall.RawConn) error {
			if ap, err := netip.ParseAddrPort(address); err == nil && own.OwnIP(ap) {
				return &OwnHostError{}
			}
			if o.AllowPrivate {
				return nil
			}
			return guard(network, address, c)
		}
		// The address here is the URL's host (IDNA-mapped) and port, before DNS.
		dial = func(ctx context.Context, network, address string) (net.Conn, error) {
			if own.OwnAddr(address) {
				return nil, &OwnHostError{}
			}
			return dialer.DialContext(ctx, network, address)
		}
	case !o.AllowPrivate:
		dialer.Control = guard
	}
	var rt http.RoundTripper = &http.Transport{
		Proxy:                  nil, // never the environment's
		DialContext:            dial,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    16,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	if o.UserAgent != "" {
		rt = &userAgent{next: rt, ua: o.UserAgent}
	}
	return &http.Client{
		Transport:     rt,
		Timeout:       o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// guard is the dialer's Control: it runs on the resolved address just before connect.
func guard(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &BlockedAddressError{} // not an IP address: fail closed
	}
	if blocked(ap.Addr()) {
		return &BlockedAddressError{IP: ap.Addr()}
	}
	return nil
}

// blocked reports whether ip is anything but public unicast: unspecified, "this network",
// loopback, RFC 1918, CGNAT, link-local (169.254.169.254, the metadata service, included),
// unique-local (fd00:ec2::254, the IPv6 metadata service, included), site-local, multicast,
// broadcast and reserved, the IETF, documentation and benchmarking ranges, IPv4-mapped,
// -compatible, NAT64 and 6to4 forms of blocked IPv4 addresses, and Teredo.
func blocked(ip netip.Addr) bool {
	ip = ip.WithZone("").Unmap()
	if ip.Is4() {
		return blocked4(ip.As4())
	}
	if !ip.Is6() {
		return true
	}
	a := ip.As16()
	switch {
	case in(ip, "64:ff9b::/96"): // NAT64 carries the IPv4 address in its last 4 bytes
		return blocked4([4]byte(a[12:]))
	case in(ip, "2002::/16"): // 6to4 carries it after the prefix
		return blocked4([4]byte(a[2:6]))
	case !in(ip, "2000::/3"): // not global unicast: ::/8 (::, ::1, ::a.b.c.d), 64:ff9b:1::/48,
		return true //          100::/64, fc00::/7, fe80::/10, fec0::/10, ff00::/8, …
	}
	return in(ip, "2001::/32") || // Teredo
		in(ip, "2001:2::/48") || // benchmarking
		in(ip, "2001:db8::/32") || in(ip, "3fff::/20") // documentation
}

// in reports whether ip is in prefix, a literal. Parsing at each dial costs far less than the dial.
func in(ip netip.Addr, prefix string) bool {
	p, err := netip.ParsePrefix(prefix)
	return err == nil && p.Contains(ip)
}

func blocked4(a [4]byte) bool {
	switch {
	case
		a[0] == 0,                                // 0.0.0.0/8 "this network", 0.0.0.0 included
		a[0] == 10,                               // 10.0.0.0/8 private
		a[0] == 127,                              // 127.0.0.0/8 loopback
		a[0] >= 224,                              // 224.0.0.0/4 multicast, 240.0.0.0/4 reserved, 255.255.255.255
		a[0] == 100 && a[1]&0xc0 == 64,           // 100.64.0.0/10 CGNAT
		a[0] == 169 && a[1] == 254,               // 169.254.0.0/16 link-local, metadata
		a[0] == 172 && a[1]&0xf0 == 16,           // 172.16.0.0/12 private
		a[0] == 192 && a[1] == 168,               // 192.168.0.0/16 private
		a[0] == 192 && a[1] == 0 && a[2] == 0,    // 192.0.0.0/24 IETF protocol assignments
		a[0] == 192 && a[1] == 0 && a[2] == 2,    // 192.0.2.0/24 TEST-NET-1
		a[0] == 198 && a[1]&0xfe == 18,           // 198.18.0.0/15 benchmarking
		a[0] == 198 && a[1] == 51 && a[2] == 100, // 198.51.100.0/24 TEST-NET-2
		a[0] == 203 && a[1] == 0 && a[2] == 113:  // 203.0.113.0/24 TEST-NET-3
		return true
	}
	return false
}

// userAgent sets a default User-Agent on requests that carry none.
type userAgent struct {
	next http.RoundTripper
	ua   string
}

func (t *userAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("User-Agent") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("User-Agent", t.ua)
	}
	return t.next.RoundTrip(r)
}

func (t *userAgent) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
