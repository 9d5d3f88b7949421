package normalize

import (
	"math"
	"strings"
)

// RoleRoute maps a role pattern to an agent. The pattern is an exact role
// ("webhook.stripe.invoice_paid"), a prefix ending in ".*" ("webhook.stripe.*", "webhook.*"), or "*".
type RoleRoute struct {
	Pattern string `json:"pattern"`
	Agent   string `json:"agent"`
}

// ValidPattern reports whether p may be used as a RoleRoute pattern: "*", "webhook.*",
// "webhook.<source>.*" or "webhook.<source>.<slug>", where source is a valid source name and slug is
// 1 to MaxEventType of [a-z0-9_] (what Slug returns for an event type Normalize accepts).
func ValidPattern(p string) bool {
	if p == "*" || p == "webhook.*" {
		return true
	}
	rest, ok := strings.CutPrefix(p, "webhook.")
	if !ok {
		return false
	}
	source, typ, ok := strings.Cut(rest, ".")
	if !ok || !ValidSource(source) {
		return false
	}
	return typ == "*" || typ != "" && len(typ) <= MaxEventType && isSlug(typ)
}

// Route returns the route whose pattern selects role most specifically: a pattern equal to role
// beats any prefix, a longer "<prefix>.*" beats a shorter one, and "*" comes last; among equally
// specific patterns the first listed wins. A prefix pattern selects roles that start with the
// prefix and its dot and go on after it. Route does not validate patterns and allocates nothing.
func Route(routes []RoleRoute, role string) (RoleRoute, bool) {
	best, bestRank := -1, -1
	for i := range routes {
		if r := rank(routes[i].Pattern, role); r > bestRank {
			best, bestRank = i, r
		}
	}
	if best < 0 {
		return RoleRoute{}, false
	}
	return routes[best], true
}

// rank is how specifically pattern p selects role: -1 not at all, 0 for "*", the prefix length
// for "<prefix>.*", and math.MaxInt for role itself.
func rank(p, role string) int {
	switch {
	case p == "":
		return -1
	case p == role:
		return math.MaxInt
	case p == "*":
		return 0
	}
	if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasSuffix(prefix, ".") &&
		len(role) > len(prefix) && strings.HasPrefix(role, prefix) {
		return len(prefix)
	}
	return -1
}
