package manage

import (
	"net/url"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/loop"
)

func TestCheckURL(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("a", MaxURLLen-len("https://example.com/"))
	tests := []struct {
		url       string
		allowHTTP bool
		want      string // "" = valid, else part of the message
	}{
		{"https://example.com/hook", false, ""},
		{"https://example.com:8443/hook?x=1", false, ""},
		{"HTTPS://EXAMPLE.COM/", false, ""},
		{"https://[2001:db8::1]/hook", false, ""},
		{long, false, ""},
		{long + "a", false, "at most 2048"},
		{"", false, "url is required"},
		{"/relative", false, "absolute"},
		{"example.com/hook", false, "absolute"},
		{"http://example.com/hook", false, "must use https"},
		{"http://example.com/hook", true, ""},
		{"ftp://example.com/x", false, "must use https"},
		{"ftp://example.com/x", true, "http or https"},
		{"https:///path", false, "host"},
		{"https:opaque", false, "host"},
		{"https://:443/x", false, "host"},
		{"https://user:pass@example.com/", false, "user or password"},
		{"https://user@example.com/", false, "user or password"},
		{"https://exa mple.com/", false, "absolute"},
		{"https://example.com:port/", false, "absolute"},
		// The gateway's own API: its execute-api host (and every other), its custom domain, and
		// in local mode its listen address.
		{"https://abc123.execute-api.us-east-1.amazonaws.com/v1/inbound/generic", false, "own API"},
		{"https://ABC123.EXECUTE-API.us-east-1.amazonaws.com./x", false, "own API"},
		{"https://zzz.execute-api.eu-west-1.amazonaws.com/prod", false, "own API"},
		{"https://hooks.example.org/v1/webhooks/generic/ws", false, "own API"},
		{"https://Hooks.Example.Org.:443/x", false, "own API"},
		{"https://api.hooks.example.org/x", false, ""},
		{"http://127.0.0.1:3000/v1/inbound/generic", true, "own API"},
		{"http://localhost:3000/x", true, "own API"},
		{"http://[::ffff:127.0.0.1]:3000/x", true, "own API"},
		{"http://127.0.0.1:3001/x", true, ""},
	}
	own, err := loop.ParseHosts("abc123.execute-api.us-east-1.amazonaws.com,hooks.example.org,127.0.0.1:3000,localhost:3000")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		err := checkURL(tt.url, tt.allowHTTP, own)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("checkURL(%.40q, %v) = %v", tt.url, tt.allowHTTP, err)
		case tt.want != "" && (apierr.CodeOf(err) != apierr.Invalid || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "url")):
			t.Errorf("checkURL(%.40q, %v) = %v, want invalid naming url and %q", tt.url, tt.allowHTTP, err, tt.want)
		}
	}
}

func TestDecodeBody(t *testing.T) {
	type req struct {
		URL    string   `json:"url"`
		Events []string `json:"events"`
		N      *int64   `json:"overlap_seconds"`
	}
	tests := []struct{ body, want string }{
		{`{"url":"x","events":["a"]}`, ""},
		{` {"url":"x"} `, ""},
		{``, "body must be a JSON object"},
		{`{`, "not valid JSON"},
		{`{"url":}`, "not valid JSON"},
		{`[]`, "body must be a JSON object"},
		{`"x"`, "body must be a JSON object"},
		{`{"url":1}`, "url must be a string"},
		{`{"events":"run.*"}`, "events must be an array of strings"},
		{`{"events":["a",1]}`, "events must be an array of strings"},
		{`{"overlap_seconds":1.5}`, "overlap_seconds must be an integer"},
		{`{"overlap_seconds":"60"}`, "overlap_seconds must be an integer"},
		{`{"url":"x","extra":true}`, `unknown field "extra"`},
		{`{"url":"x"}{"url":"y"}`, "single JSON object"},
		{`{"url":"x"} 1`, "single JSON object"},
	}
	for _, tt := range tests {
		var v req
		err := decodeBody([]byte(tt.body), &v, false)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("decodeBody(%s) = %v", tt.body, err)
		case tt.want != "" && (apierr.CodeOf(err) != apierr.Invalid || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("decodeBody(%s) = %v, want %q", tt.body, err, tt.want)
		}
	}
	var v req
	if err := decodeBody([]byte("  "), &v, true); err != nil {
		t.Errorf("optional empty body: %v", err)
	}
}

// FuzzCreateWebhookBody runs a create body through decoding and validation: no panic, and what is
// accepted is what the API promises to store.
func FuzzCreateWebhookBody(f *testing.F) {
	for _, seed := range []string{
		`{"url":"https://example.com/h","events":["run.*","message.received"],"description":"d"}`,
		`{"url":"http://u:p@x/","events":["*"]}`,
		`{"url":"https://x","events":[],"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`,
		`{"url":"https://x","events":["webhook.a.b","webhook.a.b"]}`,
		`{`, `null`, `{"events":[1]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in struct {
			URL         string   `json:"url"`
			Events      []string `json:"events"`
			Secret      *string  `json:"secret"`
			Description string   `json:"description"`
		}
		if err := decodeBody(body, &in, false); err != nil {
			if apierr.CodeOf(err) != apierr.Invalid {
				t.Fatalf("decode error %v is not invalid_request", err)
			}
			return
		}
		if checkURL(in.URL, false, loop.Hosts{}) == nil {
			u, err := url.Parse(in.URL)
			if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.User != nil || len(in.URL) > MaxURLLen {
				t.Fatalf("accepted url %q", in.URL)
			}
		}
		if evs, err := checkEvents(in.Events); err == nil {
			if len(evs) == 0 || len(evs) > MaxEvents {
				t.Fatalf("accepted %d events", len(evs))
			}
			seen := map[string]bool{}
			for _, e := range evs {
				if !ValidPattern(e) || seen[e] {
					t.Fatalf("accepted events %q", evs)
				}
				seen[e] = true
			}
		}
		if in.Secret != nil && checkSecret(*in.Secret) == nil && !strings.HasPrefix(*in.Secret, "whsec_") {
			t.Fatalf("accepted secret without prefix")
		}
	})
}
