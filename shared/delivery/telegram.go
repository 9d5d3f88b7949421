package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/store"
	"github.com/hookgate/hookgate/shared/telegram"
)

// Bot sends a text to a chat through the Bot API, with one bot's token, and answers the press of
// an inline button (a callback query).
type Bot interface {
	SendMessage(ctx context.Context, chatID, text string) error
	AnswerCallbackQuery(ctx context.Context, id string) error
}

// BotFinder finds the bot a workspace's Telegram source replies with: nil when it has none.
type BotFinder interface {
	Bot(ctx context.Context, ws, source string) (Bot, error)
}

// ErrNoBot is the reason a reply of a source without a bot token fails.
const ErrNoBot = "no Telegram bot token is configured for this source"

// TelegramSender is how Config.Telegram sends: the payload is the {"chat_id","text","source",
// "callback_query_id"?} the fan-out stored, sent with the bot of the workspace's Telegram source that
// received the update. A reply to an inline button's press answers its callback query first
// (answerCallbackQuery, best effort: a query Telegram deems too old is no reason to hold the reply
// back). Telegram's refusals of the message itself are permanent, its throttling and outages are retried
// (honouring retry_after), unless a long text's first parts were sent already: a retry would send
// them twice, so that failure is final.
func TelegramSender(bots BotFinder) func(ctx context.Context, ws string, payload []byte) outbound.Result {
	return func(ctx context.Context, ws string, payload []byte) outbound.Result {
		var m struct {
			ChatID          string `json:"chat_id"`
			Text            string `json:"text"`
			Source          string `json:"source"`
			CallbackQueryID string `json:"callback_query_id"`
		}
		if err := json.Unmarshal(payload, &m); err != nil || m.ChatID == "" || m.Text == "" {
			return outbound.Result{Err: "invalid telegram payload", Permanent: true}
		}
		if m.Source == "" {
			m.Source = "telegram" // queued before replies named their source
		}
		bot, err := bots.Bot(ctx, ws, m.Source)
		switch {
		case err != nil:
			return outbound.Result{Err: outbound.FailOther} // the source could not be read: retried
		case bot == nil:
			return outbound.Result{Err: ErrNoBot, Permanent: true}
		}
		start := time.Now()
		if m.CallbackQueryID != "" {
			_ = bot.AnswerCallbackQuery(ctx, m.CallbackQueryID) // stops the button's spinner; best effort
		}
		err = bot.SendMessage(ctx, m.ChatID, m.Text)
		res := outbound.Result{Latency: time.Since(start)}
		var te *telegram.Error
		switch {
		case err == nil:
			res.StatusCode = 200
		case errors.As(err, &te):
			res.Err, res.RetryAfter, res.Permanent = te.Reason, te.RetryAfter, !te.Retryable || te.Sent > 0
		default:
			res.Err = outbound.FailOther
		}
		return res
	}
}

// Bots finds a Telegram source's bot: the source's own bot token when it holds one, else, in the
// default workspace only, the stack's TelegramBotToken. Tokens never leave it (errors, logs).
type Bots struct {
	sources interface {
		GetSource(ctx context.Context, ws, name string) (store.Source, error)
	}
	defaultWS string
	stack     Bot // nil without a stack token
	newBot    func(token string) (Bot, error)

	mu    sync.Mutex
	cache map[string]Bot // by token
}

// NewBots returns Bots. stack is the default workspace's bot (nil for none); newBot makes a
// client for a source's token.
func NewBots(sources interface {
	GetSource(ctx context.Context, ws, name string) (store.Source, error)
}, defaultWS string, stack Bot, newBot func(token string) (Bot, error)) *Bots {
	return &Bots{sources: sources, defaultWS: defaultWS, stack: stack, newBot: newBot, cache: map[string]Bot{}}
}

// Bot returns the bot of the workspace's Telegram source, nil when it has none, or an error when
// the source could not be read.
func (b *Bots) Bot(ctx context.Context, ws, source string) (Bot, error) {
	src, err := b.sources.GetSource(ctx, ws, source)
	if err != nil && apierr.CodeOf(err) != apierr.NotFound {
		return nil, err
	}
	if err == nil && src.BotToken != "" {
		return b.client(src.BotToken)
	}
	if ws == b.defaultWS && b.stack != nil {
		return b.stack, nil
	}
	return nil, nil
}

func (b *Bots) client(token string) (Bot, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.cache[token]; ok {
		return c, nil
	}
	c, err := b.newBot(token)
	if err != nil {
		return nil, nil // a token the client cannot use: no bot (its error names no token)
	}
	b.cache[token] = c
	return c, nil
}
