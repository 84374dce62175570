package nat

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

// pathTopology is the smallest network redirect mode works in:
//
//	client 10.1.0.2 ──veth── 10.1.0.1 eth0  router  net1 192.0.2.99 ──veth── 192.0.2.1 dest
//	                                                                      203.0.113.25 on lo
//
// The client's default route is the router; the router reaches 203.0.113.0/24 via
// dest; dest has no route back to 10.1.0.0/24, so a reply only arrives when the router
// SNATed the connection to 192.0.2.99.
type pathTopology struct {
	client, router, dest ns.NetNS
}

func newPathTopology(t *testing.T) pathTopology {
	top := pathTopology{client: newNS(t), router: newNS(t), dest: newNS(t)}
	steps := []struct {
		in   ns.NetNS
		args string
	}{
		{top.router, "link add eth0 type veth peer name eth0 netns " + nsName(top.client)},
		{top.router, "link add net1 type veth peer name eth0 netns " + nsName(top.dest)},
		{top.client, "addr add 10.1.0.2/24 dev eth0"},
		{top.client, "link set eth0 up"},
		{top.client, "route add default via 10.1.0.1"},
		{top.router, "addr add 10.1.0.1/24 dev eth0"},
		{top.router, "addr add 192.0.2.99/24 dev net1"},
		{top.router, "link set eth0 up"},
		{top.router, "link set net1 up"},
		{top.router, "route add 203.0.113.0/24 via 192.0.2.1"},
		{top.dest, "addr add 192.0.2.1/24 dev eth0"},
		{top.dest, "addr add 203.0.113.25/32 dev lo"},
		{top.dest, "link set eth0 up"},
		{top.dest, "link set lo up"},
	}
	for _, s := range steps {
		mustCommand(t, s.in, "ip", strings.Fields(s.args)...)
	}
	inNS(t, top.router, func() error { return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644) })
	return top
}

// serveRemoteAddr listens on addr inside netns and answers every connection with the
// address it came from.
func serveRemoteAddr(t *testing.T, netns ns.NetNS, addr string) {
	var l net.Listener
	inNS(t, netns, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	})
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(conn.RemoteAddr().String())
			io.WriteString(conn, host)
			conn.Close()
		}
	}()
}

// dial connects from inside netns and returns what the server said.
func dial(netns ns.NetNS, addr string, timeout time.Duration) (string, error) {
	var reply []byte
	err := netns.Do(func(ns.NetNS) error {
		conn, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(timeout))
		reply, err = io.ReadAll(conn)
		return err
	})
	return string(reply), err
}

func TestRedirectCarriesRealConnections(t *testing.T) {
	rs := Ruleset{Egress: "net1", Sources: addrs("192.0.2.99"), Redirect: mustTable("8080 tcp 203.0.113.25 80")}
	for _, b := range backends {
		t.Run(b.Name(), func(t *testing.T) {
			top := newPathTopology(t)
			serveRemoteAddr(t, top.dest, "203.0.113.25:80")
			inNS(t, top.router, func() error { return b.Apply(sampleAttachment, rs) })

			got, err := dial(top.client, "10.1.0.1:8080", 2*time.Second)
			if err != nil || got != "192.0.2.99" {
				t.Errorf("client -> router:8080 = %q, %v; want the destination to see 192.0.2.99", got, err)
			}
			// No rule for 9090: the router answers itself (nothing listens) and
			// forwards nothing.
			if got, err := dial(top.client, "10.1.0.1:9090", 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("client -> router:9090 = %q, %v; want connection refused by the router", got, err)
			}
			// Routed straight at the destination, the flow is not DNATed: the forward
			// filter drops it even though SNAT would have made it work.
			if got, err := dial(top.client, "203.0.113.25:80", 300*time.Millisecond); err == nil {
				t.Errorf("client -> 203.0.113.25:80 through the router = %q; want it dropped (the router is no open router)", got)
			}
		})
	}
}
