package stack

import (
	"maps"
	"net"
	"slices"
	"strings"

	"github.com/hookgate/hookgate/local/template"
)

// Parameters that name the local API's own address, which is only known once it listens.
const (
	hostsParam  = "CustomDomains"        // the API's other host names: no subscription may name them
	originParam = "WidgetAllowedOrigins" // the sites whose pages may use the web widget
)

// LocalAPIID is what !Ref of an HTTP API answers locally, in place of API Gateway's id: its
// execute-api host names nothing that runs here. The local API's own address reaches the
// functions through hostsParam instead (withOwnAddress).
const LocalAPIID = "local"

// withOwnAddress returns params with the local API's address added to two list parameters: the
// API's own host names (on AWS the execute-api host is the API's own, here the listen address is,
// and a subscription to it would feed the gateway itself), and the widget's allowed origins (so
// that its demo page works whatever else is allowed; on AWS the default allows no site).
func withOwnAddress(tpl *template.Template, params map[string]string, addr string) map[string]string {
	params = addToList(tpl, params, hostsParam, "", addr)
	return addToList(tpl, params, originParam, "http://", addr)
}

// addToList adds prefix+addr (and prefix+localhost:port for a loopback address) to the
// comma-separated parameter name, if the template declares it.
func addToList(tpl *template.Template, params map[string]string, name, prefix, addr string) map[string]string {
	if _, declared := tpl.Parameters[name]; !declared {
		return params
	}
	own := []string{prefix + addr}
	if host, port, err := net.SplitHostPort(addr); err == nil && (host == "127.0.0.1" || host == "::1") {
		own = append(own, prefix+"localhost:"+port)
	}
	var items []string
	for _, v := range strings.Split(params[name], ",") {
		if v = strings.TrimSpace(v); v != "" {
			items = append(items, v)
		}
	}
	for _, v := range own {
		if !slices.Contains(items, v) {
			items = append(items, v)
		}
	}
	out := maps.Clone(params)
	if out == nil {
		out = map[string]string{}
	}
	out[name] = strings.Join(items, ",")
	return out
}
