package widget

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/apigw"
)

// Origins are the exact origins (scheme://host[:port]) whose pages may use the widget.
type Origins []string

// ParseOrigins checks a list of origins: each an http(s) origin with no path, query or wildcard.
// Every problem is reported.
func ParseOrigins(list []string) (Origins, error) {
	var out Origins
	var bad []string
	for _, o := range list {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.Contains(o, "*") {
			bad = append(bad, fmt.Sprintf("%q", o))
			continue
		}
		out = append(out, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("widget origins must be exact origins like https://www.example.com (no path, no wildcard): %s", strings.Join(bad, ", "))
	}
	return out, nil
}

// Allowed reports whether origin is one of o (origins compare case-insensitively).
func (o Origins) Allowed(origin string) bool {
	return origin != "" && slices.Contains(o, strings.ToLower(origin))
}

// Preflight answers: what a browser may send to the widget routes.
const (
	allowMethods = "GET, POST, OPTIONS"
	allowHeaders = "authorization, content-type, last-event-id"
	preflightAge = "600"
)

// originOf returns the request's Origin header.
func originOf(req *events.APIGatewayV2HTTPRequest) string {
	return strings.TrimSpace(apigw.Header(req, "origin"))
}

// cors returns the CORS headers for an allowed origin: only that origin, never "*".
func cors(origin string) map[string]string {
	return map[string]string{"access-control-allow-origin": origin, "vary": "Origin"}
}

// checkOrigin refuses a request whose Origin is not allowed; with required, a request without one
// too (a browser always sends Origin on POST). It returns the CORS headers for the response.
func (o Origins) check(req *events.APIGatewayV2HTTPRequest, required bool) (map[string]string, error) {
	origin := originOf(req)
	if origin == "" {
		if required {
			return nil, apierr.New(apierr.Forbidden, "origin not allowed: this route is for the widget on an allowed site")
		}
		return map[string]string{"vary": "Origin"}, nil
	}
	if !o.Allowed(origin) {
		return nil, apierr.New(apierr.Forbidden, "origin not allowed")
	}
	return cors(origin), nil
}
