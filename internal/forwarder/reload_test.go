package forwarder

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/egress-router/egress-router/test/serve"
	"github.com/egress-router/egress-router/test/wait"
)

func TestApplyKeepsOpenConnectionsAndAppliesAddedChangedRemovedLines(t *testing.T) {
	a, b, c := server(t, "a"), server(t, "b"), server(t, "c")
	f := &Forwarder{}
	start(t, f, cfg(t, fmt.Sprintf("7101 127.0.0.1 %d", a), fmt.Sprintf("7102 127.0.0.1 %d", b)))
	onRemoved, onChanged := dial(t, f, 7101), dial(t, f, 7102)
	if onRemoved.line(t) != "a 127.0.0.1" || onChanged.line(t) != "b 127.0.0.1" {
		t.Fatal("wrong servers before the reload")
	}

	if err := f.SetRules(cfg(t, fmt.Sprintf("7102 127.0.0.1 %d", c), fmt.Sprintf("7103 127.0.0.1 %d", a))); err != nil {
		t.Fatal(err)
	}
	onRemoved.roundTrip(t, "the removed line's connection carries on")
	onChanged.roundTrip(t, "the changed line's connection keeps its old destination")
	if _, err := net.DialTimeout("tcp", net.JoinHostPort(f.ListenAddr, "7101"), time.Second); err == nil {
		t.Fatal("the removed line still accepts")
	}
	if got := dial(t, f, 7102).line(t); got != "c 127.0.0.1" {
		t.Fatalf("changed line: new connection reached %q, want c", got)
	}
	if got := dial(t, f, 7103).line(t); got != "a 127.0.0.1" {
		t.Fatalf("added line: new connection reached %q, want a", got)
	}
}

func TestApplyThatCannotListenChangesNothing(t *testing.T) {
	a, b := server(t, "a"), server(t, "b")
	f := &Forwarder{}
	start(t, f, cfg(t, fmt.Sprintf("7111 127.0.0.1 %d", a)))
	taken, err := net.Listen("tcp", net.JoinHostPort(f.ListenAddr, "7113"))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	err = f.SetRules(cfg(t, fmt.Sprintf("7111 127.0.0.1 %d", b), fmt.Sprintf("7112 127.0.0.1 %d", b), fmt.Sprintf("7113 127.0.0.1 %d", b)))
	if err == nil || !strings.Contains(err.Error(), "7113") {
		t.Fatalf("got %v, want an error naming the line that cannot listen", err)
	}
	if got := dial(t, f, 7111).line(t); got != "a 127.0.0.1" {
		t.Fatalf("after a refused apply the line goes to %q, want the old destination a", got)
	}
	if _, err := net.DialTimeout("tcp", net.JoinHostPort(f.ListenAddr, "7112"), time.Second); err == nil {
		t.Fatal("a line of the refused configuration is listening")
	}
	if err := f.SetRules(cfg(t)); err == nil {
		t.Fatal("a configuration without lines was applied")
	}
}

func TestShutdownStopsAcceptingAndLetsConnectionsFinish(t *testing.T) {
	f := &Forwarder{ListenAddr: listenAddr()}
	if err := f.SetRules(cfg(t, fmt.Sprintf("7121 127.0.0.1 %d", server(t, "a")))); err != nil {
		t.Fatal(err)
	}
	open := dial(t, f, 7121)
	open.line(t)
	cut := shutdown(f)
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(f.ListenAddr, "7121"), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting after Shutdown")
		}
	}
	open.roundTrip(t, "still relayed while draining")
	open.Conn.(*net.TCPConn).CloseWrite()
	if rest, err := io.ReadAll(open.r); err != nil || len(rest) != 0 {
		t.Fatalf("end of the drained connection: %q, %v", rest, err)
	}
	noneCut(t, cut)
}

// shutdown runs f.Shutdown with a 5-second grace period in the background; the
// channel gives how many connections it cut.
func shutdown(f *Forwarder) <-chan int {
	cut := make(chan int, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cut <- f.Shutdown(ctx)
	}()
	return cut
}

// noneCut expects the Shutdown behind cut to return well within its grace period,
// having cut nothing: every connection ended on its own.
func noneCut(t *testing.T, cut <-chan int) {
	t.Helper()
	select {
	case n := <-cut:
		if n != 0 {
			t.Fatalf("cut %d connections that finished on their own", n)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Shutdown did not return once the last connection ended")
	}
}

func TestShutdownCutsWhatIsLeftAfterTheGracePeriod(t *testing.T) {
	f := &Forwarder{ListenAddr: listenAddr()}
	if err := f.SetRules(cfg(t, fmt.Sprintf("7131 127.0.0.1 %d", server(t, "a")))); err != nil {
		t.Fatal(err)
	}
	open := dial(t, f, 7131)
	open.line(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	if cut := f.Shutdown(ctx); cut != 1 {
		t.Fatalf("cut %d connections, want 1", cut)
	}
	if took := time.Since(began); took < 200*time.Millisecond || took > 2*time.Second {
		t.Fatalf("shutdown took %s with a 200ms grace period", took)
	}
	if _, err := io.ReadAll(open.r); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("after the cut: %v", err)
	}
}

// A connection still connecting its upstream when the grace period ends is cut like
// the others, and is no dial error: the destination did not fail, the proxy stopped.
func TestShutdownCutWhileConnectingIsNoDialError(t *testing.T) {
	f := &Forwarder{ListenAddr: listenAddr()}
	if err := f.SetRules(cfg(t, fmt.Sprintf("7132 127.0.0.1 %d", serve.Silent(t, "127.0.0.1").Port()))); err != nil {
		t.Fatal(err)
	}
	dial(t, f, 7132)
	wait.For(t, 3*time.Second, "the relay connecting the upstream", func() bool {
		f.inFlight.mu.Lock()
		defer f.inFlight.mu.Unlock()
		for _, s := range f.inFlight.relayed {
			if s != nil {
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if cut := f.Shutdown(ctx); cut != 1 {
		t.Fatalf("cut %d connections, want the one connecting", cut)
	}
	if n := metric(t, f, "egress_dns_proxy_dial_errors_total"); n != 0 {
		t.Fatalf("%v dial errors counted for a connection cut while connecting, want 0", n)
	}
}

// When the server answers and closes first, the client's direction ends last and
// finishes the connection's accounting (relay.RunThen, on the relay's own goroutine):
// the active gauge goes back to zero, both byte counts are added, and Shutdown finds
// nothing left to wait for or cut.
func TestClientEndingLastFinishesTheConnection(t *testing.T) {
	port := serve.Local(t, "127.0.0.1:0", func(c net.Conn) {
		io.WriteString(c, "hello\n")
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
	}).Port()
	f := &Forwarder{ListenAddr: listenAddr()}
	if err := f.SetRules(cfg(t, fmt.Sprintf("7141 127.0.0.1 %d", port))); err != nil {
		t.Fatal(err)
	}
	cl := dial(t, f, 7141)
	if got := cl.line(t); got != "hello" {
		t.Fatalf("server said %q", got)
	}
	if _, err := cl.r.ReadByte(); err != io.EOF {
		t.Fatalf("after the answer: %v, want the server's FIN passed on", err)
	}
	if active := metric(t, f, "egress_dns_proxy_connections_active"); active != 1 {
		t.Fatalf("%v connections active while the client still sends, want 1", active)
	}
	io.WriteString(cl, "more")
	cl.Conn.(*net.TCPConn).CloseWrite()
	for deadline := time.Now().Add(5 * time.Second); metric(t, f, "egress_dns_proxy_connections_active") != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the connection is still counted active after both sides ended")
		}
	}
	if sent, received := metric(t, f, "egress_dns_proxy_sent_bytes_total"), metric(t, f, "egress_dns_proxy_received_bytes_total"); sent != 4 || received != 6 {
		t.Fatalf("counted %v bytes sent, %v received; want 4 and 6", sent, received)
	}
	noneCut(t, shutdown(f))
}
