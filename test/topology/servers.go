package topology

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/egress-router/egress-router/test/serve"
)

// ServeSource starts a server in namespace n (usually tp.Dest) on port (tcp or udp,
// both families) that answers every connection or datagram with the source address it
// saw, one line. The test asserts on that line: it is what a whitelisting firewall sees.
func ServeSource(t testing.TB, n ns.NetNS, network string, port int) {
	t.Helper()
	addr := fmt.Sprintf(":%d", port)
	switch network {
	case "tcp":
		Serve(t, n, "tcp", addr, func(c net.Conn) {
			fmt.Fprintf(c, "%s\n", c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap())
		})
	case "udp":
		serveUDP(t, n, "udp4", addr)
		serveUDP(t, n, "udp6", addr)
	default:
		t.Fatalf("ServeSource: unsupported network %q", network)
	}
}

// Serve accepts connections on addr (network "tcp", "tcp4" or "tcp6") in namespace n
// until the test ends, and hands each to handle on a goroutine of its own; the
// connection is closed when handle returns.
func Serve(t testing.TB, n ns.NetNS, network, addr string, handle func(net.Conn)) {
	t.Helper()
	serve.Conns(Listen(t, n, network, addr), handle)
}

// Listen listens on addr in namespace n; the listener is closed when the test ends.
// Any address of the destination's ranges may be named: they are local routes, not
// assigned addresses, and binding one of their IPv6 addresses needs IPV6_FREEBIND.
func Listen(t testing.TB, n ns.NetNS, network, addr string) net.Listener {
	t.Helper()
	lc := net.ListenConfig{Control: func(network, _ string, c syscall.RawConn) error {
		var err error
		if network == "tcp6" {
			c.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1) })
		}
		return err
	}}
	var ln net.Listener
	must(t, network+" listener on "+addr, n.Do(func(ns.NetNS) (err error) {
		ln, err = lc.Listen(context.Background(), network, addr)
		return err
	}))
	t.Cleanup(func() { ln.Close() })
	return ln
}

// serveUDP answers each datagram from the address it was sent to: the destination
// namespace owns a whole range, and a reply from another address would not match the
// sender's (or the router's NAT) flow.
func serveUDP(t testing.TB, n ns.NetNS, network, addr string) {
	var pc net.PacketConn
	must(t, network+" server", n.Do(func(ns.NetNS) (err error) {
		pc, err = net.ListenPacket(network, addr)
		return err
	}))
	t.Cleanup(func() { pc.Close() })
	var conn replyingConn = v4Conn{ipv4.NewPacketConn(pc)}
	if network == "udp6" {
		conn = v6Conn{ipv6.NewPacketConn(pc)}
	}
	must(t, network+" server", conn.recordDestination())
	go func() {
		buf := make([]byte, 1500)
		for {
			dst, from, err := conn.read(buf)
			if err != nil {
				return
			}
			conn.reply([]byte(from.(*net.UDPAddr).AddrPort().Addr().Unmap().String()+"\n"), dst, from)
		}
	}()
}

// replyingConn reads a datagram with the address it was sent to, and replies from it.
type replyingConn interface {
	recordDestination() error
	read(buf []byte) (dst net.IP, from net.Addr, err error)
	reply(b []byte, src net.IP, to net.Addr)
}

type v4Conn struct{ *ipv4.PacketConn }

func (c v4Conn) recordDestination() error { return c.SetControlMessage(ipv4.FlagDst, true) }
func (c v4Conn) read(buf []byte) (net.IP, net.Addr, error) {
	_, cm, from, err := c.ReadFrom(buf)
	if err != nil || cm == nil {
		return nil, from, err
	}
	return cm.Dst, from, nil
}
func (c v4Conn) reply(b []byte, src net.IP, to net.Addr) {
	_, _ = c.WriteTo(b, &ipv4.ControlMessage{Src: src}, to)
}

type v6Conn struct{ *ipv6.PacketConn }

func (c v6Conn) recordDestination() error { return c.SetControlMessage(ipv6.FlagDst, true) }
func (c v6Conn) read(buf []byte) (net.IP, net.Addr, error) {
	_, cm, from, err := c.ReadFrom(buf)
	if err != nil || cm == nil {
		return nil, from, err
	}
	return cm.Dst, from, nil
}
func (c v6Conn) reply(b []byte, src net.IP, to net.Addr) {
	_, _ = c.WriteTo(b, &ipv6.ControlMessage{Src: src}, to)
}

// AskSource connects from namespace n to addr ("host:port") over network (tcp or udp)
// and returns the source address the destination server reported.
func AskSource(n ns.NetNS, network, addr string) (string, error) {
	return AskSourceFrom(n, network, netip.Addr{}, addr)
}

// AskSourceFrom is AskSource with the local socket bound to from (when valid), as the
// proxies bind the reserved address.
func AskSourceFrom(n ns.NetNS, network string, from netip.Addr, addr string) (string, error) {
	return askSource(n, network, from, addr, 3*time.Second)
}

// AskSourceWithin is AskSource that gives up after within (dial and answer each), for
// a client that retries at a short interval rather than wait on a peer that is gone.
func AskSourceWithin(n ns.NetNS, network, addr string, within time.Duration) (string, error) {
	return askSource(n, network, netip.Addr{}, addr, within)
}

func askSource(n ns.NetNS, network string, from netip.Addr, addr string, within time.Duration) (string, error) {
	var conn net.Conn
	err := n.Do(func(ns.NetNS) (err error) {
		d := net.Dialer{Timeout: within}
		if from.IsValid() {
			if network == "udp" {
				d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0))
			} else {
				d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0))
			}
		}
		conn, err = d.DialContext(context.Background(), network, addr)
		return err
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(within))
	if network == "udp" {
		if _, err := conn.Write([]byte("?")); err != nil {
			return "", err
		}
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read from %s: %w", addr, err)
	}
	return strings.TrimSpace(line), nil
}

// IsRefused reports an error that means the far end (or a firewall) said no, as
// opposed to a timeout.
func IsRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// Echoes reports whether c, a connection to an echo server (through a tunnel, a
// relay), still carries data: msg comes back within three seconds.
func Echoes(c net.Conn, msg string) bool {
	c.SetDeadline(time.Now().Add(3 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		return false
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return err == nil && string(buf) == msg
}
