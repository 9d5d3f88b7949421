package ids

import (
	"testing"
	"time"
)

func TestNewSortsByTimeAndIsValid(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	a, b := New("run", t0), New("run", t0.Add(time.Millisecond))
	if !(a < b) {
		t.Fatalf("%s should sort before %s", a, b)
	}
	if !Valid("run", a) || Valid("msg", a) || Valid("run", a[:len(a)-1]) || Valid("run", a[:len(a)-1]+"U") {
		t.Fatal("Valid disagrees")
	}
	if New("run", t0) == New("run", t0) {
		t.Fatal("two ids in the same millisecond are equal")
	}
}

func TestDerive(t *testing.T) {
	if Derive("msg", "ws", "key") != Derive("msg", "ws", "key") {
		t.Fatal("not deterministic")
	}
	if Derive("msg", "ab", "c") == Derive("msg", "a", "bc") {
		t.Fatal("parts are not separated")
	}
	if !Valid("thr", Derive("thr", "x")) {
		t.Fatal("derived id is not valid")
	}
}

func TestEncodeKnownAnswer(t *testing.T) {
	var zero, ones [16]byte
	for i := range ones {
		ones[i] = 0xff
	}
	if got := encode("x", zero); got != "x_00000000000000000000000000" {
		t.Fatalf("zero = %s", got)
	}
	// 128 one-bits: the first group holds 3 bits (7), the other 25 hold 31 (z).
	if got := encode("x", ones); got != "x_7zzzzzzzzzzzzzzzzzzzzzzzzz" {
		t.Fatalf("ones = %s", got)
	}
}

func TestKeyed(t *testing.T) {
	a, b := NewKeyed("key-a-0123456789"), NewKeyed("key-b-0123456789")
	if a.Derive("run", "ws", "e1") != a.Derive("run", "ws", "e1") {
		t.Fatal("not deterministic")
	}
	if a.Derive("run", "ws", "e1") == b.Derive("run", "ws", "e1") {
		t.Fatal("the key makes no difference")
	}
	if a.Derive("run", "ws", "e1") == Derive("run", "ws", "e1") {
		t.Fatal("keyed equals unkeyed: guessable")
	}
	if a.Thread("ws", "c", "x") != a.Derive("thr", "ws", "c", "x") || !Valid("thr", a.Thread("ws", "c", "x")) {
		t.Fatal("Thread disagrees")
	}
	if a.Derive("msg", "ab", "c") == a.Derive("msg", "a", "bc") {
		t.Fatal("parts are not separated")
	}
}
