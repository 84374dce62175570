package topology

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

// ServeSource starts a server in namespace n (usually tp.Dest) on port (tcp or udp,
// both families) that answers every connection or datagram with the source address it
// saw, one line. The test asserts on that line: it is what a whitelisting firewall sees.
func ServeSource(t testing.TB, n ns.NetNS, network string, port int) {
	t.Helper()
	addr := fmt.Sprintf(":%d", port)
	switch network {
	case "tcp":
		var ln net.Listener
		must(t, "tcp server", n.Do(func(ns.NetNS) (err error) {
			ln, err = net.Listen("tcp", addr)
			return err
		}))
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				fmt.Fprintf(c, "%s\n", c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap())
				c.Close()
			}
		}()
	case "udp":
		var pc net.PacketConn
		must(t, "udp server", n.Do(func(ns.NetNS) (err error) {
			pc, err = net.ListenPacket("udp", addr)
			return err
		}))
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 1500)
			for {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo([]byte(from.(*net.UDPAddr).AddrPort().Addr().Unmap().String()+"\n"), from)
			}
		}()
	default:
		t.Fatalf("ServeSource: unsupported network %q", network)
	}
}

// AskSource connects from namespace n to addr ("host:port") over network (tcp or udp)
// and returns the source address the destination server reported.
func AskSource(n ns.NetNS, network, addr string) (string, error) {
	var conn net.Conn
	err := n.Do(func(ns.NetNS) (err error) {
		d := net.Dialer{Timeout: 3 * time.Second}
		conn, err = d.DialContext(context.Background(), network, addr)
		return err
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
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
