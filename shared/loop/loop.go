// Package loop keeps the gateway from feeding itself: the hop marker its outbound requests carry
// and its doors refuse, and its own hosts, which no outbound destination may name.
package loop

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/hookgate/hookgate/shared/apierr"
)

// Header is the hop marker: every request the gateway sends out (subscription deliveries, adapter
// callbacks, agent calls) carries "Hookgate-Hop: 1", and every inbound route refuses a request that
// carries it, whatever its value. A receiver that re-posts what it got with its headers copied
// cannot feed it back in; one that strips headers is stopped by the destination check (Hosts).
const (
	Header = "Hookgate-Hop"
	Value  = "1"
)

// headerKey is Header as API Gateway (payload 2.0) delivers it: lower-case.
const headerKey = "hookgate-hop"

// Marked reports whether request headers (API Gateway's map, any casing) carry the hop marker.
func Marked(headers map[string]string) bool {
	if _, ok := headers[headerKey]; ok {
		return true
	}
	for k := range headers {
		if strings.EqualFold(k, Header) {
			return true
		}
	}
	return false
}

// Refuse is the error of an inbound route for a request that carries the hop marker (403
// loop_detected), or nil. A route calls it before it reads the body: nothing is stored or queued.
func Refuse(headers map[string]string) error {
	if Marked(headers) {
		return apierr.New(apierr.LoopDetected, "the request carries the %s header: Hookgate sent it, and it does not take its own requests back", Header)
	}
	return nil
}

// Hosts are the gateway's own hosts: its API's execute-api host and custom domains, and in local
// mode its listen address. Whatever the list, every host under *.execute-api.*.amazonaws.com (and
// .amazonaws.com.cn) is the gateway's, or another API Gateway's that may forward to it. The zero
// value holds only that rule.
type Hosts struct {
	names map[string]bool  // normalized "name" (any port) and "name:port"
	addrs []netip.AddrPort // IP literals with a port (local mode's listen address)
	ips   []netip.Addr     // IP literals without a port
}

// ParseHosts reads comma-separated lists of host names, host:port pairs and IP literals (a URL is
// taken for its host). Empty items are skipped.
func ParseHosts(lists ...string) (Hosts, error) {
	h := Hosts{names: map[string]bool{}}
	for _, list := range lists {
		for _, item := range strings.Split(list, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			if strings.Contains(item, "://") {
				u, err := url.Parse(item)
				if err != nil || u.Host == "" {
					return Hosts{}, fmt.Errorf("own host %q is not a host name", item)
				}
				item = u.Host
			}
			host, port := splitHostPort(item)
			if host == "" || strings.ContainsAny(host, "/?#@ ") {
				return Hosts{}, fmt.Errorf("own host %q is not a host name", item)
			}
			n, err := strconv.ParseUint(port, 10, 16)
			if port != "" && err != nil {
				return Hosts{}, fmt.Errorf("own host %q has a bad port", item)
			}
			ip, err := netip.ParseAddr(host)
			switch {
			case err == nil && port == "":
				h.ips = append(h.ips, ip.WithZone("").Unmap())
			case err == nil:
				h.addrs = append(h.addrs, netip.AddrPortFrom(ip.WithZone("").Unmap(), uint16(n)))
			case port == "":
				h.names[host] = true
			default:
				h.names[host+":"+port] = true
			}
		}
	}
	return h, nil
}

// With returns the hosts and host too (a request's own domain name, say); host is ignored when
// it is not a host name.
func (h Hosts) With(host string) Hosts {
	more, err := ParseHosts(host)
	if err != nil {
		return h
	}
	maps.Copy(more.names, h.names)
	more.addrs = append(more.addrs, h.addrs...)
	more.ips = append(more.ips, h.ips...)
	return more
}

// OwnURL reports whether u names one of the hosts (its port defaulted from the scheme).
func (h Hosts) OwnURL(u *url.URL) bool {
	host, port := splitHostPort(u.Host)
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return h.own(host, port)
}

// OwnAddr reports whether address (host:port, as a dialer gets it before resolving) names one of
// the hosts.
func (h Hosts) OwnAddr(address string) bool {
	host, port := splitHostPort(address)
	return h.own(host, port)
}

// OwnIP reports whether a resolved address is one of the IP literals of the list: the check after
// DNS, so a name that resolves to the local API's own address:port is refused too.
func (h Hosts) OwnIP(ap netip.AddrPort) bool {
	ip := ap.Addr().WithZone("").Unmap()
	for _, own := range h.ips {
		if sameIP(own, ip) {
			return true
		}
	}
	for _, own := range h.addrs {
		if own.Port() == ap.Port() && sameIP(own.Addr(), ip) {
			return true
		}
	}
	return false
}

func (h Hosts) own(host, port string) bool {
	if host == "" {
		return false
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.WithZone("").Unmap()
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil { // no port: only the IP literals without one
			return slices.ContainsFunc(h.ips, func(own netip.Addr) bool { return sameIP(own, ip) })
		}
		return h.OwnIP(netip.AddrPortFrom(ip, uint16(n)))
	}
	if ExecuteAPI(host) {
		return true
	}
	return h.names[host] || h.names[host+":"+port]
}

// ExecuteAPI reports whether a normalized host name is an API Gateway endpoint:
// <id>.execute-api.<region>.amazonaws.com, its .amazonaws.com.cn form, and the VPC endpoint forms.
func ExecuteAPI(host string) bool {
	if !strings.HasSuffix(host, ".amazonaws.com") && !strings.HasSuffix(host, ".amazonaws.com.cn") {
		return false
	}
	labels := strings.Split(host, ".")
	for _, l := range labels[:len(labels)-2] {
		if l == "execute-api" {
			return true
		}
	}
	return false
}

// splitHostPort splits "host", "host:port", "[v6]" and "[v6]:port", and normalizes them: the
// host lower-case without brackets and trailing dots, the port without leading zeros.
func splitHostPort(s string) (host, port string) {
	host = s
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	host = strings.TrimRight(strings.ToLower(host), ".")
	if n, err := strconv.ParseUint(port, 10, 16); err == nil {
		port = strconv.FormatUint(n, 10) // 08443 is 8443
	}
	return host, port
}

// sameIP reports whether a connection to b reaches a listener on a: the same address, or, when
// either is unspecified (0.0.0.0, ::), both on this machine (a connect to 0.0.0.0 reaches
// loopback; a listener on 0.0.0.0 takes loopback connections).
func sameIP(a, b netip.Addr) bool {
	a, b = a.WithZone("").Unmap(), b.WithZone("").Unmap()
	if a == b {
		return true
	}
	local := func(ip netip.Addr) bool { return ip.IsLoopback() || ip.IsUnspecified() }
	return (a.IsUnspecified() || b.IsUnspecified()) && local(a) && local(b)
}
