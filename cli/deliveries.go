package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/hookgate/hookgate/cli/api"
)

var deliveryColumns = []string{"id", "event_type", "status", "attempts", "last_status_code", "updated_at"}

func (a *app) deliveriesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "deliveries", Short: "A subscription's deliveries: list, show with every attempt, retry"}
	var webhook, status, since, until, cursor string
	var limit int
	list := &cobra.Command{
		Use: "list --webhook ID", Short: "The subscription's deliveries, newest first", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			q := url.Values{"status": {status}, "cursor": {cursor}}
			for name, v := range map[string]string{"since": since, "until": until} {
				t, err := timeArg(v)
				if err != nil {
					return usagef("--%s: %v", name, err)
				}
				q.Set(name, t)
			}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			resp, err := a.client().Do(c.Context(), api.Request{Method: http.MethodGet, Path: api.Path(q, "/v1/webhooks", webhook, "deliveries")})
			if err != nil {
				return err
			}
			return a.printPage(resp.Body, deliveryColumns)
		},
	}
	list.Flags().StringVar(&webhook, "webhook", "", "the subscription's id (required)")
	list.Flags().StringVar(&status, "status", "", "pending, succeeded or failed")
	list.Flags().StringVar(&since, "since", "", "from this time: RFC 3339 or a duration ago (1h)")
	list.Flags().StringVar(&until, "until", "", "up to this time: RFC 3339 or a duration ago")
	list.Flags().IntVar(&limit, "limit", 0, "items per page (1-100; default 20)")
	list.Flags().StringVar(&cursor, "cursor", "", "the next_cursor of the previous page")
	_ = list.MarkFlagRequired("webhook")

	show := &cobra.Command{
		Use: "show <id>", Short: "One delivery, its body and every attempt", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			resp, err := a.client().Do(c.Context(), api.Request{Method: http.MethodGet, Path: api.Path(nil, "/v1/deliveries", args[0])})
			if err != nil {
				return err
			}
			if a.json {
				a.out().raw(resp.Body)
				return nil
			}
			var d map[string]any
			if err := json.Unmarshal(resp.Body, &d); err != nil {
				return err
			}
			var raw struct {
				Payload json.RawMessage `json:"payload"`
			}
			_ = json.Unmarshal(resp.Body, &raw) // the body as sent, its keys in their order
			attempts, _ := d["attempt_log"].([]any)
			delete(d, "attempt_log")
			delete(d, "payload")
			a.out().record(d, "id", "event_id", "event_type", "status")
			fmt.Fprintf(a.io.Stdout, "\npayload  %s\n", raw.Payload)
			var rows []map[string]any
			for _, at := range attempts {
				if m, ok := at.(map[string]any); ok {
					rows = append(rows, m)
				}
			}
			fmt.Fprintln(a.io.Stdout)
			a.out().table(rows, attemptColumns(rows))
			return nil
		},
	}
	retry := &cobra.Command{
		Use: "retry <id>", Short: "Send a failed delivery again", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			resp, err := a.client().Do(c.Context(), api.Request{Method: http.MethodPost, Path: api.Path(nil, "/v1/deliveries", args[0], "retry")})
			if err != nil {
				return err
			}
			return a.printObject(resp.Body, "queued again", "id")
		},
	}
	cmd.AddCommand(list, show, retry)
	return cmd
}

// attemptColumns are the keys of the attempts, in a readable order.
func attemptColumns(rows []map[string]any) []string {
	cols := []string{}
	for _, k := range []string{"series", "number", "at", "status_code", "latency_ms", "error"} {
		for _, r := range rows {
			if _, ok := r[k]; ok {
				cols = append(cols, k)
				break
			}
		}
	}
	if len(cols) == 0 {
		for _, r := range rows {
			for k := range r {
				cols = append(cols, k)
			}
			break
		}
	}
	return cols
}

// timeArg reads RFC 3339, or a duration meaning that long ago; "" stays "".
func timeArg(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC().Format(time.RFC3339Nano), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return "", fmt.Errorf("%q is neither RFC 3339 nor a duration ago (90m, 24h)", v)
	}
	return time.Now().Add(-d).UTC().Format(time.RFC3339Nano), nil
}

// replayBatch is the most one replay call sends again (the API's limit).
const replayBatch = 1000

func (a *app) replayCmd() *cobra.Command {
	var webhook, since, until string
	cmd := &cobra.Command{
		Use:   "replay --webhook ID --since TIME [--until TIME]",
		Short: "Send a subscription's failed deliveries of a time range again, with a progress bar",
		Long: `Counts the subscription's failed deliveries in the range, then replays them (the API takes
at most 1,000 a call, newest first; replay calls again until none is left) with a progress bar.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			from, err := timeArg(since)
			if err != nil || from == "" {
				return usagef("--since: RFC 3339 or a duration ago (required)")
			}
			to, err := timeArg(until)
			if err != nil {
				return usagef("--until: %v", err)
			}
			cl := a.client()
			total, err := a.countFailed(c, cl, webhook, from, to)
			if err != nil {
				return err
			}
			bar := progressbar.NewOptions(total, progressbar.OptionSetWriter(a.io.Stderr),
				progressbar.OptionSetDescription("replaying"), progressbar.OptionShowCount(),
				progressbar.OptionSetVisibility(!a.json && total > 0), progressbar.OptionClearOnFinish())
			body := map[string]any{"since": from}
			if to != "" {
				body["until"] = to
			}
			replayed, calls := 0, 0
			for replayed < total || calls == 0 {
				var out struct {
					Replayed int `json:"replayed"`
				}
				if _, err := cl.JSON(c.Context(), api.Request{Method: http.MethodPost, Path: api.Path(nil, "/v1/webhooks", webhook, "replay"), Body: body}, &out); err != nil {
					return err
				}
				calls++
				replayed += out.Replayed
				_ = bar.Add(out.Replayed)
				if out.Replayed < replayBatch {
					break
				}
			}
			_ = bar.Finish()
			if a.json {
				a.out().value(map[string]any{"replayed": replayed, "failed_in_range": total, "calls": calls})
				return nil
			}
			fmt.Fprintf(a.io.Stdout, "replayed %d of %d failed deliveries\n", replayed, total)
			return nil
		},
	}
	cmd.Flags().StringVar(&webhook, "webhook", "", "the subscription's id (required)")
	cmd.Flags().StringVar(&since, "since", "", "from this time: RFC 3339 or a duration ago (24h) (required)")
	cmd.Flags().StringVar(&until, "until", "", "up to this time (default: now)")
	_ = cmd.MarkFlagRequired("webhook")
	_ = cmd.MarkFlagRequired("since")
	return cmd
}

// countFailed pages through the failed deliveries of the range.
func (a *app) countFailed(c *cobra.Command, cl *api.Client, webhook, since, until string) (int, error) {
	n, cursor := 0, ""
	for {
		q := url.Values{"status": {"failed"}, "since": {since}, "until": {until}, "limit": {"100"}, "cursor": {cursor}}
		var page struct {
			Data       []json.RawMessage `json:"data"`
			NextCursor *string           `json:"next_cursor"`
		}
		if _, err := cl.JSON(c.Context(), api.Request{Method: http.MethodGet, Path: api.Path(q, "/v1/webhooks", webhook, "deliveries")}, &page); err != nil {
			return 0, err
		}
		n += len(page.Data)
		if page.NextCursor == nil || *page.NextCursor == "" {
			return n, nil
		}
		cursor = *page.NextCursor
	}
}
