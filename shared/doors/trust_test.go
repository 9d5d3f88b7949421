package doors

import (
	"testing"

	"github.com/hookgate/hookgate/shared/verify"
)

// Each door accepts the schemes that make sense for it, and none opens the Telegram, trigger or
// binding door.
func TestDoorsAcceptTheirSchemesOnly(t *testing.T) {
	all := []verify.Scheme{verify.SharedSecret, verify.HMACSHA256, verify.StandardWebhooks, verify.Stripe, verify.GitHub, verify.Slack, verify.Telegram, verify.Bearer, verify.None}
	want := map[string][]verify.Scheme{
		doorTelegram: {verify.Telegram},
		doorTrigger:  {verify.HMACSHA256, verify.Bearer},
		doorBinding:  {verify.HMACSHA256, verify.StandardWebhooks, verify.Bearer},
		doorWebhook:  {verify.SharedSecret, verify.HMACSHA256, verify.StandardWebhooks, verify.Stripe, verify.GitHub, verify.Slack, verify.Bearer, verify.None},
		"unknown":    nil,
	}
	for door, schemes := range want {
		var got []verify.Scheme
		for _, s := range all {
			if accepts(door, s) {
				got = append(got, s)
			}
		}
		if len(got) != len(schemes) {
			t.Errorf("%s accepts %v, want %v", door, got, schemes)
			continue
		}
		for i := range got {
			if got[i] != schemes[i] {
				t.Errorf("%s accepts %v, want %v", door, got, schemes)
			}
		}
	}
}

func TestReservedChannels(t *testing.T) {
	for c, want := range map[string]bool{
		"telegram": true, "TELEGRAM": true, "telegram.x": true, "web": true, "adapter.ops": true, "adapter": true,
		"webhook.stripe": true, "email": false, "zapier": false, "webmail": false, "telegrams": false, "adapters.x": false,
	} {
		if ReservedChannel(c) != want {
			t.Errorf("ReservedChannel(%q) = %v", c, !want)
		}
	}
}
