package stack

import "testing"

// HOOKGATE_LOCAL_STREAM_PARTITIONS: unset is one partition; a number from 1 to streamesm's
// MaxPartitions is taken; anything else stops local mode with the variable's name.
func TestStreamPartitionsFromTheEnvironment(t *testing.T) {
	for v, want := range map[string]int{"": 1, "1": 1, "4": 4, "100": 100} {
		if got, err := streamPartitions(v); got != want || err != nil {
			t.Errorf("%q: %d, %v; want %d", v, got, err, want)
		}
	}
	for _, v := range []string{"0", "-1", "101", "four", "4 "} {
		if got, err := streamPartitions(v); err == nil {
			t.Errorf("%q: %d, want an error", v, got)
		}
	}
}
