package queue

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
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
