package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/hookgate/hookgate/shared/outbound"
	"github.com/hookgate/hookgate/shared/telegram"
)

// TelegramSender is how Config.Telegram sends with a Bot API client: the payload is the
// {"chat_id","text","callback_query_id"?} the fan-out stored. A reply to an inline button's press
// answers its callback query first (answerCallbackQuery, best effort: a query Telegram deems too
// old is no reason to hold the reply back); Telegram's refusals of the message itself are permanent,
// its throttling and outages are retried (honouring retry_after), unless a long text's first
// parts were sent already: a retry would send them twice, so that failure is final.
func TelegramSender(c interface {
	SendMessage(ctx context.Context, chatID, text string) error
	AnswerCallbackQuery(ctx context.Context, id string) error
}) func(ctx context.Context, payload []byte) outbound.Result {
	return func(ctx context.Context, payload []byte) outbound.Result {
		var m struct {
			ChatID          string `json:"chat_id"`
			Text            string `json:"text"`
			CallbackQueryID string `json:"callback_query_id"`
		}
		if err := json.Unmarshal(payload, &m); err != nil || m.ChatID == "" || m.Text == "" {
			return outbound.Result{Err: "invalid telegram payload", Permanent: true}
		}
		start := time.Now()
		if m.CallbackQueryID != "" {
			_ = c.AnswerCallbackQuery(ctx, m.CallbackQueryID) // stops the button's spinner; best effort
		}
		err := c.SendMessage(ctx, m.ChatID, m.Text)
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
