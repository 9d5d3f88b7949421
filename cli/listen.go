package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookgate/hookgate/cli/api"
	"github.com/hookgate/hookgate/shared/outbound"
)

// deliveryUserAgent is the User-Agent of a subscription's deliveries (shared/delivery.UserAgent,
// which a test holds equal: importing that package would link the AWS SDK into the command line).
const deliveryUserAgent = "Hookgate/0.1"

// forwardTimeout bounds one POST to the local endpoint, as a subscription's delivery is bounded.
const forwardTimeout = 15 * time.Second

func (a *app) follower(types string) *api.Follower {
	return &api.Follower{
		Client: a.client(), Types: types,
		OnRetry: func(err error, wait time.Duration) {
			fmt.Fprintf(a.io.Stderr, "stream interrupted (%s); resuming in %s\n", describe(err), wait.Round(time.Millisecond))
		},
	}
}

// describe names a network error without its URL (which can carry a token).
func describe(err error) string {
	if e, ok := api.IsAPI(err); ok {
		return e.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

func (a *app) listenCmd() *cobra.Command {
	var forward, types, since, secret string
	cmd := &cobra.Command{
		Use:   "listen --forward-to URL",
		Short: "Forward the workspace's events to a local URL, signed as a subscription's deliveries are",
		Long: `Follows the workspace's event stream and POSTs each event to --forward-to exactly as a
subscription would deliver it: the same envelope, the Standard Webhooks headers (webhook-id,
webhook-timestamp, webhook-signature) and X-Webhook-Signature, signed with a local secret that
listen prints (or --secret). One line per event: the local endpoint's status and latency.
A dropped connection resumes after the last event forwarded: none is lost or sent twice.
Ctrl-C stops and prints the --since cursor to resume from.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			u, err := url.Parse(forward)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usagef("--forward-to must be an http(s) URL")
			}
			// A generated secret is printed once, for the receiver; a given one is not printed back.
			shown := "the one given with --secret"
			if secret == "" {
				secret = outbound.NewSecret()
				shown = secret
			}
			signer, err := outbound.NewSigner(secret)
			if err != nil {
				return usagef("--secret: not a whsec_ secret")
			}
			fmt.Fprintf(a.io.Stderr, "Forwarding the events of %s to %s\nSigning secret: %s\n", a.cfg.API, forward, shown)
			hc := &http.Client{Timeout: forwardTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			out := a.out()
			cursor, err := a.follower(types).Follow(c.Context(), since, func(ev api.Event) error {
				var env struct {
					ID string `json:"id"`
				}
				if json.Unmarshal(ev.Data, &env) != nil || env.ID == "" {
					return fmt.Errorf("event %s is not an envelope", ev.Cursor)
				}
				// The forward finishes even after Ctrl-C, so the cursor printed is exact.
				ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Context()), forwardTimeout)
				res := outbound.Post(ctx, hc, deliveryUserAgent, outbound.Request{URL: forward, MsgID: env.ID, Body: ev.Data, Signer: signer})
				cancel()
				if a.json {
					line := map[string]any{"cursor": ev.Cursor, "id": env.ID, "type": ev.Type, "status": res.StatusCode,
						"latency_ms": res.Latency.Milliseconds()}
					if res.Err != "" {
						line["error"] = res.Err
					}
					out.value(line)
					return nil
				}
				answer := fmt.Sprint(res.StatusCode)
				if res.Err != "" {
					answer = res.Err
				}
				fmt.Fprintf(a.io.Stdout, "%s  %-6s %-24s %s  [%s] %s\n", time.Now().Format("15:04:05"), ev.Cursor, ev.Type, env.ID,
					answer, res.Latency.Round(time.Millisecond))
				return nil
			})
			a.printResume(c, "listen --forward-to "+shellQuote(forward), types, cursor)
			return err
		},
	}
	cmd.Flags().StringVar(&forward, "forward-to", "", "the local URL events are POSTed to (required)")
	cmd.Flags().StringVar(&types, "types", "", "only these event types: run.*,message.sent (comma-separated)")
	cmd.Flags().StringVar(&since, "since", "now", "now, 0 (the whole log) or the cursor to resume after")
	cmd.Flags().StringVar(&secret, "secret", "", "the whsec_ secret to sign with (default: a new one, printed)")
	_ = cmd.MarkFlagRequired("forward-to")
	return cmd
}

func (a *app) printResume(c *cobra.Command, command, types, cursor string) {
	if cursor == "" || cursor == "now" {
		return
	}
	extra := ""
	if types != "" {
		extra = " --types " + shellQuote(types)
	}
	fmt.Fprintf(a.io.Stderr, "Stopped at cursor %s. Resume with: hookgate %s%s --since %s\n", cursor, command, extra, cursor)
}

// shellQuote quotes s for a POSIX shell when it holds anything but plain characters.
func shellQuote(s string) string {
	plain := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:,=@%+", r))
	}) < 0
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (a *app) tailCmd() *cobra.Command {
	var types, since string
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print the workspace's live event stream (--json: one envelope per line)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			out := a.out()
			cursor, err := a.follower(types).Follow(c.Context(), since, func(ev api.Event) error {
				if a.json {
					// One line per event: data that is not one JSON value is printed as a string.
					var event any = json.RawMessage(ev.Data)
					if !json.Valid(ev.Data) {
						event = string(ev.Data)
					}
					out.value(map[string]any{"cursor": ev.Cursor, "event": event})
					return nil
				}
				var env struct {
					CreatedAt string          `json:"created_at"`
					Data      json.RawMessage `json:"data"`
				}
				_ = json.Unmarshal(ev.Data, &env)
				at := env.CreatedAt
				if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
					at = t.Local().Format("15:04:05.000")
				}
				fmt.Fprintf(a.io.Stdout, "%s  %-6s %-24s %s\n", at, ev.Cursor, ev.Type, summary(env.Data))
				return nil
			})
			a.printResume(c, "tail", types, cursor)
			return err
		},
	}
	cmd.Flags().StringVar(&types, "types", "", "only these event types: run.*,message.sent (comma-separated)")
	cmd.Flags().StringVar(&since, "since", "now", "now, 0 (the whole log) or the cursor to resume after")
	return cmd
}

// summary is a short line of an event's data: its best-known fields first.
func summary(data json.RawMessage) string {
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return string(data)
	}
	var parts []string
	for _, k := range []string{"run_id", "thread_id", "status", "text", "error", "subscription_id", "channel"} {
		if v, ok := m[k]; ok && v != nil && v != "" {
			s := cell(v)
			if len(s) > 60 {
				s = s[:57] + "..."
			}
			parts = append(parts, k+"="+s)
		}
	}
	if len(parts) == 0 {
		s := string(data)
		if len(s) > 100 {
			s = s[:97] + "..."
		}
		return s
	}
	return strings.Join(parts, " ")
}
