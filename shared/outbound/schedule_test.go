package outbound

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	s, m, h := time.Second, time.Minute, time.Hour
	def := Schedule{0, 5 * s, 5 * m, 30 * m, 2 * h, 5 * h, 10 * h, 10 * h}
	tests := []struct {
		in      string
		want    Schedule
		wantErr string // substring of the error; "" for success
	}{
		{"default", def, ""},
		{" default ", def, ""},
		{ScheduleDefault, def, ""},
		{"simple", Schedule{0, s, 5 * s}, ""},
		{"0s", Schedule{0}, ""},
		{"1m30s, 2h ,0s", Schedule{90 * s, 2 * h, 0}, ""},
		{"24h", Schedule{24 * h}, ""},
		{strings.Repeat("1s,", 49) + "1s", slices.Repeat(Schedule{s}, 50), ""},
		{strings.Repeat("1s,", 50) + "1s", nil, "51 entries"},
		{"", nil, `entry 1: "" is not a duration`},
		{"0s,,5s", nil, "entry 2"},
		{"5", nil, "entry 1"},
		{"-1s", nil, "outside"},
		{"24h1ns", nil, "outside"},
		{"Default", nil, "entry 1"},
		{"5x,-5s", nil, "entry 2"}, // every bad entry is reported
	}
	for _, tt := range tests {
		got, err := ParseSchedule(tt.in)
		if tt.wantErr != "" {
			if err == nil || !errors.Is(err, ErrBadSchedule) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSchedule(%q) error = %v, want ErrBadSchedule containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseSchedule(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestScheduleTotals(t *testing.T) {
	def, _ := ParseSchedule("default")
	if got, want := def.Total(), 27*time.Hour+35*time.Minute+5*time.Second; got != want {
		t.Errorf("default total = %s, want %s (about 27.6 h)", got, want)
	}
	if def.MaxAttempts() != 8 {
		t.Errorf("default attempts = %d, want 8", def.MaxAttempts())
	}
	simple, _ := ParseSchedule("simple")
	if simple.MaxAttempts() != 3 || simple.Total() != 6*time.Second {
		t.Errorf("simple = %v", simple)
	}
	back, err := ParseSchedule(def.String())
	if err != nil || !slices.Equal(back, def) {
		t.Errorf("String() %q does not round-trip: %v, %v", def.String(), back, err)
	}
}

func TestScheduleNext(t *testing.T) {
	s := Schedule{0, time.Second, 5 * time.Second}
	const limit = time.Minute
	tests := []struct {
		name       string
		attempt    int
		retryAfter time.Duration
		maxRA      time.Duration
		want       time.Duration
		wantOK     bool
	}{
		{"first attempt at once", 0, 0, limit, 0, true},
		{"after the first failure", 1, 0, limit, time.Second, true},
		{"after the second failure", 2, 0, limit, 5 * time.Second, true},
		{"exhausted", 3, 0, limit, 0, false},
		{"far past the end", 99, 0, limit, 0, false},
		{"negative attempt", -1, 0, limit, 0, false},
		{"retry-after longer wins", 1, 30 * time.Second, limit, 30 * time.Second, true},
		{"retry-after shorter never shortens", 2, time.Second, limit, 5 * time.Second, true},
		{"retry-after capped", 1, time.Hour, limit, limit, true},
		{"retry-after ignored without a cap", 1, time.Hour, 0, time.Second, true},
		{"negative retry-after ignored", 1, -time.Hour, limit, time.Second, true},
		{"retry-after does not extend the schedule", 3, time.Second, limit, 0, false},
	}
	for _, tt := range tests {
		got, ok := s.Next(tt.attempt, tt.retryAfter, tt.maxRA)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("%s: Next(%d, %s, %s) = %s, %v; want %s, %v",
				tt.name, tt.attempt, tt.retryAfter, tt.maxRA, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2015, 10, 21, 7, 28, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"120", 2 * time.Minute, true},
		{" 0 ", 0, true},
		{"Wed, 21 Oct 2015 07:28:30 GMT", 30 * time.Second, true},                             // IMF-fixdate
		{"Wednesday, 21-Oct-15 07:29:00 GMT", time.Minute, true},                              // RFC 850
		{"Wed Oct 21 07:30:00 2015", 2 * time.Minute, true},                                   // asctime
		{"Wed, 21 Oct 2015 07:00:00 GMT", 0, true},                                            // in the past
		{"99999999999999999999999", time.Duration(1<<63-1) / time.Second * time.Second, true}, // saturates
		{"", 0, false},
		{"-5", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{"5s", 0, false},
		{"tomorrow", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"default", "simple", ScheduleDefault, "1s,,2s", "-1s", "24h0m1s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSchedule(in)
		if err != nil {
			return
		}
		if len(s) < 1 || len(s) > MaxScheduleEntries {
			t.Fatalf("%q: %d entries", in, len(s))
		}
		for _, d := range s {
			if d < 0 || d > MaxScheduleDelay {
				t.Fatalf("%q: entry %s out of range", in, d)
			}
		}
		if back, err := ParseSchedule(s.String()); err != nil || !slices.Equal(back, s) {
			t.Fatalf("%q: String %q does not round-trip", in, s.String())
		}
	})
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "Wed, 21 Oct 2015 07:28:30 GMT", "-1", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2015, 10, 21, 7, 28, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, in string) {
		if d, ok := ParseRetryAfter(in, now); d < 0 || (!ok && d != 0) {
			t.Fatalf("%q: %s, %v", in, d, ok)
		}
	})
}
