package verify

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Field is one header of a signed request, its name as the provider writes it.
type Field struct {
	Name, Value string
}

// Sign returns the headers a sender of scheme s puts on a request with body, signed with secret:
// what the Verifier of the same scheme and secret accepts. id is the delivery id of the schemes
// that carry one (standard_webhooks' webhook-id, GitHub's X-GitHub-Delivery), now the signed time
// of the schemes that sign one; o.Header names the header of shared_secret and hmac_sha256.
// Clients use it to test a source without its provider (the hookgate command line).
func Sign(s Scheme, secret string, body []byte, id string, now time.Time, o Options) ([]Field, error) {
	if s == None {
		return nil, nil
	}
	if secret == "" {
		return nil, fmt.Errorf("verify: scheme %s needs a secret", s)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	sum := func(key []byte, parts ...string) []byte {
		m := hmac.New(sha256.New, key)
		for _, p := range parts {
			m.Write([]byte(p))
		}
		m.Write(body)
		return m.Sum(nil)
	}
	switch s {
	case SharedSecret:
		return []Field{{cmp.Or(o.Header, "X-Hookgate-Inbound-Secret"), secret}}, nil
	case HMACSHA256:
		return []Field{{cmp.Or(o.Header, "X-Hookgate-Signature"), "sha256=" + hex.EncodeToString(sum([]byte(secret)))}}, nil
	case Telegram:
		return []Field{{"X-Telegram-Bot-Api-Secret-Token", secret}}, nil
	case Bearer:
		return []Field{{"Authorization", "Bearer " + secret}}, nil
	case GitHub:
		f := []Field{{"X-Hub-Signature-256", "sha256=" + hex.EncodeToString(sum([]byte(secret)))}}
		if id != "" {
			f = append(f, Field{"X-GitHub-Delivery", id})
		}
		return f, nil
	case StandardWebhooks:
		if id == "" || strings.ContainsAny(id, ".\r\n") {
			return nil, fmt.Errorf("verify: scheme %s needs a webhook id without '.'", s)
		}
		key, err := decodeWhsec(secret)
		if err != nil {
			return nil, fmt.Errorf("verify: scheme %s: secret: %w", s, err)
		}
		return []Field{
			{"Webhook-Id", id}, {"Webhook-Timestamp", ts},
			{"Webhook-Signature", "v1," + base64.StdEncoding.EncodeToString(sum(key, id, ".", ts, "."))},
		}, nil
	case Stripe:
		return []Field{{"Stripe-Signature", "t=" + ts + ",v1=" + hex.EncodeToString(sum([]byte(secret), ts, "."))}}, nil
	case Slack:
		return []Field{
			{"X-Slack-Request-Timestamp", ts},
			{"X-Slack-Signature", "v0=" + hex.EncodeToString(sum([]byte(secret), "v0:", ts, ":"))},
		}, nil
	}
	return nil, fmt.Errorf("verify: unknown scheme %q", s)
}

// Schemes lists every scheme, in the order people meet them.
func Schemes() []Scheme {
	return []Scheme{StandardWebhooks, Stripe, GitHub, Slack, HMACSHA256, SharedSecret, Bearer, Telegram, None}
}
