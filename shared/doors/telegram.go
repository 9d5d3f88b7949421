package doors

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookgate/hookgate/shared/apierr"
	"github.com/hookgate/hookgate/shared/normalize"
	"github.com/hookgate/hookgate/shared/queue"
)

// ChannelTelegram is the channel of Telegram threads (their external id is the chat id) and the
// source of the messages the Telegram door queues; no other door may use it.
const ChannelTelegram = "telegram"

type tgMessage struct {
	Chat struct {
		ID int64 `json:"id"`
	} `json:"chat"`
	From *struct {
		ID       int64  `json:"id"`
		Username string `json:"username"`
	} `json:"from"`
	Text string `json:"text"`
}

// Telegram handles POST /v1/inbound/telegram: a native Update, proven by the
// X-Telegram-Bot-Api-Secret-Token set with setWebhook. A text message becomes a message on the
// chat's thread and starts a run; any other update is recorded as the event telegram.<kind>.
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
	first, resend, err := d.claim(ctx, ws, scope, key)
	if err != nil || !resend {
		return Accepted{}, err
	}
	now := d.now().UTC()
	m := queue.Inbound{
		Version: queue.InboundVersion, WorkspaceID: ws, MessageID: d.cfg.IDs.Derive("msg", ws, scope, key),
		Source: ChannelTelegram, TelegramSource: source, ReceivedAt: now,
	}
	acc := Accepted{Accepted: first}
	var msg tgMessage
	if kind == "message" && json.Unmarshal(top["message"], &msg) == nil && msg.Text != "" && msg.Chat.ID != 0 {
		m.Channel, m.ExternalID, m.Text = ChannelTelegram, strconv.FormatInt(msg.Chat.ID, 10), msg.Text
		if msg.From != nil {
			m.User = msg.From.Username
			if m.User == "" {
				m.User = strconv.FormatInt(msg.From.ID, 10)
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
	if err := d.send(ctx, &m, ws, first, dedupeKey{scope, key}); err != nil {
		return Accepted{}, err
	}
	return acc, nil
}
