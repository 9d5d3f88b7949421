package sqsesm

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
)

// A watched connection names the code that first closed it; a request's write outcome reads as
// not yet reported until the write loop reports it.
func TestWatchedConnNamesItsCloser(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := watchDial(nil)(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if closedBy(conn) != "" {
		t.Fatal("an open connection names a closer")
	}
	closeHere := func() { _ = conn.Close() }
	closeHere()
	_ = conn.Close() // a second close keeps the first closer
	if s := closedBy(conn); !strings.Contains(s, "TestWatchedConnNamesItsCloser.func1") {
		t.Fatalf("closer:\n%s", s)
	}
	var w wroteRequest
	if w.get() != "not yet reported" {
		t.Fatal(w.get())
	}
	w.set(errors.New("broken pipe"))
	if w.get() != "broken pipe" {
		t.Fatal(w.get())
	}
}
