package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hookgate/hookgate/shared/outbound"
)

// Agent types of a Spec.
const (
	TypeEcho    = "echo"
	TypeWebhook = "webhook"
	TypeOpenAI  = "openai"
)

// Bounds of a Spec.
const (
	DefaultTimeoutSeconds = 25
	MaxTimeoutSeconds     = 60
	MaxHistoryLimit       = 200
	maxNameLen            = 64
)

// Spec is one named agent in the HOOKGATE_AGENTS JSON object {"name": Spec, ...}.
type Spec struct {
	Type           string `json:"type"`           // "echo" | "webhook" | "openai"
	URL            string `json:"url"`            // webhook
	Secret         string `json:"secret"`         // webhook: whsec_…
	BaseURL        string `json:"baseUrl"`        // openai; DefaultOpenAIBaseURL when empty
	Model          string `json:"model"`          // openai (required)
	APIKey         string `json:"apiKey"`         // openai; falls back to Options.OpenAIAPIKey
	System         string `json:"system"`         // openai, optional
	MaxHistory     int    `json:"maxHistory"`     // openai, default 20, max 200
	TimeoutSeconds int    `json:"timeoutSeconds"` // default 25, 1..60
}

// String describes the spec without its secret or API key.
func (s Spec) String() string {
	return fmt.Sprintf("agent.Spec{Type:%s Model:%s secret:%t apiKey:%t}", s.Type, s.Model, s.Secret != "", s.APIKey != "")
}

// GoString is String, for %#v.
func (s Spec) GoString() string { return s.String() }

// LogValue is String, so slog never writes the secret or the API key either.
func (s Spec) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Options are the process-wide settings of ParseRegistry.
type Options struct {
	OpenAIAPIKey string           // the API key of openai agents that name none
	Client       *http.Client     // shared by every agent; nil: one client per agent (see NewWebhook)
	Now          func() time.Time // webhook timestamps; time.Now when nil
}

// Registry holds the agents a deployment configures, by name. It is safe for concurrent use.
type Registry struct {
	agents  map[string]Agent
	history map[string]int
	names   []string
	longest time.Duration
}

// ParseRegistry builds the agents of agentsJSON, a JSON object of name to Spec ("" configures
// none). The agent "echo" is always there. Every problem is reported, joined; no error quotes a
// secret, an API key or a URL.
func ParseRegistry(agentsJSON string, o Options) (*Registry, error) {
	r := &Registry{agents: map[string]Agent{TypeEcho: Echo{}}, history: map[string]int{}}
	if strings.TrimSpace(agentsJSON) != "" {
		entries, err := decodeEntries(agentsJSON)
		if err != nil {
			return nil, err
		}
		var errs []error
		for _, e := range entries {
			a, hist, timeout, err := build(e.name, e.raw, o)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			r.agents[e.name], r.history[e.name] = a, hist
			r.longest = max(r.longest, timeout)
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	for name := range r.agents {
		r.names = append(r.names, name)
	}
	slices.Sort(r.names)
	return r, nil
}

// Get returns the agent named name; "" means "echo".
func (r *Registry) Get(name string) (Agent, error) {
	if name == "" {
		name = TypeEcho
	}
	a, ok := r.agents[name]
	if !ok {
		return nil, fmt.Errorf("unknown agent %q", name)
	}
	return a, nil
}

// Names returns the configured names, sorted, "echo" included.
func (r *Registry) Names() []string { return slices.Clone(r.names) }

// HistoryLimit is how many earlier turns the named agent takes (0 for agents that take none, and
// for unknown names), so the caller reads no more than that.
func (r *Registry) HistoryLimit(name string) int { return r.history[name] }

// LongestTimeout is the longest timeout of one call of any agent (0 when only echo is configured).
func (r *Registry) LongestTimeout() time.Duration { return r.longest }

type entry struct {
	name string
	raw  json.RawMessage
}

// decodeEntries splits the top-level object, in order, refusing duplicate names.
func decodeEntries(s string) ([]entry, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, jsonError(err, "agents must be a JSON object of agent name to spec")
	}
	var out []entry
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonError(err, "agents are not valid JSON")
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, jsonError(err, "agents are not valid JSON")
		}
		if seen[name] {
			return nil, fmt.Errorf("agent %s is defined twice", quote(name, maxNameLen))
		}
		seen[name] = true
		out = append(out, entry{name, raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonError(err, "agents are not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("agents: unexpected data after the JSON object")
	}
	return out, nil
}

// jsonError describes a decoding failure by its offset only: the decoder's own text can quote
// the input.
func jsonError(err error, msg string) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%s (invalid JSON at byte %d)", msg, se.Offset)
	}
	return errors.New(msg)
}

// specFieldTypes returns the types a Spec field, by its JSON name, applies to.
func specFieldTypes(field string) ([]string, bool) {
	switch field {
	case "type":
		return []string{TypeEcho, TypeWebhook, TypeOpenAI}, true
	case "url", "secret":
		return []string{TypeWebhook}, true
	case "baseUrl", "model", "apiKey", "system", "maxHistory":
		return []string{TypeOpenAI}, true
	case "timeoutSeconds":
		return []string{TypeWebhook, TypeOpenAI}, true
	}
	return nil, false
}

// build validates one spec and makes its agent; the error lists every problem of the spec.
func build(name string, raw json.RawMessage, o Options) (Agent, int, time.Duration, error) {
	label := "agent " + quote(name, maxNameLen)
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", label, fmt.Sprintf(format, a...)))
	}
	switch {
	case name == TypeEcho:
		bad("is built in and cannot be redefined")
	case !validName(name):
		bad("name must be 1 to %d characters of a-z, 0-9, _ and -", maxNameLen)
	}
	s, present, problems, ok := decodeSpec(raw)
	for _, p := range problems {
		bad("%s", p)
	}
	if !ok {
		return nil, 0, 0, errors.Join(errs...)
	}
	known := true
	switch s.Type {
	case TypeEcho, TypeWebhook, TypeOpenAI:
	case "":
		known = false
		bad("type is required (echo, webhook or openai)")
	default:
		known = false
		bad("unknown type %s (known: echo, webhook, openai)", quote(s.Type, 20))
	}
	for _, f := range present { // in the order written
		types, isField := specFieldTypes(f)
		switch {
		case !isField:
			bad("unknown field %s", quote(f, 40))
		case known && !slices.Contains(types, s.Type):
			hint := ""
			if f == "url" && s.Type == TypeOpenAI {
				hint = " (an openai agent takes baseUrl)"
			} else if f == "baseUrl" && s.Type == TypeWebhook {
				hint = " (a webhook agent takes url)"
			}
			bad("%s does not apply to a%s %s agent%s", f, article(s.Type), s.Type, hint)
		}
	}
	timeout := DefaultTimeoutSeconds
	switch {
	case s.TimeoutSeconds == 0:
	case s.TimeoutSeconds < 1 || s.TimeoutSeconds > MaxTimeoutSeconds:
		bad("timeoutSeconds must be from 1 to %d", MaxTimeoutSeconds)
	default:
		timeout = s.TimeoutSeconds
	}
	switch s.Type {
	case TypeWebhook:
		if s.URL == "" {
			bad("url is required")
		} else if _, err := parseEndpoint(s.URL); err != nil {
			bad("url %v", err)
		}
		if s.Secret == "" {
			bad("secret is required")
		} else if !outbound.ValidSecret(s.Secret) {
			bad("secret must be whsec_ followed by base64 of 24 to 64 bytes")
		}
	case TypeOpenAI:
		if strings.TrimSpace(s.Model) == "" {
			bad("model is required")
		}
		if s.BaseURL != "" {
			if _, err := parseEndpoint(s.BaseURL); err != nil {
				bad("baseUrl %v", err)
			}
		}
		if s.MaxHistory < 0 || s.MaxHistory > MaxHistoryLimit {
			bad("maxHistory must be from 0 to %d (0: the default, %d)", MaxHistoryLimit, DefaultMaxHistory)
		}
		if s.APIKey == "" {
			s.APIKey = o.OpenAIAPIKey
		}
	}
	if len(errs) > 0 {
		return nil, 0, 0, errors.Join(errs...)
	}
	d := time.Duration(timeout) * time.Second
	switch s.Type {
	case TypeWebhook:
		a, err := NewWebhook(WebhookConfig{URL: s.URL, Secret: s.Secret, Timeout: d, Client: o.Client, Now: o.Now})
		if err != nil {
			return nil, 0, 0, fmt.Errorf("%s: %w", label, err)
		}
		return a, 0, d, nil
	case TypeOpenAI:
		a, err := NewOpenAI(OpenAIConfig{BaseURL: s.BaseURL, APIKey: s.APIKey, Model: s.Model, System: s.System,
			MaxHistory: s.MaxHistory, Timeout: d, Client: o.Client})
		if err != nil {
			return nil, 0, 0, fmt.Errorf("%s: %w", label, err)
		}
		return a, a.HistoryLimit(), d, nil
	}
	return Echo{}, 0, 0, nil
}

// decodeSpec decodes a spec field by field, so each problem names its field, and returns the
// fields present in the order written. Field names match exactly (encoding/json alone would take
// "apikey" for "apiKey"). ok is false when raw is not a JSON object.
func decodeSpec(raw json.RawMessage) (s Spec, present, problems []string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return s, nil, []string{"spec must be a JSON object"}, false
	}
	strs := map[string]*string{"type": &s.Type, "url": &s.URL, "secret": &s.Secret, "baseUrl": &s.BaseURL,
		"model": &s.Model, "apiKey": &s.APIKey, "system": &s.System}
	ints := map[string]*int{"maxHistory": &s.MaxHistory, "timeoutSeconds": &s.TimeoutSeconds}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return s, nil, []string{"spec is not valid JSON"}, false
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return s, nil, []string{"spec is not valid JSON"}, false
		}
		if seen[key] {
			problems = append(problems, "field "+quote(key, 40)+" is given twice")
			continue
		}
		seen[key] = true
		present = append(present, key)
		if p, ok := strs[key]; ok && json.Unmarshal(v, p) != nil {
			problems = append(problems, key+" must be a string")
		}
		if p, ok := ints[key]; ok && json.Unmarshal(v, p) != nil {
			problems = append(problems, key+" must be an integer")
		}
	}
	return s, present, problems, true
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func article(word string) string {
	if strings.ContainsRune("aeiou", rune(word[0])) {
		return "n"
	}
	return ""
}
