package stack

import (
	"maps"
	"net"
	"slices"
	"strings"

	"github.com/hookgate/hookgate/local/template"
)

// hostsParam lists the API's other host names, which no subscription or delivery may name.
const hostsParam = "CustomDomains"

// LocalAPIID is what !Ref of an HTTP API answers locally, in place of API Gateway's id: its
// execute-api host names nothing that runs here. The local API's own address reaches the
// functions through hostsParam instead (withOwnHost).
const LocalAPIID = "local"

// withOwnHost returns params with the local API's own host:port (and localhost:port for a
// loopback address) added to the API's host names: on AWS the execute-api host is the API's own,
// here the listen address is, and a subscription to it would feed the gateway itself.
func withOwnHost(tpl *template.Template, params map[string]string, addr string) map[string]string {
	if _, declared := tpl.Parameters[hostsParam]; !declared {
		return params
	}
	own := []string{addr}
	if host, port, err := net.SplitHostPort(addr); err == nil && (host == "127.0.0.1" || host == "::1") {
		own = append(own, "localhost:"+port)
	}
	var hosts []string
	for _, h := range strings.Split(params[hostsParam], ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	for _, h := range own {
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	out := maps.Clone(params)
	if out == nil {
		out = map[string]string{}
	}
	out[hostsParam] = strings.Join(hosts, ",")
	return out
}
