package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hookgate/hookgate/cli/api"
)

// kind is how a flag's value goes into a JSON body.
type kind int

const (
	str kind = iota
	num
	boolean
	list // comma-separated → array of strings
)

// field is one body field settable by a flag (--reply-hosts → reply_hosts).
type field struct {
	flag  string
	kind  kind
	usage string
}

func (f field) key() string { return strings.ReplaceAll(f.flag, "-", "_") }

// resource is one collection of the management API and the verbs it supports.
type resource struct {
	name, short             string
	path                    string // /v1/webhooks
	ident                   string // "id" or "name": the positional argument of show, update, …
	columns                 []string
	workspaceQ              bool // takes ?workspace_id= (the admin key managing another workspace)
	paginated               bool
	create                  []field
	required                []string // create's required flags
	update                  []field  // nil: no update
	rotate                  []field
	rotatePath              string // "" : no rotate
	test, retire, del, show bool
}

func resources() []resource {
	secret := field{"secret", str, "the secret (generated when omitted)"}
	overlap := field{"overlap-seconds", num, "how long the previous secret keeps working (default 24 h)"}
	return []resource{
		{
			name: "webhooks", short: "Outbound subscriptions: endpoints the workspace's events are delivered to",
			path: "/v1/webhooks", ident: "id", paginated: true,
			columns: []string{"id", "url", "events", "status", "consecutive_failures", "created_at"},
			create: []field{{"url", str, "the endpoint URL"}, {"events", list, "event filters: run.completed,run.*,* (comma-separated)"},
				secret, {"description", str, "a note"}, {"fifo", boolean, "deliver one at a time, in the order of the events (set only at creation)"}},
			required: []string{"url", "events"},
			update: []field{{"url", str, "the endpoint URL"}, {"events", list, "event filters (comma-separated)"},
				{"description", str, "a note"}, {"status", str, "active (re-enables) or disabled"}},
			rotate: []field{secret, overlap}, rotatePath: "rotate-secret", test: true, del: true, show: true,
		},
		{
			name: "sources", short: "Inbound sources: how each sender proves itself (scheme and secrets)",
			path: "/v1/sources", ident: "name", workspaceQ: true,
			columns: []string{"name", "scheme", "header", "active_secret_count", "created_at"},
			create: []field{{"name", str, "the source's name (?source= of the webhook door)"},
				{"scheme", str, "standard_webhooks, stripe, github, slack, hmac_sha256, shared_secret, bearer, telegram or none"},
				{"secret", str, "the secret (generated when omitted, except stripe and slack)"},
				{"header", str, "shared_secret and hmac_sha256: another header"},
				{"tolerance-seconds", num, "timestamped schemes: the tolerance (default 300)"},
				{"bot-token", str, "telegram: the bot that answers this source's chats"}},
			required: []string{"name", "scheme"},
			rotate:   []field{{"secret", str, "the new secret (generated when omitted)"}, overlap}, rotatePath: "rotate",
			retire: true, del: true, show: true,
		},
		{
			name: "keys", short: "Workspace API keys (hgk_…, shown once)",
			path: "/v1/api-keys", ident: "id", workspaceQ: true,
			columns:  []string{"id", "prefix", "name", "workspace_id", "created_at"},
			create:   []field{{"name", str, "a name for the key"}, {"workspace-id", str, "admin key: the workspace of the new key"}},
			required: []string{"name"}, del: true,
		},
		{
			name: "agents", short: "The workspace's agents (webhook, openai, echo)",
			path: "/v1/agents", ident: "name", workspaceQ: true,
			columns: []string{"name", "type", "url", "base_url", "model", "has_secret", "seeded"},
			create: []field{{"name", str, "the agent's name"}, {"type", str, "webhook, openai or echo"},
				{"url", str, "webhook: the agent's URL"}, {"secret", str, "webhook: its whsec_ secret (generated when omitted)"},
				{"base-url", str, "openai: the API base URL"}, {"model", str, "openai: the model"},
				{"api-key", str, "openai: the API key"}, {"system", str, "openai: the system prompt"},
				{"max-history", num, "openai: messages of history sent"}, {"timeout-seconds", num, "the call's timeout"}},
			required: []string{"name", "type"},
			update: []field{{"url", str, "webhook: the agent's URL"}, {"base-url", str, "openai: the API base URL"},
				{"model", str, "openai: the model"}, {"system", str, "openai: the system prompt"},
				{"max-history", num, "openai: messages of history sent"}, {"timeout-seconds", num, "the call's timeout"}},
			rotate:     []field{{"secret", str, "webhook: the new whsec_ secret (generated when omitted)"}, {"api-key", str, "openai: the new API key"}},
			rotatePath: "rotate", del: true, show: true,
		},
		{
			name: "adapters", short: "Webhook adapters: /webhook/{name} routes for your systems",
			path: "/v1/adapters", ident: "name", workspaceQ: true,
			columns: []string{"name", "agent", "reply_hosts", "max_in_flight", "active_secret_count"},
			create: append([]field{{"name", str, "the adapter's name"}, {"secret", str, "its secret (generated when omitted)"}},
				adapterFields()...),
			required: []string{"name"}, update: adapterFields(),
			rotate: []field{{"secret", str, "the new secret (generated when omitted)"}, overlap}, rotatePath: "rotate",
			del: true, show: true,
		},
	}
}

func adapterFields() []field {
	return []field{{"agent", str, "the agent its runs call"}, {"reply-hosts", list, "host names replyUrl may name (comma-separated)"},
		{"max-body-bytes", num, "body limit"}, {"max-in-flight", num, "queued or running runs at most"},
		{"approvers", list, "who may approve (comma-separated)"}, {"legacy-approvals", boolean, "the adapter's secret may decide"},
		{"read-all-runs", boolean, "may read the runs of other doors"}}
}

// bodyFlags declares fields as flags of cmd and returns a function building the JSON body from
// the flags given (a flag not given is left out of the body).
func bodyFlags(cmd *cobra.Command, fields []field) func() map[string]any {
	fs := cmd.Flags()
	for _, f := range fields {
		switch f.kind {
		case num:
			fs.Int64(f.flag, 0, f.usage)
		case boolean:
			fs.Bool(f.flag, false, f.usage)
		case list:
			fs.StringSlice(f.flag, nil, f.usage)
		default:
			fs.String(f.flag, "", f.usage)
		}
	}
	return func() map[string]any {
		body := map[string]any{}
		fs.Visit(func(fl *pflag.Flag) {
			for _, f := range fields {
				if f.flag != fl.Name {
					continue
				}
				switch f.kind {
				case num:
					body[f.key()], _ = fs.GetInt64(f.flag)
				case boolean:
					body[f.key()], _ = fs.GetBool(f.flag)
				case list:
					v, _ := fs.GetStringSlice(f.flag)
					if v == nil {
						v = []string{}
					}
					body[f.key()] = v
				default:
					body[f.key()] = fl.Value.String()
				}
			}
		})
		return body
	}
}

func (a *app) resourceCmd(r resource) *cobra.Command {
	cmd := &cobra.Command{Use: r.name, Short: r.short}
	if r.name == "webhooks" {
		cmd.Aliases = []string{"subscriptions"}
	}
	query := func() url.Values {
		if r.workspaceQ && a.flags.workspace != "" {
			return url.Values{"workspace_id": {a.flags.workspace}}
		}
		return nil
	}
	if !r.workspaceQ {
		cmd.PersistentPreRunE = func(c *cobra.Command, args []string) error {
			if a.flags.workspace != "" {
				return usagef("%s belong to the workspace of the API key: use that workspace's key, not --workspace", r.name)
			}
			return c.Root().PersistentPreRunE(c, args)
		}
	}
	one := func(c *cobra.Command, method string, args []string, suffix string, body any, status string) error {
		segs := []string{r.path, args[0]}
		if suffix != "" {
			segs = append(segs, suffix)
		}
		resp, err := a.client().Do(c.Context(), api.Request{Method: method, Path: api.Path(query(), segs...), Body: body})
		if err != nil {
			return err
		}
		return a.printObject(resp.Body, status, r.ident)
	}
	arg := cobra.ExactArgs(1)
	argUse := "<" + r.ident + ">"

	var limit int
	var cursor string
	list := &cobra.Command{
		Use: "list", Short: "List " + r.name, Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			q := query()
			if r.paginated {
				q = url.Values{"cursor": {cursor}}
				if limit > 0 {
					q.Set("limit", fmt.Sprint(limit))
				}
			}
			resp, err := a.client().Do(c.Context(), api.Request{Method: http.MethodGet, Path: api.Path(q, r.path)})
			if err != nil {
				return err
			}
			return a.printPage(resp.Body, r.columns)
		},
	}
	if r.paginated {
		list.Flags().IntVar(&limit, "limit", 0, "items per page (1-100; default 20)")
		list.Flags().StringVar(&cursor, "cursor", "", "the next_cursor of the previous page")
	}
	cmd.AddCommand(list)

	create := &cobra.Command{Use: "create", Short: "Create one of " + r.name + " (its secret is shown only now)", Args: cobra.NoArgs}
	createBody := bodyFlags(create, r.create)
	for _, req := range r.required {
		_ = create.MarkFlagRequired(req)
	}
	create.RunE = func(c *cobra.Command, _ []string) error {
		resp, err := a.client().Do(c.Context(), api.Request{Method: http.MethodPost, Path: api.Path(query(), r.path), Body: createBody()})
		if err != nil {
			return err
		}
		return a.printObject(resp.Body, "created", r.ident)
	}
	cmd.AddCommand(create)

	if r.show {
		cmd.AddCommand(&cobra.Command{Use: "show " + argUse, Short: "Show one of " + r.name, Args: arg,
			RunE: func(c *cobra.Command, args []string) error { return one(c, http.MethodGet, args, "", nil, "") }})
	}
	if r.update != nil {
		update := &cobra.Command{Use: "update " + argUse, Short: "Change one of " + r.name + " (only the flags given)", Args: arg}
		body := bodyFlags(update, r.update)
		update.RunE = func(c *cobra.Command, args []string) error {
			b := body()
			if len(b) == 0 {
				return usagef("nothing to change: give at least one flag")
			}
			return one(c, http.MethodPatch, args, "", b, "updated")
		}
		cmd.AddCommand(update)
	}
	if r.rotatePath != "" {
		rotate := &cobra.Command{Use: "rotate " + argUse, Short: "A new secret, shown only now", Args: arg}
		body := bodyFlags(rotate, r.rotate)
		rotate.RunE = func(c *cobra.Command, args []string) error {
			return one(c, http.MethodPost, args, r.rotatePath, body(), "rotated")
		}
		cmd.AddCommand(rotate)
	}
	if r.retire {
		cmd.AddCommand(&cobra.Command{Use: "retire " + argUse, Short: "Only the newest secret verifies from now on", Args: arg,
			RunE: func(c *cobra.Command, args []string) error {
				return one(c, http.MethodPost, args, "retire", map[string]any{}, "retired")
			}})
	}
	if r.test {
		cmd.AddCommand(&cobra.Command{Use: "test " + argUse, Short: "Send a webhook.test event to this endpoint only", Args: arg,
			RunE: func(c *cobra.Command, args []string) error {
				return one(c, http.MethodPost, args, "test", nil, "test queued")
			}})
	}
	if r.del {
		cmd.AddCommand(&cobra.Command{Use: "delete " + argUse, Short: "Delete one of " + r.name, Args: arg,
			RunE: func(c *cobra.Command, args []string) error {
				segs := []string{r.path, args[0]}
				if _, err := a.client().Do(c.Context(), api.Request{Method: http.MethodDelete, Path: api.Path(query(), segs...)}); err != nil {
					return err
				}
				if a.json {
					a.out().value(map[string]any{"deleted": args[0]})
				} else {
					fmt.Fprintf(a.io.Stdout, "deleted %s\n", args[0])
				}
				return nil
			}})
	}
	return cmd
}

// printPage prints a page {data, next_cursor}.
func (a *app) printPage(body []byte, columns []string) error {
	if a.json {
		a.out().raw(body)
		return nil
	}
	var page struct {
		Data       []map[string]any `json:"data"`
		NextCursor *string          `json:"next_cursor"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return fmt.Errorf("the API's page is not JSON: %w", err)
	}
	a.out().table(page.Data, columns)
	if page.NextCursor != nil && *page.NextCursor != "" {
		fmt.Fprintf(a.io.Stdout, "more: --cursor %s\n", *page.NextCursor)
	}
	return nil
}

// printObject prints one object; a secret in it is pointed out, as it is shown only once.
func (a *app) printObject(body []byte, status, ident string) error {
	if a.json {
		if len(body) == 0 {
			body = []byte("{}")
		}
		a.out().raw(body)
		return nil
	}
	var obj map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &obj); err != nil {
			return fmt.Errorf("the API's answer is not a JSON object: %w", err)
		}
	}
	if status != "" {
		fmt.Fprintf(a.io.Stdout, "%s\n", status)
	}
	a.out().record(obj, ident, "name", "id", "secret", "key")
	for _, k := range []string{"secret", "key"} {
		if s, ok := obj[k].(string); ok && s != "" {
			fmt.Fprintf(a.io.Stdout, "\nThe %s is shown only now: keep it.\n", k)
			break
		}
	}
	return nil
}
