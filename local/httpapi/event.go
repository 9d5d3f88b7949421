package httpapi

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// rawPathOf turns the request's escaped path into an HTTP API rawPath: every percent escape is
// decoded except %25, which stays as is, so "a%252Eb" arrives as "a%252Eb" and "a%20b" as "a b".
func rawPathOf(escaped string) string {
	if !strings.Contains(escaped, "%") {
		return escaped
	}
	var b strings.Builder
	b.Grow(len(escaped))
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c == '%' && i+2 < len(escaped) && isHex(escaped[i+1]) && isHex(escaped[i+2]) {
			v := unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			if v == '%' {
				b.WriteString(escaped[i : i+3])
			} else {
				b.WriteByte(v)
			}
			i += 2
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// requestHeaders returns the event's headers (lower-case names, repeated headers joined with
// ",") and its cookies (the Cookie headers split into cookies, the header itself left out), plus
// the headers API Gateway adds: host, content-length, x-amzn-trace-id and x-forwarded-*.
func requestHeaders(r *http.Request, body []byte, now time.Time) (map[string]string, []string) {
	headers := make(map[string]string, len(r.Header)+6)
	var cookies []string
	for name, values := range r.Header {
		lname := strings.ToLower(name)
		if lname == "cookie" {
			for _, v := range values {
				for c := range strings.SplitSeq(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		v := strings.Join(values, ",")
		if prev, ok := headers[lname]; ok {
			v = prev + "," + v
		}
		headers[lname] = v
	}
	headers["host"] = r.Host
	if len(body) > 0 {
		headers["content-length"] = strconv.Itoa(len(body))
	}
	if _, ok := headers["x-amzn-trace-id"]; !ok {
		headers["x-amzn-trace-id"] = traceID(now)
	}
	ip := sourceIP(r)
	if prev := headers["x-forwarded-for"]; prev != "" {
		headers["x-forwarded-for"] = prev + ", " + ip
	} else {
		headers["x-forwarded-for"] = ip
	}
	proto, port := "http", "80"
	if r.TLS != nil {
		proto, port = "https", "443"
	}
	if p := localPort(r); p != "" {
		port = p
	}
	headers["x-forwarded-proto"] = proto
	headers["x-forwarded-port"] = port
	return headers, cookies
}

// traceID returns an X-Ray trace header like the one API Gateway adds.
func traceID(now time.Time) string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return fmt.Sprintf("Root=1-%08x-%s", now.Unix(), hex.EncodeToString(b[:]))
}

// localPort is the port the request came in on: the listener's, else the Host header's.
func localPort(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, p, err := net.SplitHostPort(a.String()); err == nil {
			return p
		}
	}
	if _, p, err := net.SplitHostPort(r.Host); err == nil {
		return p
	}
	return ""
}

// sourceIP is the address of the client connected to the gateway.
func sourceIP(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// domainPrefix is the first label of the host name ("id" for id.execute-api...), or the whole
// address for an IP host.
func domainPrefix(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if net.ParseIP(host) != nil {
		return host
	}
	first, _, _ := strings.Cut(host, ".")
	return first
}

// queryParameters decodes a raw query string; repeated names are joined with ",". It returns nil
// for an empty query, which the event leaves out.
func queryParameters(raw string) map[string]string {
	if raw == "" {
		return nil
	}
	var params map[string]string
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, v = queryUnescape(k), queryUnescape(v)
		if params == nil {
			params = map[string]string{}
		}
		if prev, ok := params[k]; ok {
			v = prev + "," + v
		}
		params[k] = v
	}
	return params
}

func queryUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// encodeBody returns the event body. HTTP APIs deliver the body as text only for text/*,
// application/json, application/xml and application/javascript; any other content type, or
// none (form posts included), arrives base64-encoded. A text type whose body is not valid
// UTF-8 is base64-encoded too, so no byte is lost.
func encodeBody(contentType string, body []byte) (string, bool) {
	if len(body) == 0 {
		return "", false
	}
	if isTextContentType(contentType) && utf8.Valid(body) {
		return string(body), false
	}
	return base64.StdEncoding.EncodeToString(body), true
}

func isTextContentType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	switch mt {
	case "application/json", "application/xml", "application/javascript":
		return true
	}
	return strings.HasPrefix(mt, "text/")
}
