package dnstest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and unwinds the
// caller, as the real one ends the test, so a failing Start can be observed.
type fatalRecorder struct {
	testing.TB
	fatal string
}

type fatalUnwind struct{}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	panic(fatalUnwind{})
}

// startFails runs Start and returns its fatal message, or "" when it served.
func startFails(t testing.TB, pc net.PacketConn) (msg string) {
	r := &fatalRecorder{TB: t}
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(fatalUnwind); !ok {
				panic(p)
			}
			msg = r.fatal
		}
	}()
	Start(r, pc)
	return ""
}

func TestStartFailsInsteadOfHangingWhenTheServerCannotServe(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc.Close() // serving on a closed socket fails at once
	began := time.Now()
	msg := startFails(t, pc)
	if !strings.Contains(msg, "closed") {
		t.Fatalf("Start on a closed socket: fatal %q, want the serve error", msg)
	}
	if took := time.Since(began); took > startTimeout {
		t.Fatalf("Start took %s to fail", took)
	}
}
