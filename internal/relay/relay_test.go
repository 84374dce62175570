package relay

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pair returns the two ends of a loopback TCP connection.
func pair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialed, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	accepted, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dialed.Close(); accepted.Close() })
	return dialed, accepted
}

// relayed sets up client <-> [relay] <-> server and returns the outer ends.
func relayed(t *testing.T, r Relay) (client, server *net.TCPConn, result <-chan Result) {
	client, proxyFront := pair(t)
	proxyBack, server := pair(t)
	ch := make(chan Result, 1)
	go func() {
		res, _ := r.Run(proxyFront, proxyBack)
		ch <- res
	}()
	return client, server, ch
}

func TestLargeTransferBothWaysByteForByte(t *testing.T) {
	client, server, result := relayed(t, Relay{})
	up := make([]byte, 8<<20)
	down := make([]byte, 5<<20)
	rand.Read(up)
	rand.Read(down)

	gotAtServer := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(server)
		gotAtServer <- b
	}()
	go func() {
		server.Write(down)
		server.CloseWrite()
	}()
	go func() {
		client.Write(up)
		client.CloseWrite()
	}()
	gotAtClient, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotAtClient, down) {
		t.Fatalf("client got %d bytes, not the %d the server sent", len(gotAtClient), len(down))
	}
	if !bytes.Equal(<-gotAtServer, up) {
		t.Fatal("server did not get the client's bytes intact")
	}
	res := <-result
	if res.Sent != int64(len(up)) || res.Received != int64(len(down)) {
		t.Fatalf("counted %+v, want sent %d received %d", res, len(up), len(down))
	}
}

// Small messages go on at once, one by one (they are read and written), and a bulk
// transfer after them (spliced once a read fills a buffer) arrives intact; the counts
// add both up.
func TestSmallMessagesThenBulk(t *testing.T) {
	client, server, result := relayed(t, Relay{})
	buf := make([]byte, 64)
	for i := range 100 {
		msg := fmt.Sprintf("ping %d", i)
		client.Write([]byte(msg))
		n, err := server.Read(buf)
		if err != nil || string(buf[:n]) != msg {
			t.Fatalf("server read %q, %v; want %q", buf[:n], err, msg)
		}
		server.Write([]byte("pong"))
		if _, err := io.ReadFull(client, buf[:4]); err != nil || string(buf[:4]) != "pong" {
			t.Fatalf("client read %q, %v", buf[:4], err)
		}
	}
	bulk := sendBulk(t, server, client, 3<<20, "the client")
	client.CloseWrite()
	if _, err := io.ReadAll(server); err != nil {
		t.Fatal(err)
	}
	res := <-result
	if wantSent, wantReceived := int64(len("ping 0")*10+len("ping 10")*90), int64(4*100+len(bulk)); res.Sent != wantSent || res.Received != wantReceived {
		t.Fatalf("counted %+v, want sent %d received %d", res, wantSent, wantReceived)
	}
}

func TestHalfCloseKeepsTheOtherDirection(t *testing.T) {
	client, server, _ := relayed(t, Relay{})
	client.Write([]byte("request"))
	client.CloseWrite() // the client is done sending, still reading

	req, err := io.ReadAll(server) // ends with the passed-on FIN
	if err != nil || string(req) != "request" {
		t.Fatalf("server read %q, %v", req, err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := server.Write([]byte("response after the client's FIN")); err != nil {
		t.Fatalf("server write after half-close: %v", err)
	}
	server.CloseWrite()
	resp, err := io.ReadAll(client)
	if err != nil || string(resp) != "response after the client's FIN" {
		t.Fatalf("client read %q, %v", resp, err)
	}
}

func TestIdleTimeoutClosesQuietConnections(t *testing.T) {
	client, server, result := relayed(t, Relay{IdleTimeout: 200 * time.Millisecond})
	client.Write([]byte("x"))
	buf := make([]byte, 1)
	if _, err := io.ReadFull(server, buf); err != nil {
		t.Fatal(err)
	}
	select {
	case <-result:
	case <-time.After(5 * time.Second):
		t.Fatal("idle relay not closed")
	}
	client.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := client.Read(buf); err == nil {
		t.Fatal("client connection still open after the idle timeout")
	}
}

func TestNoIdleTimeoutByDefault(t *testing.T) {
	client, server, result := relayed(t, Relay{})
	select {
	case <-result:
		t.Fatal("relay ended on its own")
	case <-time.After(300 * time.Millisecond):
	}
	client.Write([]byte("still here"))
	buf := make([]byte, 10)
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "still here" {
		t.Fatalf("after a quiet period: %q %v", buf, err)
	}
}

// A reply whose end is already queued behind it (a server that answers and closes)
// reaches the client in one segment with the FIN: the client's socket then has
// received two segments, the handshake's SYN-ACK and that one, where the data and a
// FIN of its own would make three.
func TestLastBytesLeaveWithTheFIN(t *testing.T) {
	client, proxyFront := pair(t)
	proxyBack, server := pair(t)
	server.Write([]byte("hello"))
	server.Close()
	waitFor(t, "the server's FIN to reach the relay", func() bool { return tcpInfo(t, proxyBack).State == unix.BPF_TCP_CLOSE_WAIT })
	go Relay{}.Run(proxyFront, proxyBack)

	got, err := io.ReadAll(client)
	if err != nil || string(got) != "hello" {
		t.Fatalf("client read %q, %v", got, err)
	}
	if segs := tcpInfo(t, client).Segs_in; segs != 2 {
		t.Fatalf("client received %d segments, want 2: SYN-ACK, then the data with the FIN", segs)
	}
}

func tcpInfo(t *testing.T, c *net.TCPConn) *unix.TCPInfo {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	if err := raw.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatalf("TCP_INFO: %v", err)
	}
	return info
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// RunThen frees its caller once the upstream-to-client direction has ended, while the
// client still sends; done runs once, after both directions, with both counts.
func TestRunThenReturnsWhenItsDirectionEnds(t *testing.T) {
	client, proxyFront := pair(t)
	proxyBack, server := pair(t)
	server.Write([]byte("bye"))
	server.CloseWrite()
	finished := make(chan Result, 2)
	returned := make(chan struct{})
	go func() {
		Relay{}.RunThen(proxyFront, proxyBack, func(res Result, _ error) { finished <- res })
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("RunThen still running after the upstream-to-client direction ended")
	}
	select {
	case <-finished:
		t.Fatal("done ran while the client's direction was still open")
	default:
	}

	client.Write([]byte("more"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "more" {
		t.Fatalf("server read %q, %v after RunThen returned", buf, err)
	}
	client.CloseWrite()
	select {
	case res := <-finished:
		if res.Sent != 4 || res.Received != 3 {
			t.Fatalf("counted %+v, want sent 4 received 3", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("done not called after both directions ended")
	}
	select {
	case <-finished:
		t.Fatal("done called twice")
	case <-time.After(50 * time.Millisecond):
	}
}

// sendBulk has from send n random bytes and then its FIN, checks that to reads exactly
// those bytes up to the FIN (which the relay passed on), and returns them.
func sendBulk(t *testing.T, from, to *net.TCPConn, n int, who string) []byte {
	t.Helper()
	bulk := make([]byte, n)
	rand.Read(bulk)
	go func() {
		from.Write(bulk)
		from.CloseWrite()
	}()
	got, err := io.ReadAll(to)
	if err != nil || !bytes.Equal(got, bulk) {
		t.Fatalf("%s got %d bytes (%v), not the %d sent", who, len(got), err, len(bulk))
	}
	return bulk
}
