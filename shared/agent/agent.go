// Package agent calls a workspace's agent for one run: echo, a signed webhook, or an OpenAI-compatible
// endpoint; a Registry names the agents a deployment configures.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
)

// Kinds of request the gateway sends an agent.
const (
	KindSessionStart = "session_start"   // first message of a thread, before its first user_speak: once, again only after a failure during that turn
	KindUserSpeak    = "user_speak"      // a user's message: the agent answers with actions
	KindApproval     = "approval_result" // a human approved or denied what the agent asked approval for
)

// Session is the thread a request belongs to.
type Session struct {
	ID          string `json:"id"` // the thread id
	WorkspaceID string `json:"workspace_id"`
	Channel     string `json:"channel"`
	ExternalID  string `json:"external_id"`
	User        string `json:"user,omitempty"`
}

// Turn is one earlier message of the thread, for backends that take history.
type Turn struct {
	Role string // "user" or "assistant"
	Text string
}

// Decision is a human's answer to a request_approval action.
type Decision struct {
	Approved bool   `json:"approved"`
	Option   string `json:"option,omitempty"`
	Approver string `json:"approver,omitempty"`
	Comment  string `json:"comment,omitempty"`
}

// Request is the input of one agent call.
type Request struct {
	Kind     string
	RunID    string
	Session  Session
	Text     string
	Data     json.RawMessage // may be nil
	History  []Turn          // earlier messages, oldest first, already bounded by the caller; excludes Text
	Decision *Decision       // set for KindApproval
}

// Action types.
const (
	ActionSpeak           = "speak"
	ActionRequestApproval = "request_approval"
)

// Action is one thing the agent asks the gateway to do.
type Action struct {
	Type    string   `json:"type"`              // ActionSpeak or ActionRequestApproval
	Text    string   `json:"text,omitempty"`    // speak
	Prompt  string   `json:"prompt,omitempty"`  // request_approval
	Options []string `json:"options,omitempty"` // request_approval, optional
	// Approvers are who may decide a request_approval (optional; else the adapter's approvers).
	Approvers []string `json:"approvers,omitempty"`
}

// Reply is the agent's answer: no actions means the agent chose to do nothing.
type Reply struct{ Actions []Action }

// Text returns the speak actions' texts joined with "\n\n" (empty when none).
func (r Reply) Text() string {
	var b strings.Builder
	for _, a := range r.Actions {
		if a.Type != ActionSpeak {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(a.Text)
	}
	return b.String()
}

// Approval returns the first request_approval action, or nil.
func (r Reply) Approval() *Action {
	for i := range r.Actions {
		if r.Actions[i].Type == ActionRequestApproval {
			a := r.Actions[i]
			return &a
		}
	}
	return nil
}

// Agent answers one request. Implementations are safe for concurrent use.
type Agent interface {
	Respond(ctx context.Context, r Request) (Reply, error)
}

// Error is an agent call's failure. Reason is safe to store on a run and show to API clients: it
// never contains secrets, API keys, URL queries or full response bodies (at most a short,
// redacted snippet of one).
type Error struct {
	Retryable bool // timeouts, connection errors, 5xx, 408, 429: try again later through the queue
	Reason    string
	Host      string // the endpoint's host[:port], for the log only: every subscriber reads Reason
}

// Error returns the reason.
func (e *Error) Error() string { return e.Reason }

// Retryable reports whether err is worth retrying: an *Error that says so, or a timeout.
func Retryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Retryable
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// permanent is a non-retryable *Error.
func permanent(reason string) *Error { return &Error{Reason: reason} }

// checkKind rejects a request kind the backends do not know.
func checkKind(r Request) error {
	switch r.Kind {
	case KindSessionStart, KindUserSpeak:
		return nil
	case KindApproval:
		if r.Decision == nil {
			return permanent("approval_result request has no decision")
		}
		return nil
	}
	return permanent("unknown request kind " + quote(r.Kind, 40))
}

// Echo speaks the user's text back; it ignores session starts and approval results.
type Echo struct{}

// Respond returns one speak action with the text of a user_speak request, else nothing.
func (Echo) Respond(_ context.Context, r Request) (Reply, error) {
	if err := checkKind(r); err != nil {
		return Reply{}, err
	}
	if r.Kind != KindUserSpeak || strings.TrimSpace(r.Text) == "" {
		return Reply{}, nil
	}
	return Reply{Actions: []Action{{Type: ActionSpeak, Text: r.Text}}}, nil
}

// New returns the built-in agent named name ("" or "echo").
//
// Deprecated: build a Registry with ParseRegistry and use its Get.
func New(name string) (Agent, error) {
	if name == "" || name == "echo" {
		return Echo{}, nil
	}
	return nil, fmt.Errorf("unknown agent %q", name)
}
