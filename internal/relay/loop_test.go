package relay

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type outcome struct {
	res Result
	err error
}

// started sets up client <-> [RunThen] <-> server and returns the outer ends, the
// session and what done reports.
func started(t *testing.T, r Relay) (client, server *net.TCPConn, s *Session, ended <-chan outcome) {
	t.Helper()
	client, proxyFront := pair(t)
	proxyBack, server := pair(t)
	ch := make(chan outcome, 2) // 2: a second call would be seen, not block the loop
	s = r.RunThen(proxyFront, proxyBack, func(res Result, err error) { ch <- outcome{res, err} })
	return client, server, s, ch
}

func waitEnded(t *testing.T, ended <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ended:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("the relay did not end")
	}
	panic("unreachable")
}

// Either side may stop sending first; the other keeps sending a bulk stream (spliced)
// after that side's FIN, and it all arrives.
func TestHalfCloseEitherWayWhileTheOtherSendsBulk(t *testing.T) {
	for _, first := range []string{"client", "server"} {
		t.Run(first+" stops sending first", func(t *testing.T) {
			client, server, _, ended := started(t, Relay{})
			quiet, talker := client, server
			if first == "server" {
				quiet, talker = server, client
			}
			quiet.Write([]byte("last words"))
			quiet.CloseWrite()
			got, err := io.ReadAll(talker) // ends with the passed-on FIN
			if err != nil || string(got) != "last words" {
				t.Fatalf("read %q, %v before the FIN", got, err)
			}
			bulk := sendBulk(t, talker, quiet, 4<<20, "after its FIN, "+first)
			o := waitEnded(t, ended)
			if o.err != nil || o.res.Sent+o.res.Received != int64(len("last words")+len(bulk)) {
				t.Fatalf("ended with %+v, %v", o.res, o.err)
			}
		})
	}
}

// A server that never reads: the client's bytes wait in the kernel and the relay (at
// most a pipe and a buffer), none is dropped, and the loops go on relaying other
// sessions meanwhile.
func TestPeerThatNeverReadsHoldsDataAndNotTheLoop(t *testing.T) {
	client, server, _, _ := started(t, Relay{})
	var sent int64
	stalled := make(chan struct{})
	go func() {
		chunk := make([]byte, 64<<10)
		for {
			client.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
			n, err := client.Write(chunk)
			sent += int64(n)
			if err != nil {
				close(stalled) // the whole path is full
				return
			}
		}
	}()
	select {
	case <-stalled:
	case <-time.After(30 * time.Second):
		t.Fatal("the client never blocked: the relay reads what it cannot deliver")
	}
	for i := range 4 * runtime.GOMAXPROCS(0) { // a session on every loop, several times
		c, s, _, _ := started(t, Relay{})
		msg := fmt.Sprintf("ping %d", i)
		c.Write([]byte(msg))
		buf := make([]byte, len(msg))
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != msg {
			t.Fatalf("another session while one is stalled: read %q, %v", buf, err)
		}
	}
	client.CloseWrite()
	n, err := io.Copy(io.Discard, server)
	if err != nil || n != sent {
		t.Fatalf("the server read %d bytes (%v) once it read, of the %d the client wrote", n, err, sent)
	}
}

// Thousands of quiet relayed connections cost no goroutine each and little memory each
// (live heap and stacks: this process's RSS moves with what earlier tests freed), the
// test's own four connections per relay included.
func TestManyIdleConnectionsHoldNoGoroutine(t *testing.T) {
	const n = 3000 // 4 descriptors each in this process (the hard limit here is 20000)
	pairs := make([][2]*net.TCPConn, 0, n)
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dial := func() (*net.TCPConn, *net.TCPConn) {
		d, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
		if err != nil {
			t.Fatal(err)
		}
		a, err := ln.AcceptTCP()
		if err != nil {
			t.Fatal(err)
		}
		return d, a
	}
	var wg sync.WaitGroup
	ended := make(chan error, n)
	goroutines, mem := runtime.NumGoroutine(), liveBytes()
	for range n {
		client, front := dial()
		back, server := dial()
		pairs = append(pairs, [2]*net.TCPConn{client, server})
		wg.Add(1)
		Relay{IdleTimeout: time.Hour}.RunThen(front, back, func(_ Result, err error) { ended <- err; wg.Done() })
	}
	// Every session carries one message, so each has been through its loop.
	for i, p := range pairs {
		p[0].Write([]byte{byte(i)})
	}
	buf := make([]byte, 1)
	for i, p := range pairs {
		p[1].SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(p[1], buf); err != nil || buf[0] != byte(i) {
			t.Fatalf("session %d: read %v, %v", i, buf, err)
		}
	}
	grown, perConn := runtime.NumGoroutine()-goroutines, (liveBytes()-mem)/n
	t.Logf("%d relayed connections held: %d goroutines more, %d bytes of heap and stacks each (this process's own connections included)", n, grown, perConn)
	if grown > 2*runtime.GOMAXPROCS(0)+16 {
		t.Fatalf("%d goroutines more for %d quiet connections: the relay keeps goroutines per connection", grown, n)
	}
	if perConn > 4<<10 {
		t.Fatalf("%d bytes of heap and stacks per held connection", perConn)
	}
	for _, p := range pairs {
		p[0].Close()
		p[1].Close()
	}
	wg.Wait()
	close(ended)
	for err := range ended {
		if err != nil && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("a session ended with %v", err)
		}
	}
}

// liveBytes is the heap in use and the goroutines' stacks, after a collection.
func liveBytes() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

// Out of descriptors (RLIMIT_NOFILE reached, in a child process): a new relay ends at
// once with the error and both its connections closed; a relay under way goes on
// without a pipe (through the loop's buffer); once descriptors are free again new
// relays work, and nothing was left open.
func TestOutOfDescriptors(t *testing.T) {
	if os.Getenv("RELAY_OUT_OF_DESCRIPTORS") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestOutOfDescriptors$", "-test.v")
		cmd.Env = append(os.Environ(), "RELAY_OUT_OF_DESCRIPTORS=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	client, server, _, ended := started(t, Relay{}) // the loops start here
	lateClient, lateFront := pair(t)
	lateBack, lateServer := pair(t)
	baseline := openDescriptors(t)

	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
		t.Fatal(err)
	}
	lowered := limit
	lowered.Cur = uint64(baseline + 64)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	var fillers []int
	fill := func() { // takes every descriptor left
		for {
			fd, err := syscall.Dup(0)
			if err != nil {
				return
			}
			fillers = append(fillers, fd)
		}
	}
	fill()

	lateEnded := make(chan outcome, 1)
	Relay{}.RunThen(lateFront, lateBack, func(res Result, err error) { lateEnded <- outcome{res, err} })
	if o := waitEnded(t, lateEnded); !errors.Is(o.err, syscall.EMFILE) {
		t.Fatalf("a relay started without descriptors ended with %v, want EMFILE", o.err)
	}
	for _, c := range []*net.TCPConn{lateClient, lateServer} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("an end of the relay that could not start is still open: %v", err)
		}
	}

	fill() // the two the failed relay freed
	// Bulk: it would be spliced, had the loop a pipe.
	bulk := sendBulk(t, server, client, 2<<20, "without descriptors for a pipe, the client")
	client.CloseWrite()
	if o := waitEnded(t, ended); o.err != nil || o.res.Received != int64(len(bulk)) {
		t.Fatalf("the relay under way ended with %+v, %v", o.res, o.err)
	}

	for _, fd := range fillers {
		syscall.Close(fd)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
		t.Fatal(err)
	}
	c, s, _, _ := started(t, Relay{})
	c.Write([]byte("again"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "again" {
		t.Fatalf("after descriptors came back: read %q, %v", buf, err)
	}
	c.Close()
	s.Close()
	// What stays open is what was open, less what ended: the bulk relay's two sockets
	// and this test's ends of it, the failed relay's two connections. The last relay
	// left nothing either.
	client.Close()
	server.Close()
	waitFor(t, "the descriptors to be closed", func() bool { return openDescriptors(t) == baseline-6 })
}

func openDescriptors(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// A peer's reset mid-stream ends the relay with the error and closes the other side.
func TestResetMidStreamEndsBothSides(t *testing.T) {
	client, server, _, ended := started(t, Relay{})
	client.Write([]byte("request"))
	buf := make([]byte, 7)
	if _, err := io.ReadFull(server, buf); err != nil {
		t.Fatal(err)
	}
	server.Write(make([]byte, 100<<10))
	server.SetLinger(0)
	server.Close() // a reset
	o := waitEnded(t, ended)
	if !errors.Is(o.err, syscall.ECONNRESET) {
		t.Fatalf("ended with %v, want the reset", o.err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, client); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the client's side is still open after the server's reset")
	}
}

// The idle timeout counts from the last data either way: a connection that talks
// stays, past several timeouts; one that goes quiet is closed.
func TestIdleTimeoutSparesATalkingConnection(t *testing.T) {
	const timeout = 200 * time.Millisecond
	client, server, _, ended := started(t, Relay{IdleTimeout: timeout})
	buf := make([]byte, 1)
	for range 10 {
		time.Sleep(timeout / 4)
		client.Write([]byte("x"))
		if _, err := io.ReadFull(server, buf); err != nil {
			t.Fatalf("a talking connection was cut: %v", err)
		}
	}
	select {
	case o := <-ended:
		t.Fatalf("a talking connection ended: %+v %v", o.res, o.err)
	default:
	}
	if o := waitEnded(t, ended); o.err != nil || o.res.Sent != 10 {
		t.Fatalf("the quiet connection ended with %+v, %v", o.res, o.err)
	}
}

// Close from outside while bulk data flows ends the relay: both sides closed, done
// called once, as an ordinary end.
func TestCloseWhileDataFlows(t *testing.T) {
	client, server, s, ended := started(t, Relay{})
	go func() {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := server.Write(chunk); err != nil {
				return
			}
		}
	}()
	if _, err := io.CopyN(io.Discard, client, 4<<20); err != nil {
		t.Fatal(err)
	}
	s.Close()
	o := waitEnded(t, ended)
	if o.err != nil || o.res.Received < 4<<20 {
		t.Fatalf("ended with %+v, %v", o.res, o.err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, client); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the client's side is still open after Close")
	}
	s.Close() // once more: nothing happens
	select {
	case <-ended:
		t.Fatal("done called twice")
	case <-time.After(50 * time.Millisecond):
	}
}

// Many sessions ending at once while new ones start, which get the socket numbers
// just freed: every new session carries its own bytes only, and each session ends
// exactly once.
func TestManySessionsEndingAtOnceWhileNewOnesReuseTheirNumbers(t *testing.T) {
	const perRound, rounds = 200, 5
	type live struct {
		client, server *net.TCPConn
		ended          <-chan outcome
	}
	var prev []live
	for round := range rounds {
		var wg sync.WaitGroup
		for _, l := range prev { // end the last round's sessions, all at once
			wg.Add(1)
			go func() {
				defer wg.Done()
				if round%2 == 0 {
					l.server.SetLinger(0) // resets, half the rounds
				}
				l.client.Close()
				l.server.Close()
			}()
		}
		next := make([]live, perRound)
		for i := range next {
			c, s, _, e := started(t, Relay{})
			next[i] = live{c, s, e}
		}
		wg.Wait()
		for i, l := range next {
			token := fmt.Sprintf("round %d session %d", round, i)
			l.client.Write([]byte(token))
			buf := make([]byte, len(token))
			l.server.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(l.server, buf); err != nil || string(buf) != token {
				t.Fatalf("%s: the server read %q, %v", token, buf, err)
			}
		}
		for _, l := range prev {
			waitEnded(t, l.ended)
		}
		time.Sleep(20 * time.Millisecond)
		for _, l := range prev {
			select {
			case <-l.ended:
				t.Fatal("done called twice")
			default:
			}
		}
		prev = next
	}
}
