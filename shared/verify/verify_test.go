package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// RFC 4231, test case 2: HMAC-SHA256(key "Jefe", "what do ya want for nothing?").
const (
	rfcKey  = "Jefe"
	rfcData = "what do ya want for nothing?"
	rfcMAC  = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
)

func TestVerifyHMACKnownAnswer(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		header  string
		want    bool
	}{
		{"rfc 4231 vector", []string{rfcKey}, "sha256=" + rfcMAC, true},
		{"upper-case hex", []string{rfcKey}, "sha256=5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843", true},
		{"second secret during rotation", []string{"new-secret-value", rfcKey}, "sha256=" + rfcMAC, true},
		{"wrong key", []string{"jefe"}, "sha256=" + rfcMAC, false},
		{"no prefix", []string{rfcKey}, rfcMAC, false},
		{"sha1 prefix", []string{rfcKey}, "sha1=" + rfcMAC, false},
		{"truncated", []string{rfcKey}, "sha256=" + rfcMAC[:62], false},
		{"not hex", []string{rfcKey}, "sha256=" + "zz" + rfcMAC[2:], false},
		{"one bit off", []string{rfcKey}, "sha256=" + "4" + rfcMAC[1:], false},
		{"empty header", []string{rfcKey}, "", false},
		{"no secrets", nil, "sha256=" + rfcMAC, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewSecrets(tt.secrets...).VerifyHMAC([]byte(rfcData), tt.header); got != tt.want {
				t.Fatalf("VerifyHMAC = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSignHMACMatchesRFC(t *testing.T) {
	if got := NewSecrets(rfcKey).SignHMAC([]byte(rfcData)); got != "sha256="+rfcMAC {
		t.Fatalf("SignHMAC = %s", got)
	}
}

func TestEqual(t *testing.T) {
	s := NewSecrets("old-secret-0123456789", "new-secret-0123456789")
	for presented, want := range map[string]bool{
		"old-secret-0123456789":  true,
		"new-secret-0123456789":  true,
		"old-secret-012345678":   false,
		"old-secret-01234567890": false,
		"":                       false,
	} {
		if got := s.Equal(presented); got != want {
			t.Errorf("Equal(%q) = %v, want %v", presented, got, want)
		}
	}
	if NewSecrets().Equal("") || NewSecrets("").Equal("") {
		t.Fatal("an empty secret must never match")
	}
}

func TestVerifyHMACAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector; make bench and go test without -race check this")
	}
	s := NewSecrets(rfcKey)
	body := []byte(rfcData)
	allocs := testing.AllocsPerRun(100, func() {
		if !s.VerifyHMAC(body, "sha256="+rfcMAC) {
			t.Fatal("verify failed")
		}
	})
	if allocs != 0 {
		t.Fatalf("VerifyHMAC allocates %v times per call", allocs)
	}
}

func FuzzVerifyHMAC(f *testing.F) {
	f.Add([]byte(rfcData), "sha256="+rfcMAC)
	f.Add([]byte("{}"), "sha256=")
	f.Add([]byte(""), "sha256=zz")
	s := NewSecrets(rfcKey)
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		got := s.VerifyHMAC(body, header)
		m := hmac.New(sha256.New, []byte(rfcKey))
		m.Write(body)
		want := len(header) == 71 && hmac.Equal(decodeOrNil(header[7:]), m.Sum(nil)) && header[:7] == "sha256="
		if got != want {
			t.Fatalf("VerifyHMAC(%q) = %v, independent check says %v", header, got, want)
		}
		if !s.VerifyHMAC(body, s.SignHMAC(body)) {
			t.Fatal("a body's own signature does not verify")
		}
	})
}

func decodeOrNil(h string) []byte {
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil
	}
	return b
}
