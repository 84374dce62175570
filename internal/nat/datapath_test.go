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

	"github.com/egress-router/egress-router/test/topology"
)

// pathTopology is the smallest network redirect mode works in, dual-stack:
//
//	client ──veth── eth0 router net1 ──veth── dest
//	10.1.0.2        10.1.0.1      192.0.2.99       192.0.2.1      203.0.113.25 on lo
//	2001:db8:a::2   2001:db8:a::1 2001:db8:12::99  2001:db8:12::1 2001:db8:1::25 on lo
//
// The client's default routes point at the router; the router reaches the
// destinations via dest; dest has no route back to the client's subnets, so a reply
// only arrives when the router SNATed the connection to its net1 address.
type pathTopology struct {
	client, router, dest ns.NetNS
}

func newPathTopology(t *testing.T) pathTopology {
	top := pathTopology{client: topology.NewNS(t), router: topology.NewNS(t), dest: topology.NewNS(t)}
	inNS(t, top.router, func() error {
		for _, sysctl := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
			if err := os.WriteFile(sysctl, []byte("1"), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	steps := []struct {
		in   ns.NetNS
		args string
	}{
		{top.router, "link add eth0 type veth peer name eth0 netns " + nsName(top.client)},
		{top.router, "link add net1 type veth peer name eth0 netns " + nsName(top.dest)},
		{top.client, "addr add 10.1.0.2/24 dev eth0"},
		{top.client, "addr add 2001:db8:a::2/64 dev eth0 nodad"},
		{top.client, "link set eth0 up"},
		{top.client, "route add default via 10.1.0.1"},
		{top.client, "-6 route add default via 2001:db8:a::1"},
		{top.router, "addr add 10.1.0.1/24 dev eth0"},
		{top.router, "addr add 2001:db8:a::1/64 dev eth0 nodad"},
		{top.router, "addr add 192.0.2.99/24 dev net1"},
		{top.router, "addr add 2001:db8:12::99/64 dev net1 nodad"},
		{top.router, "link set eth0 up"},
		{top.router, "link set net1 up"},
		{top.router, "route add 203.0.113.0/24 via 192.0.2.1"},
		{top.router, "-6 route add 2001:db8:1::/64 via 2001:db8:12::1"},
		{top.dest, "addr add 192.0.2.1/24 dev eth0"},
		{top.dest, "addr add 2001:db8:12::1/64 dev eth0 nodad"},
		{top.dest, "addr add 203.0.113.25/32 dev lo"},
		{top.dest, "addr add 2001:db8:1::25/128 dev lo nodad"},
		{top.dest, "link set eth0 up"},
		{top.dest, "link set lo up"},
	}
	for _, s := range steps {
		mustCommand(t, s.in, "ip", strings.Fields(s.args)...)
	}
	return top
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
	return strings.TrimSpace(string(reply)), err
}

func TestRedirectCarriesRealConnections(t *testing.T) {
	rs := Ruleset{
		Egress:          "net1",
		SourcePerFamily: addrs("192.0.2.99", "2001:db8:12::99"),
		Redirect:        mustTable("8080 tcp 203.0.113.25 80", "8086 tcp 2001:db8:1::25 80"),
	}
	paths := []struct {
		family string
		mapped string // the router's port with a rule
		source string // the address dest should see
		other  string // the router's port without a rule
		direct string // the destination itself, routed through the router
	}{
		{"IPv4", "10.1.0.1:8080", "192.0.2.99", "10.1.0.1:9090", "203.0.113.25:80"},
		{"IPv6", "[2001:db8:a::1]:8086", "2001:db8:12::99", "[2001:db8:a::1]:9090", "[2001:db8:1::25]:80"},
	}
	runBackends(t, func(t *testing.T, b backendUnderTest) {
		top := newPathTopology(t)
		topology.ServeSource(t, top.dest, "tcp", 80)
		inNS(t, top.router, func() error { return b.Apply(sampleAttachment, rs) })
		// The first connection of a path may wait for a retransmitted SYN (1s) while
		// the veths' neighbours resolve, hence the long timeout; the dropped
		// connection comes last, once every neighbour is known.
		for _, p := range paths {
			t.Run(p.family, func(t *testing.T) {
				if got, err := dial(top.client, p.mapped, 5*time.Second); err != nil || got != p.source {
					t.Errorf("client -> %s = %q, %v; want the destination to see %s", p.mapped, got, err, p.source)
				}
				// No rule: the router answers itself (nothing listens), forwards nothing.
				if got, err := dial(top.client, p.other, 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("client -> %s = %q, %v; want connection refused by the router", p.other, got, err)
				}
				// Not DNATed, so dropped by the forward filter, though SNAT alone
				// would have made the connection work.
				if got, err := dial(top.client, p.direct, 300*time.Millisecond); err == nil {
					t.Errorf("client -> %s through the router = %q; want it dropped (the router is no open router)", p.direct, got)
				}
			})
		}
	})
}

// The input guard: nothing opens a connection to the router through net1, whether to
// its address there or to any other; the cluster side still can, and the router's own
// connections out of net1 get their replies.
func TestInputGuardRefusesConnectionsArrivingOnEgress(t *testing.T) {
	runBackends(t, func(t *testing.T, b backendUnderTest) {
		top := newPathTopology(t)
		topology.ServeSource(t, top.router, "tcp", 8080)
		topology.ServeSource(t, top.dest, "tcp", 80)
		inNS(t, top.router, func() error { return b.Apply(sampleAttachment, guardRuleset()) })
		if got, err := dial(top.client, "10.1.0.1:8080", 5*time.Second); err != nil || got != "10.1.0.2" {
			t.Errorf("client -> router's cluster address = %q, %v; want a connection", got, err)
		}
		if got, err := dial(top.router, "203.0.113.25:80", 5*time.Second); err != nil || got != "192.0.2.99" {
			t.Errorf("router -> destination via net1 = %q, %v; want the reply let in", got, err)
		}
		for _, addr := range []string{"192.0.2.99:8080", "[2001:db8:12::99]:8080"} {
			got, err := dial(top.dest, addr, 300*time.Millisecond)
			var timeout net.Error
			if !errors.As(err, &timeout) || !timeout.Timeout() {
				t.Errorf("net1 side -> %s = %q, %v; want the connection dropped unanswered", addr, got, err)
			}
		}
	})
}
