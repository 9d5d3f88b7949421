package cli

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookgate/hookgate/cli/api"
	"github.com/hookgate/hookgate/shared/verify"
)

func (a *app) sendCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "send",
		Short: "Post a message or a provider-shaped webhook, signed for its scheme",
		Long: `Posts to the gateway's inbound doors as a real sender would, so a source can be tested
without its provider: 'send generic' and 'send trigger' post a message that starts a run,
'send webhook' posts a provider-shaped payload to /v1/webhooks/generic/{workspace}?source=…
signed with the source's scheme and secret.`,
	}
	cmd.AddCommand(a.sendGenericCmd(), a.sendTriggerCmd(), a.sendWebhookCmd())
	return cmd
}

type message struct {
	text, channel, externalID, user, eventID string
}

func messageFlags(cmd *cobra.Command, m *message) {
	cmd.Flags().StringVar(&m.text, "text", "", "the message's text (required)")
	cmd.Flags().StringVar(&m.channel, "channel", "cli", "the channel (with --external-id, picks the thread)")
	cmd.Flags().StringVar(&m.externalID, "external-id", "cli-user", "the sender's id on the channel")
	cmd.Flags().StringVar(&m.user, "user", "", "the user's name")
	cmd.Flags().StringVar(&m.eventID, "event-id", "", "an idempotency key: the same one again starts no second run")
	_ = cmd.MarkFlagRequired("text")
}

func (m message) body() []byte {
	b := map[string]any{"channel": m.channel, "external_id": m.externalID, "text": m.text}
	if m.user != "" {
		b["user"] = m.user
	}
	if m.eventID != "" {
		b["event_id"] = m.eventID
	}
	raw, _ := json.Marshal(b)
	return raw
}

func (a *app) sendGenericCmd() *cobra.Command {
	var m message
	var secret string
	var sign bool
	cmd := &cobra.Command{
		Use:   "generic --text TEXT",
		Short: "POST /v1/inbound/generic with the stack's inbound secret (HOOKGATE_INBOUND_SECRET)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			scheme := verify.SharedSecret
			if sign {
				scheme = verify.HMACSHA256
			}
			return a.post(c, "/v1/inbound/generic", scheme, first(secret, a.cfg.InboundSecret), m.body(), "")
		},
	}
	messageFlags(cmd, &m)
	cmd.Flags().StringVar(&secret, "secret", "", "the inbound secret (default: HOOKGATE_INBOUND_SECRET, the profile's, or make dev's)")
	cmd.Flags().BoolVar(&sign, "sign", false, "sign the body (X-Hookgate-Signature: sha256=…) instead of sending the secret")
	return cmd
}

func (a *app) sendTriggerCmd() *cobra.Command {
	var m message
	var secret, scheme string
	cmd := &cobra.Command{
		Use:   "trigger --text TEXT",
		Short: "POST /v1/integrations/trigger as Zapier or Make do (HMAC signature or Bearer)",
		Long: `Posts a message to /v1/integrations/trigger. Without --workspace (or with the default
workspace) the stack's inbound secret proves it; for another workspace, pass its source 'trigger's
secret and scheme (hmac_sha256 or bearer).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s := verify.Scheme(scheme)
			if s != verify.HMACSHA256 && s != verify.Bearer {
				return usagef("--scheme must be hmac_sha256 or bearer")
			}
			q := url.Values{}
			if a.cfg.Workspace != DefaultWorkspace {
				q.Set("workspace_id", a.cfg.Workspace)
			}
			return a.post(c, api.Path(q, "/v1/integrations/trigger"), s, first(secret, a.cfg.InboundSecret), m.body(), "")
		},
	}
	messageFlags(cmd, &m)
	cmd.Flags().StringVar(&secret, "secret", "", "the secret (default: the inbound secret)")
	cmd.Flags().StringVar(&scheme, "scheme", string(verify.HMACSHA256), "hmac_sha256 (X-Hookgate-Signature) or bearer (Authorization)")
	return cmd
}

func (a *app) sendWebhookCmd() *cobra.Command {
	var source, scheme, secret, data, eventType, header, id string
	cmd := &cobra.Command{
		Use:   "webhook --source NAME --secret SECRET",
		Short: "POST a provider-shaped webhook to /v1/webhooks/generic/{workspace}?source=NAME, signed for its scheme",
		Long: `Posts a webhook as its provider would: the body (--data, or a sample shaped like the
provider's) signed with the source's scheme and secret. --scheme defaults to the source's name
when that is a scheme (stripe, github, slack, standard_webhooks, hmac_sha256, shared_secret, bearer).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s := verify.Scheme(first(scheme, source))
			if !known(s) {
				return usagef("--scheme: one of %s", schemeList())
			}
			body, err := readData(data, a.io.Stdin)
			if err != nil {
				return err
			}
			if body == nil {
				body = sample(s)
			}
			q := url.Values{"source": {source}, "event_type": {eventType}}
			path := api.Path(q, "/v1/webhooks/generic", a.cfg.Workspace)
			return a.post(c, path, s, secret, body, header, id)
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "the workspace's source (required)")
	cmd.Flags().StringVar(&scheme, "scheme", "", "its scheme (default: the source's name, when that is a scheme)")
	cmd.Flags().StringVar(&secret, "secret", "", "the source's secret (required unless the scheme is none)")
	cmd.Flags().StringVar(&data, "data", "", "the body: JSON, @file, or - for stdin (default: a sample shaped like the provider's)")
	cmd.Flags().StringVar(&eventType, "event-type", "", "?event_type=: the role's type (default: the payload's event, type or action)")
	cmd.Flags().StringVar(&header, "header", "", "shared_secret and hmac_sha256: the source's own header")
	cmd.Flags().StringVar(&id, "id", "", "the delivery id (webhook-id, X-GitHub-Delivery; default: a new one)")
	_ = cmd.MarkFlagRequired("source")
	return cmd
}

// post sends body signed for scheme to path and prints the answer.
func (a *app) post(c *cobra.Command, path string, s verify.Scheme, secret string, body []byte, header string, id ...string) error {
	msgID := "msg_" + randomHex(12)
	if len(id) > 0 && id[0] != "" {
		msgID = id[0]
	}
	fields, err := verify.Sign(s, secret, body, msgID, time.Now(), verify.Options{Header: header})
	if err != nil {
		return usagef("%v", err)
	}
	h := http.Header{}
	for _, f := range fields {
		h.Set(f.Name, f.Value)
	}
	resp, err := a.client().Do(c.Context(), api.Request{Method: http.MethodPost, Path: path, Body: body, Header: h, NoKey: true})
	if err != nil {
		return err
	}
	if a.json {
		a.out().raw(resp.Body)
		return nil
	}
	var obj map[string]any
	_ = json.Unmarshal(resp.Body, &obj)
	fmt.Fprintf(a.io.Stdout, "%d %s\n", resp.Status, http.StatusText(resp.Status))
	a.out().record(obj, "thread_id", "message_id", "run_id", "accepted", "role")
	return nil
}

func known(s verify.Scheme) bool {
	for _, k := range verify.Schemes() {
		if k == s {
			return true
		}
	}
	return false
}

func schemeList() string {
	var names []string
	for _, s := range verify.Schemes() {
		names = append(names, string(s))
	}
	return strings.Join(names, ", ")
}

// readData reads --data: JSON as given, @file, or - for stdin; nil when empty.
func readData(data string, stdin io.Reader) ([]byte, error) {
	switch {
	case data == "":
		return nil, nil
	case data == "-":
		return io.ReadAll(stdin)
	case strings.HasPrefix(data, "@"):
		b, err := os.ReadFile(data[1:])
		if err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
		return b, nil
	}
	return []byte(data), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// randomNumber is a fresh positive id of up to 48 bits, as providers number their objects.
func randomNumber() int64 {
	var b [8]byte
	rand.Read(b[2:])
	return int64(binary.BigEndian.Uint64(b[:]))
}

// sample is a body shaped like the provider's own, with fresh ids so it is never a duplicate.
func sample(s verify.Scheme) []byte {
	now := time.Now().Unix()
	var v any
	switch s {
	case verify.Stripe:
		v = map[string]any{"id": "evt_" + randomHex(12), "object": "event", "type": "payment_intent.succeeded", "created": now,
			"livemode": false, "data": map[string]any{"object": map[string]any{"id": "pi_" + randomHex(12), "object": "payment_intent",
				"amount": 2000, "currency": "usd", "status": "succeeded"}}}
	case verify.GitHub:
		v = map[string]any{"action": "opened", "issue": map[string]any{"id": randomNumber(), "number": 1,
			"title": "Sent by hookgate send " + randomHex(4), "state": "open"},
			"repository": map[string]any{"full_name": "octo-org/hello-world"}, "sender": map[string]any{"login": "octocat"}}
	case verify.Slack:
		v = map[string]any{"type": "event_callback", "team_id": "T0001", "api_app_id": "A0001", "event_id": "Ev" + strings.ToUpper(randomHex(8)),
			"event_time": now, "event": map[string]any{"type": "message", "channel": "C0001", "user": "U0001",
				"text": "hello from hookgate send", "ts": fmt.Sprintf("%d.000100", now)}}
	default:
		v = map[string]any{"id": "evt_" + randomHex(12), "type": "test.sent", "created_at": time.Now().UTC().Format(time.RFC3339),
			"data": map[string]any{"text": "hello from hookgate send"}}
	}
	raw, _ := json.Marshal(v)
	return raw
}
