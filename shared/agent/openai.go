package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
)

// DefaultOpenAIBaseURL is the base URL of an OpenAI agent that names none.
const DefaultOpenAIBaseURL = "https://api.openai.com/v1"

// DefaultMaxHistory is how many earlier turns an OpenAI agent sends when its configuration says 0.
const DefaultMaxHistory = 20

// OpenAIConfig configures an agent backed by an OpenAI-compatible chat completions API.
type OpenAIConfig struct {
	BaseURL    string // e.g. https://api.openai.com/v1 (the default) or http://localhost:11434/v1
	APIKey     string // sent as a Bearer token; no Authorization header when empty
	Model      string // required
	System     string // the system message, optional
	MaxHistory int    // earlier turns sent, the latest ones; DefaultMaxHistory when 0, none when < 0
	Timeout    time.Duration
	Client     *http.Client // nil: a client with Timeout that follows no redirects and uses no proxy
}

// OpenAI speaks what a chat completions model answers to each user message; it calls nothing for
// session starts and approval results. It is safe for concurrent use.
type OpenAI struct {
	endpoint   string
	auth       string // "Bearer …" or ""
	model      string
	system     string
	maxHistory int
	call       caller
}

// NewOpenAI returns the OpenAI-compatible agent of c. Its errors never contain the API key.
func NewOpenAI(c OpenAIConfig) (*OpenAI, error) {
	base := c.BaseURL
	if base == "" {
		base = DefaultOpenAIBaseURL
	}
	u, err := parseEndpoint(base)
	if err != nil {
		return nil, fmt.Errorf("openai agent: base url %w", err)
	}
	endpoint := u.JoinPath("chat", "completions")
	if strings.TrimSpace(c.Model) == "" {
		return nil, errors.New("openai agent: model is required")
	}
	if strings.IndexFunc(c.APIKey, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return nil, errors.New("openai agent: api key contains white space or control characters")
	}
	o := &OpenAI{endpoint: endpoint.String(), model: c.Model, system: c.System, maxHistory: c.MaxHistory}
	if o.maxHistory == 0 {
		o.maxHistory = DefaultMaxHistory
	}
	var secrets []string
	if c.APIKey != "" {
		o.auth = "Bearer " + c.APIKey
		secrets = append(secrets, c.APIKey)
	}
	o.call = newCaller(c.Client, c.Timeout, endpoint, secrets...)
	return o, nil
}

// String names the agent by its host and model only, so printing one leaks no key.
func (o *OpenAI) String() string { return "agent.OpenAI(" + o.call.host + ", " + o.model + ")" }

// GoString is String, for %#v.
func (o *OpenAI) GoString() string { return o.String() }

// HistoryLimit is how many earlier turns the agent sends.
func (o *OpenAI) HistoryLimit() int { return max(o.maxHistory, 0) }

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatRequest struct {
	Model    string        `json:"model"`
	Messages []chatMessage `json:"messages"`
}

type chatResponse struct {
	Choices []struct {
		Message struct {
			Content *string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
}

// messages builds the conversation: the system message, the latest turns of history (user and
// assistant ones only: a turn cannot smuggle in a system message), then the user's message.
func (o *OpenAI) messages(r Request, text string) []chatMessage {
	var ms []chatMessage
	if o.system != "" {
		ms = append(ms, chatMessage{Role: "system", Content: o.system})
	}
	var turns []chatMessage
	for _, t := range r.History {
		if (t.Role == "user" || t.Role == "assistant") && t.Text != "" {
			turns = append(turns, chatMessage{Role: t.Role, Content: t.Text})
		}
	}
	if n := o.HistoryLimit(); len(turns) > n {
		turns = turns[len(turns)-n:]
	}
	ms = append(ms, turns...)
	return append(ms, chatMessage{Role: "user", Content: text})
}

// Respond asks the model to answer a user_speak request and speaks its answer. A request with no
// text sends its data (the JSON of the event that started the run) as the user's message.
func (o *OpenAI) Respond(ctx context.Context, r Request) (Reply, error) {
	if err := checkKind(r); err != nil {
		return Reply{}, err
	}
	if r.Kind != KindUserSpeak {
		return Reply{}, nil
	}
	text := r.Text
	if strings.TrimSpace(text) == "" && len(r.Data) > 0 {
		text = string(r.Data)
	}
	if strings.TrimSpace(text) == "" {
		return Reply{}, nil
	}
	body, err := json.Marshal(chatRequest{Model: o.model, Messages: o.messages(r, text)})
	if err != nil {
		return Reply{}, permanent("cannot encode the chat request")
	}
	status, resp, err := o.call.post(ctx, o.endpoint, body, func(h http.Header) {
		if o.auth != "" {
			h["Authorization"] = []string{o.auth}
		}
	})
	if err != nil {
		return Reply{}, err
	}
	if serr := o.call.statusError(status, resp); serr != nil {
		return Reply{}, serr
	}
	return parseChat(resp)
}

// parseChat speaks choices[0].message.content; an empty or null content is an empty Reply.
func parseChat(body []byte) (Reply, error) {
	if len(body) > MaxReplyBytes {
		return Reply{}, permanent(fmt.Sprintf("agent reply exceeds %d KiB", MaxReplyBytes>>10))
	}
	var cr chatResponse
	if err := json.Unmarshal(body, &cr); err != nil {
		return Reply{}, permanent("agent reply is not a chat completion")
	}
	if len(cr.Choices) == 0 {
		return Reply{}, permanent("agent reply has no choices")
	}
	c := cr.Choices[0].Message.Content
	if c == nil || strings.TrimSpace(*c) == "" {
		return Reply{}, nil
	}
	if len(*c) > MaxTextBytes {
		return Reply{}, permanent(fmt.Sprintf("agent reply text longer than %d KiB", MaxTextBytes>>10))
	}
	return Reply{Actions: []Action{{Type: ActionSpeak, Text: *c}}}, nil
}
