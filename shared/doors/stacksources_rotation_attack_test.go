package doors

import "testing"

// InboundSecretPrevious: empty adds no (empty) secret, and alone, with no current secret, it opens
// no door.
func TestStackSourcesPreviousInboundSecret(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		secrets []string
		want    int
	}{
		{[]string{"current-secret-0123", ""}, 1},
		{[]string{"current-secret-0123", "previous-secret-0123"}, 2},
		{[]string{"", "previous-secret-0123"}, 0},
		{[]string{"", ""}, 0},
	} {
		for _, src := range StackSources(c.secrets, "") {
			if src.Name == "telegram" {
				continue
			}
			if len(src.Secrets) != c.want {
				t.Errorf("secrets %q: source %s %s has %d secrets, want %d", c.secrets, src.Name, src.Scheme, len(src.Secrets), c.want)
			}
			for _, s := range src.Secrets {
				if s.Value == "" {
					t.Errorf("secrets %q: source %s %s has an empty secret", c.secrets, src.Name, src.Scheme)
				}
			}
		}
	}
}
