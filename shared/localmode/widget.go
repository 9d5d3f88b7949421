package localmode

import (
	"maps"
	"net"

	"github.com/hookgate/hookgate/shared/template"
)

// originParam lists the sites whose pages may use the web widget.
const originParam = "WidgetAllowedOrigins"

// withOwnOrigin returns params with the widget allowed on the stack's own origin (so its demo page
// works), unless the caller set the origins. On AWS the parameter's default allows no site.
func withOwnOrigin(tpl *template.Template, params map[string]string, addr string) map[string]string {
	if _, declared := tpl.Parameters[originParam]; !declared {
		return params
	}
	if _, set := params[originParam]; set {
		return params
	}
	out := maps.Clone(params)
	if out == nil {
		out = map[string]string{}
	}
	origins := "http://" + addr
	if host, port, err := net.SplitHostPort(addr); err == nil && (host == "127.0.0.1" || host == "::1") {
		origins += ",http://localhost:" + port
	}
	out[originParam] = origins
	return out
}
