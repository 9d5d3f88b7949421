package adapter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/hookgate/hookgate/shared/approval"
	"github.com/hookgate/hookgate/shared/verify"
)

// Defaults of an adapter's limits.
const (
	DefaultMaxBodyBytes = 1_000_000
	DefaultMaxInFlight  = 32
	maxInFlightLimit    = 1000
	maxBodyLimit        = 6_000_000 // Lambda's synchronous payload limit
	minSecretLen        = 16
)

// Adapter is one named webhook adapter: who may call it, where its replies may go, its limits and
// the agent its runs call.
type Adapter struct {
	Name         string   `json:"name"`
	Workspace    string   `json:"workspace"`    // default: the stack's default workspace
	Secret       string   `json:"secret"`       // default: HOOKGATE_ADAPTER_SECRET
	Secrets      []string `json:"secrets"`      // several, newest first, during a rotation
	ReplyHosts   []string `json:"replyHosts"`   // exact host names replyUrl may point at
	MaxBodyBytes int      `json:"maxBodyBytes"` // default 1,000,000
	MaxInFlight  int      `json:"maxInFlight"`  // queued or running runs at once; default 32
	Agent        string   `json:"agent"`        // the agent's name; empty is the workspace's
	Approvers    []string `json:"approvers"`    // who decide its runs' approvals (unless the agent names them); they may cancel any run

	// CallbackSecret signs the callbacks to replyUrl; default: derived from the stack's approval
	// signing key (approval.CallbackSecret), never the adapter's Bearer secret.
	CallbackSecret string `json:"callbackSecret"`
	// LegacyApprovals lets a holder of the adapter's secret approve and deny without a decision
	// token, naming a user (the run's, or one of Approvers) as before; default false.
	LegacyApprovals bool `json:"legacyApprovals"`
	// ReadAllRuns lets the adapter read (not act on) the runs of its workspace that no adapter
	// started: those of the inbound doors and the widget. Off by default: an adapter reads its own.
	ReadAllRuns bool `json:"readAllRuns"`

	secrets *verify.Secrets
}

// String never shows the secrets.
func (a *Adapter) String() string { return "adapter " + a.Name }

// CallbackSecrets are the secrets callbacks to replyUrl are signed with, newest first: the
// configured callbackSecret, or one derived from each approval signing key (so a key rotation
// signs with both while it lasts).
func (a *Adapter) CallbackSecrets(approvalKeys []string) []string {
	if a.CallbackSecret != "" {
		return []string{a.CallbackSecret}
	}
	out := make([]string, 0, len(approvalKeys))
	for _, k := range approvalKeys {
		out = append(out, approval.CallbackSecret(k, a.Workspace, a.Name))
	}
	return out
}

// Authentic reports, in constant time, whether presented is one of the adapter's secrets.
func (a *Adapter) Authentic(presented string) bool { return a.secrets.Equal(presented) }

// Approver reports whether user is one of the adapter's approvers.
func (a *Adapter) Approver(user string) bool { return slices.Contains(a.Approvers, user) }

// ReplyHostAllowed reports whether host is in the adapter's allowlist (exact, case-insensitive).
func (a *Adapter) ReplyHostAllowed(host string) bool {
	for _, h := range a.ReplyHosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// hostPattern accepts a DNS name or an IP literal, without port, scheme or wildcard.
var hostPattern = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$|^[0-9a-f:.]+$`)

// ParseAdapters reads HOOKGATE_ADAPTERS: a JSON array of adapters ("" means one adapter named
// default). Adapters without a secret use defaultSecret. Every problem is reported; no secret is
// ever part of an error.
func ParseAdapters(text, defaultSecret, defaultWorkspace string, defaultMaxBody int) (map[string]*Adapter, error) {
	if strings.TrimSpace(text) == "" {
		text = `[{"name":"default"}]`
	}
	var list []*Adapter
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("HOOKGATE_ADAPTERS is not a JSON array of adapters: %s", safeJSONError(err))
	}
	if len(list) == 0 {
		return nil, errors.New("HOOKGATE_ADAPTERS lists no adapter")
	}
	if defaultMaxBody <= 0 {
		defaultMaxBody = DefaultMaxBodyBytes
	}
	out := make(map[string]*Adapter, len(list))
	var errs []error
	for i, a := range list {
		if a == nil {
			errs = append(errs, fmt.Errorf("adapter %d is null", i+1))
			continue
		}
		label := fmt.Sprintf("adapter %d (%q)", i+1, a.Name)
		bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(label+": "+format, args...)) }
		if !namePattern.MatchString(a.Name) {
			bad("name must be 1-63 characters of a-z, 0-9, _ and -, starting with a letter or digit")
		} else if _, dup := out[a.Name]; dup {
			bad("name is used twice")
		}
		if a.Workspace == "" {
			a.Workspace = defaultWorkspace
		}
		if !namePattern.MatchString(a.Workspace) {
			bad("workspace is not a valid workspace id")
		}
		if a.Secret != "" {
			a.Secrets = append([]string{a.Secret}, a.Secrets...)
		}
		if len(a.Secrets) == 0 && defaultSecret != "" {
			a.Secrets = []string{defaultSecret}
		}
		if len(a.Secrets) == 0 {
			bad("has no secret (set secret, or HOOKGATE_ADAPTER_SECRET)")
		}
		for j, s := range a.Secrets {
			if len(s) < minSecretLen {
				bad("secret %d is shorter than %d characters", j+1, minSecretLen)
			}
		}
		for j, h := range a.ReplyHosts {
			a.ReplyHosts[j] = strings.ToLower(h)
			if !hostPattern.MatchString(a.ReplyHosts[j]) {
				bad("replyHosts[%d] %q is not a bare host name (no scheme, port or wildcard)", j, truncate(h, 80))
			}
		}
		switch {
		case a.MaxBodyBytes == 0:
			a.MaxBodyBytes = defaultMaxBody
		case a.MaxBodyBytes < 1024 || a.MaxBodyBytes > maxBodyLimit:
			bad("maxBodyBytes must be from 1024 to %d", maxBodyLimit)
		}
		switch {
		case a.MaxInFlight == 0:
			a.MaxInFlight = DefaultMaxInFlight
		case a.MaxInFlight < 1 || a.MaxInFlight > maxInFlightLimit:
			bad("maxInFlight must be from 1 to %d", maxInFlightLimit)
		}
		if len(a.Approvers) > approval.MaxApprovers {
			bad("lists more than %d approvers", approval.MaxApprovers)
		}
		for j, u := range a.Approvers {
			if strings.TrimSpace(u) == "" || len(u) > maxUser {
				bad("approvers[%d] must be 1 to %d characters", j, maxUser)
			}
		}
		if c := a.CallbackSecret; c != "" {
			if len(c) < minSecretLen {
				bad("callbackSecret is shorter than %d characters", minSecretLen)
			}
			if slices.Contains(a.Secrets, c) {
				bad("callbackSecret must differ from the adapter's secrets (a receiver of callbacks must not be able to call the adapter)")
			}
		}
		a.secrets = verify.NewSecrets(a.Secrets...)
		out[a.Name] = a
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// safeJSONError describes a decoding error without quoting the input (it may hold secrets).
func safeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return err.Error()
	}
	return "invalid JSON"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
