package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/hookgate/hookgate/shared/apierr"
)

// fakeSQS records what the sender asks of SQS.
type fakeSQS struct{ sent []*sqs.SendMessageInput }

func (f *fakeSQS) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	f.sent = append(f.sent, in)
	return &sqs.SendMessageOutput{}, nil
}

func (f *fakeSQS) SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	panic("not used")
}

// DelaySeconds is the wait rounded up to whole seconds, never before the time asked for, and at
// most SQS's 15 minutes (longer waits are hops).
func TestSendDeliveryDelaySeconds(t *testing.T) {
	for _, c := range []struct {
		delay time.Duration
		want  int32
	}{
		{-time.Second, 0},
		{0, 0},
		{time.Nanosecond, 1},
		{400 * time.Millisecond, 1},
		{time.Second, 1},
		{time.Second + time.Millisecond, 2},
		{5 * time.Second, 5},
		{MaxDelay - 100*time.Millisecond, 900},
		{MaxDelay, 900},
		{MaxDelay + 100*time.Millisecond, 900},
		{10 * time.Hour, 900},
	} {
		api := &fakeSQS{}
		s := NewDeliverySender(api, "https://sqs.us-east-1.amazonaws.com/000000000000/DeliveryQueue")
		if err := s.SendDelivery(context.Background(), Delivery{WorkspaceID: "ws", DeliveryID: "dlv_1", Attempt: 2}, c.delay); err != nil {
			t.Fatal(err)
		}
		in := api.sent[0]
		if in.DelaySeconds != c.want {
			t.Errorf("delay %s: DelaySeconds %d, want %d", c.delay, in.DelaySeconds, c.want)
		}
		var m Delivery
		if err := json.Unmarshal([]byte(*in.MessageBody), &m); err != nil || m.Version != DeliveryVersion || m.DeliveryID != "dlv_1" || m.Attempt != 2 {
			t.Errorf("body %s: %+v %v", *in.MessageBody, m, err)
		}
	}
}

// JSONLen is exactly what Marshal makes of a string, for every kind of character.
func TestJSONLenIsTheEncodedLength(t *testing.T) {
	for _, s := range []string{"", "plain", `"quoted" \back`, "<a href='x'>&amp;</a>", "line\nbreak\ttab\r", "\x00\x01\x1f",
		"héllo 世界 🎉", "\u2028\u2029", "bad \xff\xfe utf8", "\uFFFD kept", strings.Repeat("<", 1000)} {
		b, err := Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := JSONLen(s), len(b)-2; got != want {
			t.Errorf("JSONLen(%q) = %d, encoded %d (%s)", s, got, want, b)
		}
	}
}

// sqsRefuses is SQS's own character rule, written out apart from SQSAllowed.
func sqsRefuses(body string) bool {
	for _, r := range body {
		ok := r == 0x9 || r == 0xA || r == 0xD || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
		if !ok {
			return true
		}
	}
	return !utf8.ValidString(body)
}

// strictSQS refuses bodies as SQS does, whatever an emulator accepts.
type strictSQS struct{ fakeSQS }

func (f *strictSQS) SendMessage(ctx context.Context, in *sqs.SendMessageInput, o ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if sqsRefuses(*in.MessageBody) {
		return nil, &smithy.GenericAPIError{Code: "InvalidMessageContents", Message: "Invalid characters found"}
	}
	return f.fakeSQS.SendMessage(ctx, in, o...)
}

// Every text a sender may send (SQS-forbidden characters included) is queued in a body SQS
// accepts and comes back from it as sent; a body that is not UTF-8 is refused before SQS, and an
// SQS refusal is a 400, an outage a 503.
func TestSendInboundKeepsEveryCharacter(t *testing.T) {
	for _, text := range []string{"plain", "\uffff", "\ufffe end", "\x00\x01\x1b\x7f", "tab\tnl\ncr\r", "\ud7ff\ue000\ufffd\U0010ffff", "<&>\u2028"} {
		api := &strictSQS{}
		m := &Inbound{Version: InboundVersion, MessageID: "msg_1", ThreadID: "thr_1", Text: text, Data: json.RawMessage(`{"k":"` + text + `"}`),
			Event: &Event{Subject: "s", Type: "t", Data: `{"p":"` + text + `"}`}}
		if strings.ContainsAny(text, "\x00\x01\x1b\t\n\r") {
			m.Data, m.Event.Data = json.RawMessage(`{"k":1}`), `{"p":1}` // raw controls are not JSON
		}
		if err := NewSender(api, "q").SendInbound(context.Background(), m); err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		var got Inbound
		if err := json.Unmarshal([]byte(*api.sent[0].MessageBody), &got); err != nil {
			t.Fatal(err)
		}
		var k, wantK any
		_ = json.Unmarshal(got.Data, &k)
		_ = json.Unmarshal(m.Data, &wantK)
		if got.Text != text || got.Event.Data != m.Event.Data || k == nil || fmt.Sprint(k) != fmt.Sprint(wantK) {
			t.Errorf("%q came back as %q / %s / %q", text, got.Text, got.Data, got.Event.Data)
		}
	}
	m := &Inbound{MessageID: "msg_2", ThreadID: "thr_1", Text: "x", Data: json.RawMessage("{\"k\":\"\xff\"}")}
	err := NewSender(&strictSQS{}, "q").SendInbound(context.Background(), m)
	if !errors.Is(err, ErrRefused) || apierr.CodeOf(SendFailure(err)) != apierr.Invalid {
		t.Fatalf("invalid UTF-8 in data: %v", err)
	}
}

type failingSQS struct {
	fakeSQS
	err error
}

func (f *failingSQS) SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	return nil, f.err
}

func TestSendFailureClassifies(t *testing.T) {
	for _, c := range []struct {
		err  error
		want apierr.Code
	}{
		{&smithy.GenericAPIError{Code: "InvalidMessageContents"}, apierr.Invalid},
		{&smithy.GenericAPIError{Code: "InvalidParameterValue", Message: "Message must be shorter than 1048576 bytes."}, apierr.Invalid},
		{&smithy.GenericAPIError{Code: "ServiceUnavailable"}, apierr.Unavailable},
		{&smithy.GenericAPIError{Code: "ThrottlingException"}, apierr.Unavailable},
		{errors.New("dial tcp: connection refused"), apierr.Unavailable},
	} {
		err := NewSender(&failingSQS{err: c.err}, "q").SendInbound(context.Background(), &Inbound{MessageID: "m", ThreadID: "t"})
		if got := apierr.CodeOf(SendFailure(err)); got != c.want {
			t.Errorf("%v: %s, want %s", c.err, got, c.want)
		}
	}
}

// FuzzSQSBody: whatever valid string Marshal encodes, SQSBody's output holds only characters SQS
// accepts and decodes to the same string; invalid UTF-8 is refused.
func FuzzSQSBody(f *testing.F) {
	for _, s := range []string{"", "hi", "\uffff", "\ufffe\x00", "\xff", "\U0010ffff\ud7ff", "\"\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc, err := Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		body, err := SQSBody(enc)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if sqsRefuses(string(body)) {
			t.Fatalf("%q: body %q would be refused", s, body)
		}
		var back string
		if err := json.Unmarshal(body, &back); err != nil || back != string([]rune(s)) {
			t.Fatalf("%q came back as %q (%v)", s, back, err)
		}
		raw := []byte(`{"r":"` + s + `"}`)
		if _, err := SQSBody(raw); (err != nil) != !utf8.Valid(raw) {
			t.Fatalf("raw %q: %v", raw, err)
		}
	})
}

// ByGroup keeps SQS's order within each message group, and the groups in order of first appearance.
func TestByGroup(t *testing.T) {
	rec := func(id, g string) events.SQSMessage {
		return events.SQSMessage{MessageId: id, Attributes: map[string]string{"MessageGroupId": g}}
	}
	var got [][]string
	for _, g := range ByGroup([]events.SQSMessage{rec("a1", "a"), rec("b1", "b"), rec("a2", "a"), rec("c1", "c"), rec("b2", "b"), rec("a3", "a")}) {
		var ids []string
		for _, r := range g {
			ids = append(ids, r.MessageId)
		}
		got = append(got, ids)
	}
	want := [][]string{{"a1", "a2", "a3"}, {"b1", "b2"}, {"c1"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("groups %v, want %v", got, want)
	}
}

// An ordered delivery goes to the FIFO queue, in its subscription's group, deduplicated by its id
// (a fan-out retry keeps the first send's place), with no delay (SQS refuses one per FIFO message).
// Without a FIFO queue nothing is sent.
func TestSendOrdered(t *testing.T) {
	api := &fakeSQS{}
	const fifo = "https://sqs.us-east-1.amazonaws.com/000000000000/DeliveryFifoQueue.fifo"
	s := NewDeliverySender(api, "https://sqs.us-east-1.amazonaws.com/000000000000/DeliveryQueue")
	if err := s.SendOrdered(context.Background(), Delivery{WorkspaceID: "ws", DeliveryID: "dlv_1"}, "sub_1"); err == nil || len(api.sent) != 0 {
		t.Fatalf("no FIFO queue: err %v, %d sent", err, len(api.sent))
	}
	if err := s.WithOrdered(fifo).SendOrdered(context.Background(), Delivery{WorkspaceID: "ws", DeliveryID: "dlv_1"}, "sub_1"); err != nil {
		t.Fatal(err)
	}
	in := api.sent[0]
	if *in.QueueUrl != fifo || *in.MessageGroupId != "sub_1" || *in.MessageDeduplicationId != "dlv_1" || in.DelaySeconds != 0 {
		t.Fatalf("sent to %s group %s dedup %s delay %d", *in.QueueUrl, *in.MessageGroupId, *in.MessageDeduplicationId, in.DelaySeconds)
	}
	var m Delivery
	if err := json.Unmarshal([]byte(*in.MessageBody), &m); err != nil || m.Version != DeliveryVersion || m.DeliveryID != "dlv_1" || m.Attempt != 0 {
		t.Fatalf("body %s: %+v %v", *in.MessageBody, m, err)
	}
}
