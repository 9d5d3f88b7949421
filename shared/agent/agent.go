// Package agent is how Hookgate calls a workspace's agent for one run. The gateway embeds no model:
// an Agent turns the run's input into a reply (echo for local mode and demos; the webhook and
// OpenAI-compatible backends call out).
package agent

import (
	"context"
	"encoding/json"
	"fmt"
)

// Request is the input of one run.
type Request struct {
	RunID       string
	WorkspaceID string
	ThreadID    string
	Channel     string
	ExternalID  string
	User        string
	Text        string
	Data        json.RawMessage
}

// Reply is the agent's answer. An empty Text means the agent chose not to speak.
type Reply struct {
	Text string
}

// Agent answers one run.
type Agent interface {
	Respond(ctx context.Context, r Request) (Reply, error)
}

// Echo replies with the input text.
type Echo struct{}

// Respond returns the request's text.
func (Echo) Respond(_ context.Context, r Request) (Reply, error) { return Reply{Text: r.Text}, nil }

// New returns the agent named by HOOKGATE_AGENT.
func New(name string) (Agent, error) {
	switch name {
	case "", "echo":
		return Echo{}, nil
	default:
		return nil, fmt.Errorf("unknown agent %q (known: echo)", name)
	}
}
