package doors

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/fields"
	"github.com/hookgate/hookgate/shared/normalize"
	"github.com/hookgate/hookgate/shared/queue"
)

// ChannelTelegram is the channel of Telegram threads (their external id is the chat id) and the
// source of the messages the Telegram door queues; no other door may use it.
const ChannelTelegram = "telegram"

type tgUser struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
}

type tgMessage struct {
	Chat struct {
		ID int64 `json:"id"`
	} `json:"chat"`
	From    *tgUser `json:"from"`
	Text    string  `json:"text"`
	Caption string  `json:"caption"` // a photo's, a document's, …
}

// tgCallbackQuery is a press of an inline keyboard button under one of the bot's messages.
type tgCallbackQuery struct {
	ID      string     `json:"id"`
	From    *tgUser    `json:"from"`
	Message *tgMessage `json:"message"`
	Data    string     `json:"data"`
}

// tgTurn is what of an update starts a run: a chat, a text, who sent it, and the callback query
// to answer. ok is false for updates that start none.
func tgTurn(kind string, raw json.RawMessage) (chat int64, text string, from *tgUser, callbackID string, ok bool) {
	switch kind {
	case "message":
		var msg tgMessage
		if json.Unmarshal(raw, &msg) != nil {
			return 0, "", nil, "", false
		}
		text = msg.Text
		if text == "" {
			text = msg.Caption // a captioned photo or document runs the agent on its caption
		}
		return msg.Chat.ID, text, msg.From, "", msg.Chat.ID != 0 && text != ""
	case "callback_query":
		var cq tgCallbackQuery
		if json.Unmarshal(raw, &cq) != nil || cq.Message == nil || cq.ID == "" {
			return 0, "", nil, "", false
		}
		// The button's data reaches the agent as a message on the chat's thread.
		return cq.Message.Chat.ID, cq.Data, cq.From, cq.ID, cq.Message.Chat.ID != 0 && cq.Data != "" && len(cq.ID) <= 256
	}
	return 0, "", nil, "", false
}

// Telegram handles POST /v1/inbound/telegram: a native Update, proven by the
// X-Telegram-Bot-Api-Secret-Token set with setWebhook. A text message becomes a message on the
// chat's thread and starts a run, and so do a captioned photo or document (on its caption) and
// an inline button's callback_query (on its data; the reply answers the query); any other
// update is recorded as the event telegram.<kind>.
// update_id dedupes. ?workspace_id= picks the workspace (default the stack's), ?source= the
// workspace's Telegram source (default telegram), so one workspace can serve several bots.
func (d *Doors) Telegram(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return d.serve(ctx, "telegram", &req, d.telegram)
}

func (d *Doors) telegram(ctx context.Context, req *events.APIGatewayV2HTTPRequest) (Accepted, error) {
	ws, source := d.workspace(req), strings.TrimSpace(req.QueryStringParameters["source"])
	if source == "" {
		source = "telegram"
	}
	body, _, _, err := d.verified(ctx, req, doorTelegram, ws, source)
	if err != nil {
		return Accepted{}, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return Accepted{}, apierr.New(apierr.Invalid, "body must be a Telegram Update (a JSON object)")
	}
	if err := fields.CheckJSON(body); err != nil {
		return Accepted{}, err
	}
	var updateID int64
	if err := json.Unmarshal(top["update_id"], &updateID); err != nil || updateID <= 0 {
		return Accepted{}, apierr.New(apierr.Invalid, "update_id is required")
	}
	kind := ""
	for k := range top {
		if k != "update_id" && (kind == "" || k < kind) {
			kind = k // an Update carries exactly one optional field; pick deterministically anyway
		}
	}
	if kind == "" {
		return Accepted{}, apierr.New(apierr.Invalid, "the update carries nothing besides update_id")
	}

	key := strconv.FormatInt(updateID, 10)
	scope := ChannelTelegram + ":" + source
	first, resend, admit, err := d.claim(ctx, ws, scope, key)
	if err != nil || !resend {
		return Accepted{}, err
	}
	now := d.now().UTC()
	m := queue.Inbound{
		Version: queue.InboundVersion, WorkspaceID: ws, MessageID: d.cfg.IDs.Derive("msg", ws, scope, key),
		Source: ChannelTelegram, TelegramSource: source, ReceivedAt: now,
	}
	acc := Accepted{Accepted: first}
	if chat, text, from, callbackID, ok := tgTurn(kind, top[kind]); ok {
		m.Channel, m.ExternalID, m.Text, m.CallbackQueryID = ChannelTelegram, strconv.FormatInt(chat, 10), text, callbackID
		if from != nil {
			m.User = from.Username
			if m.User == "" {
				m.User = strconv.FormatInt(from.ID, 10)
			}
		}
		m.ThreadID = d.cfg.IDs.Thread(ws, m.Channel, m.ExternalID)
		m.RunID = d.cfg.IDs.Derive("run", ws, scope, key)
		m.Data = body
		acc.ThreadID, acc.RunID = m.ThreadID, m.RunID
	} else {
		meta, err := json.Marshal(map[string]any{"update_id": updateID, "kind": kind, "source": source})
		if err != nil {
			return Accepted{}, fmt.Errorf("encode update: %w", err)
		}
		data := string(meta[:len(meta)-1]) + `,"update":` + string(body) + "}" // the update byte for byte
		m.Group = d.cfg.IDs.Derive("grp", ws, scope, key)
		m.Event = &queue.Event{Subject: scope + "\x00" + key, Type: "telegram." + normalize.Slug(kind), Data: data}
		acc.Role = m.Event.Type
	}
	if err := d.send(ctx, &m, ws, first, admit, dedupeKey{scope, key}); err != nil {
		return Accepted{}, err
	}
	return acc, nil
}
