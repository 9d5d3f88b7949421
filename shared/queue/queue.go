// Package queue defines the work items Hookgate carries on SQS and sends them: inbound messages
// go to the FIFO inbound queue grouped by thread, so one thread is handled in order.
package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// InboundVersion is the version of the Inbound layout; the worker refuses others.
const InboundVersion = 1

// Inbound is one accepted inbound message, as queued for the worker. Its ids are fixed before it
// is queued, so the worker's writes are idempotent under redelivery.
type Inbound struct {
	Version     int             `json:"v"`
	WorkspaceID string          `json:"workspace_id"`
	ThreadID    string          `json:"thread_id"`
	MessageID   string          `json:"message_id"`
	RunID       string          `json:"run_id"`
	Source      string          `json:"source"`
	Channel     string          `json:"channel"`
	ExternalID  string          `json:"external_id"`
	Text        string          `json:"text"`
	User        string          `json:"user,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
	ReceivedAt  time.Time       `json:"received_at"`
}

// SendAPI is the part of the SQS client the sender uses.
type SendAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Sender sends inbound messages to the inbound FIFO queue.
type Sender struct {
	api SendAPI
	url string
}

// NewSender returns a Sender for the queue at url.
func NewSender(api SendAPI, url string) *Sender { return &Sender{api: api, url: url} }

// SendInbound queues m with the thread as its message group and the message id as its
// deduplication id, so a retried send within SQS's five-minute window is dropped by SQS itself.
func (s *Sender) SendInbound(ctx context.Context, m *Inbound) error {
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode inbound %s: %w", m.MessageID, err)
	}
	_, err = s.api.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:               &s.url,
		MessageBody:            aws.String(string(body)),
		MessageGroupId:         &m.ThreadID,
		MessageDeduplicationId: &m.MessageID,
	})
	if err != nil {
		return fmt.Errorf("send inbound %s: %w", m.MessageID, err)
	}
	return nil
}
