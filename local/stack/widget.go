package stack

import (
	"maps"
	"net"
	"slices"
	"strings"

	"github.com/hookgate/hookgate/local/template"
)

// originParam lists the sites whose pages may use the web widget.
const originParam = "WidgetAllowedOrigins"

// withOwnOrigin returns params with the stack's own origin added to the widget's allowed origins,
// so that its demo page works whatever else is allowed. On AWS the parameter's default allows no
// site.
func withOwnOrigin(tpl *template.Template, params map[string]string, addr string) map[string]string {
	if _, declared := tpl.Parameters[originParam]; !declared {
		return params
	}
	own := []string{"http://" + addr}
	if host, port, err := net.SplitHostPort(addr); err == nil && (host == "127.0.0.1" || host == "::1") {
		own = append(own, "http://localhost:"+port)
	}
	var origins []string
	for _, o := range strings.Split(params[originParam], ",") {
		if o = strings.TrimSpace(o); o != "" {
			origins = append(origins, o)
		}
	}
	for _, o := range own {
		if !slices.Contains(origins, o) {
			origins = append(origins, o)
		}
	}
	out := maps.Clone(params)
	if out == nil {
		out = map[string]string{}
	}
	out[originParam] = strings.Join(origins, ",")
	return out
}
