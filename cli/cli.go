// Package cli is the hookgate command line: listen to a workspace's events on a laptop, send test
// webhooks signed for any scheme, sign and verify, and manage subscriptions, sources, keys, agents,
// adapters and deliveries through the management API (cmd/hookgate wires it).
package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hookgate/hookgate/cli/api"
)

// UserAgent is sent with every request the command line makes to the API.
const UserAgent = "hookgate-cli/0.1"

// IO is what a run of the command line reads and writes.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// HTTP is the client of the API (nil: a default one). Tests put a validating one here.
	HTTP *http.Client
}

// app is one run: its streams, global flags and (once resolved) configuration.
type app struct {
	io    IO
	flags configFlags
	json  bool
	cfg   Config
}

// Run runs the command line with args (without the program name) and returns the exit code:
// 0 on success, 1 when a command fails (an API error prints its code and message), 2 on bad usage.
func Run(ctx context.Context, args []string, o IO) int {
	o.Stdout, o.Stderr = printable{o.Stdout}, printable{o.Stderr}
	a := &app{io: o}
	root := a.root()
	root.SetArgs(args)
	root.SetIn(o.Stdin)
	root.SetOut(o.Stdout)
	root.SetErr(o.Stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	if e, ok := api.IsAPI(err); ok {
		fmt.Fprintf(o.Stderr, "Error: %s: %s (HTTP %d)\n", e.Code, e.Message, e.Status)
		return 1
	}
	if ex, ok := err.(*exitError); ok {
		if ex.msg != "" {
			fmt.Fprintln(o.Stderr, ex.msg)
		}
		return ex.code
	}
	fmt.Fprintf(o.Stderr, "Error: %v\n", err)
	if isUsage(err) {
		fmt.Fprintf(o.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return 2
	}
	return 1
}

// exitError ends a command with a code and an optional message (verify's "no").
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

type usageError struct{ error }

func isUsage(err error) bool {
	_, ok := err.(usageError)
	return ok || strings.HasPrefix(err.Error(), "unknown ") || strings.Contains(err.Error(), "flag") ||
		strings.Contains(err.Error(), "arg(s)")
}

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "hookgate",
		Short: "The Hookgate command line: listen, send, sign, verify and manage a Hookgate gateway",
		Long: `The Hookgate command line.

Configuration, first found wins: flags (--api, --api-key, --workspace), the environment
(HOOKGATE_API, HOOKGATE_API_KEY, HOOKGATE_INBOUND_SECRET, HOOKGATE_WORKSPACE), a profile of
~/.config/hookgate/config.json (--profile, HOOKGATE_PROFILE; --config or HOOKGATE_CONFIG for
another file), then the values of 'make dev': ` + DefaultAPI + ` with the admin key ` + DefaultAPIKey + `.

A profile file:  {"default": {"api": "https://…/", "api_key": "hgk_…", "inbound_secret": "…", "workspace": "acme"}}`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := resolve(a.flags, a.getenv)
			if err != nil {
				return err
			}
			cfg.API = strings.TrimRight(cfg.API, "/")
			a.cfg = cfg
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.flags.api, "api", "", "the API's base URL (HOOKGATE_API; default "+DefaultAPI+")")
	pf.StringVar(&a.flags.apiKey, "api-key", "", "a workspace API key or the admin key (HOOKGATE_API_KEY)")
	pf.StringVar(&a.flags.profile, "profile", "", "the profile of the config file (HOOKGATE_PROFILE; default \"default\")")
	pf.StringVar(&a.flags.file, "config", "", "the config file (HOOKGATE_CONFIG; default ~/.config/hookgate/config.json)")
	pf.StringVar(&a.flags.workspace, "workspace", "", "the workspace whose doors send posts to (HOOKGATE_WORKSPACE); with the admin key, the workspace sources, keys, agents and adapters commands manage")
	pf.BoolVar(&a.json, "json", false, "print JSON (one object per line) instead of tables")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	root.AddCommand(a.listenCmd(), a.tailCmd(), a.sendCmd(), a.signCmd(), a.verifyCmd())
	for _, r := range resources() {
		root.AddCommand(a.resourceCmd(r))
	}
	root.AddCommand(a.deliveriesCmd(), a.replayCmd())
	return root
}

func (a *app) getenv(k string) string {
	if a.io.Getenv == nil {
		return ""
	}
	return a.io.Getenv(k)
}

func (a *app) client() *api.Client {
	return &api.Client{Base: a.cfg.API, Key: a.cfg.APIKey, HTTP: a.io.HTTP, UA: UserAgent}
}

func (a *app) out() printer { return printer{w: a.io.Stdout, json: a.json} }
