package main

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/egress-router/egress-router/test/topology"
)

// Through the router: a client connects to the router pod's cluster address and the
// destination, which accepts only the reserved address, sees 192.0.2.99 (or its IPv6
// twin) — for each protocol, a port map, the fallback and IPv6, with both backends.
func TestRedirectCarriesClientTrafficFromTheReservedAddress(t *testing.T) {
	onEachBackend(t, redirectConf, func(t *testing.T, p *plugin) {
		tp := p.tp
		topology.ServeSource(t, tp.Dest, "tcp", 80)
		topology.ServeSource(t, tp.Dest, "tcp", 443)
		topology.ServeSource(t, tp.Dest, "tcp", 7777)
		topology.ServeSource(t, tp.Dest, "udp", 53)
		pod, pod6 := p.pod.Addr.Addr(), p.pod.Addr6.Addr()
		for _, c := range []struct {
			what, network string
			to            netip.AddrPort
			want          netip.Addr
		}{
			{"tcp 80 -> 203.0.113.25:80", "tcp", netip.AddrPortFrom(pod, 80), topology.Reserved.Addr()},
			{"port map 8080 -> 203.0.113.26:80", "tcp", netip.AddrPortFrom(pod, 8080), topology.Reserved.Addr()},
			{"udp 53 -> 203.0.113.53:53", "udp", netip.AddrPortFrom(pod, 53), topology.Reserved.Addr()},
			{"fallback 7777 -> 203.0.113.27:7777", "tcp", netip.AddrPortFrom(pod, 7777), topology.Reserved.Addr()},
			{"IPv6 443 -> [2001:db8:20::25]:443", "tcp", netip.AddrPortFrom(pod6, 443), topology.Reserved6.Addr()},
		} {
			got, err := topology.AskSource(tp.Client, c.network, c.to.String())
			if err != nil || got != c.want.String() {
				t.Errorf("%s: destination saw %q (%v), want %s", c.what, got, err, c.want)
			}
		}
		// The same client going direct is refused: only the router's address is let in.
		if _, err := topology.AskSource(tp.Client, "tcp", "203.0.113.25:80"); !topology.IsRefused(err) {
			t.Errorf("direct: want refused, got %v", err)
		}
		// The pod's own cluster traffic still uses eth0 and its cluster address.
		topology.ServeSource(t, tp.Node, "tcp", 9)
		if got, err := topology.AskSource(p.pod.NS, "tcp", "10.128.0.1:9"); err != nil || got != pod.String() {
			t.Errorf("pod to cluster: source %q (%v), want %s", got, err, pod)
		}
	})
}

// The router is no open router: a client that routes other traffic through the pod
// gets nothing through, even to a destination that has a redirect line.
func TestUnmatchedTrafficIsNotForwarded(t *testing.T) {
	p := newPlugin(t)
	p.mustAdd(t, strings.Replace(redirectConf("1.0.0", "auto"), `, "203.0.113.27"`, "", 1))
	topology.ServeSource(t, p.tp.Dest, "tcp", 80)
	topology.ServeSource(t, p.tp.Dest, "tcp", 7777)
	p.tp.Exec(t, p.tp.Client, "ip", "route", "add", "203.0.113.0/24", "via", p.pod.Addr.Addr().String()).Run(t)
	for _, addr := range []string{"203.0.113.25:80", "203.0.113.25:7777"} {
		if got, err := topology.AskSource(p.tp.Client, "tcp", addr); err == nil {
			t.Errorf("%s routed through the pod reached the destination as %s", addr, got)
		}
	}
	if got, err := topology.AskSource(p.tp.Client, "tcp", p.pod.Addr.Addr().String()+":7777"); err == nil {
		t.Errorf("a port without a line was redirected (source %s)", got)
	}
}

// Proxy modes: sockets bound to the reserved address leave through net1 and are seen
// as that address, IPv4 and IPv6; unbound ones still use eth0.
func TestProxyModeSendsTheReservedSourceThroughNet1(t *testing.T) {
	p := newPlugin(t)
	p.mustAdd(t, proxyConf("1.0.0", "auto"))
	topology.ServeSource(t, p.tp.Dest, "tcp", 80)
	for _, c := range []struct{ from, to netip.Addr }{
		{topology.Reserved.Addr(), netip.MustParseAddr("203.0.113.25")},
		{topology.Reserved6.Addr(), netip.MustParseAddr("2001:db8:20::25")},
	} {
		got, err := topology.AskSourceFrom(p.pod.NS, "tcp", c.from, netip.AddrPortFrom(c.to, 80).String())
		if err != nil || got != c.from.String() {
			t.Errorf("from %s: destination saw %q (%v)", c.from, got, err)
		}
	}
	if _, err := topology.AskSource(p.pod.NS, "tcp", "203.0.113.25:80"); !topology.IsRefused(err) {
		t.Errorf("an unbound socket must leave via eth0 and be refused, got %v", err)
	}
}

// The router pod is for egress only. In http-proxy mode the proxy listens on every
// address: its port is reachable from the cluster through eth0, but a host on the
// node network (the gateway) cannot open a connection to the reserved address, and
// the pod's own connections from it still get their replies.
func TestProxyModeRefusesConnectionsThroughNet1(t *testing.T) {
	onEachBackend(t, proxyConf, func(t *testing.T, p *plugin) {
		topology.ServeSource(t, p.pod.NS, "tcp", 8080)
		topology.ServeSource(t, p.tp.Dest, "tcp", 80)
		client := topology.ClientAddr.Addr()
		if got, err := topology.AskSource(p.tp.Client, "tcp", netip.AddrPortFrom(p.pod.Addr.Addr(), 8080).String()); err != nil || got != client.String() {
			t.Errorf("client -> pod's cluster address :8080: pod saw %q (%v), want %s", got, err, client)
		}
		if got, err := topology.AskSourceFrom(p.pod.NS, "tcp", topology.Reserved.Addr(), "203.0.113.25:80"); err != nil || got != topology.Reserved.Addr().String() {
			t.Errorf("pod from the reserved address: destination saw %q (%v)", got, err)
		}
		for _, reserved := range []netip.Addr{topology.Reserved.Addr(), topology.Reserved6.Addr()} {
			to := netip.AddrPortFrom(reserved, 8080).String()
			if got, err := topology.AskSource(p.tp.Gateway, "tcp", to); !dropped(err) {
				t.Errorf("gateway -> %s: got %q (%v), want no answer", to, got, err)
			}
		}
	})
}

// In redirect mode too, nothing on the node network reaches the pod's own services
// through net1, not even on a port that has a redirect line (the DNAT is for traffic
// from the cluster side only).
func TestRedirectModeRefusesConnectionsThroughNet1(t *testing.T) {
	onEachBackend(t, redirectConf, func(t *testing.T, p *plugin) {
		topology.ServeSource(t, p.pod.NS, "tcp", 80)
		to := netip.AddrPortFrom(topology.Reserved.Addr(), 80).String()
		if got, err := topology.AskSource(p.tp.Gateway, "tcp", to); !dropped(err) {
			t.Errorf("gateway -> %s: got %q (%v), want no answer", to, got, err)
		}
	})
}

// Without an IPv6 reserved address, net1 has no IPv6 at all: its link-local address
// would let the node network reach the pod over IPv6, a family no guard is written
// for.
func TestIPv4OnlyAttachmentHasNoIPv6OnNet1(t *testing.T) {
	p := newPlugin(t)
	conf := strings.NewReplacer(`"192.0.2.99/24", "2001:db8:12::99/64"`, `"192.0.2.99/24"`, `"192.0.2.1", "2001:db8:12::1"`, `"192.0.2.1"`).
		Replace(proxyConf("1.0.0", "auto"))
	r := p.mustAdd(t, conf)
	if addrs := p.inPod(t, "ip -6 addr show dev net1"); addrs != "" {
		t.Errorf("net1 has IPv6 addresses:\n%s", addrs)
	}
	if err := p.check(p.args(withPrevResult(t, conf, r))); err != nil {
		t.Errorf("CHECK: %v", err)
	}
}

// dropped reports a connection attempt that timed out: neither accepted nor refused.
func dropped(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// A gateway holding a stale neighbour entry for the reserved address (the previous
// router pod's MAC) has the new MAC right after ADD, with no traffic from the pod.
func TestAddTellsTheGatewayTheNewMAC(t *testing.T) {
	p := newPlugin(t)
	for _, ip := range []string{"192.0.2.99", "2001:db8:12::99"} {
		p.tp.Exec(t, p.tp.Gateway, "ip", "neigh", "replace", ip, "lladdr", "02:00:00:00:00:01", "dev", "lan", "nud", "stale").Run(t)
	}
	r := p.mustAdd(t, proxyConf("1.0.0", "auto"))
	for _, ip := range []string{"192.0.2.99", "2001:db8:12::99"} {
		if got := p.tp.Exec(t, p.tp.Gateway, "ip", "neigh", "show", ip, "dev", "lan").Run(t); !strings.Contains(got, r.Interfaces[0].Mac) {
			t.Errorf("gateway's entry for %s: %q, want MAC %s", ip, got, r.Interfaces[0].Mac)
		}
	}
}

// onEachBackend runs test on a new router pod added with conf, once for each NAT
// backend.
func onEachBackend(t *testing.T, conf func(version, backend string) string, test func(t *testing.T, p *plugin)) {
	for _, backend := range []string{"nftables", "iptables"} {
		t.Run(backend, func(t *testing.T) {
			p := newPlugin(t)
			p.mustAdd(t, conf("1.0.0", backend))
			test(t, p)
		})
	}
}

// net1 answers ARP only for the addresses it holds: a host on the node network that
// asks for the pod's cluster address must not learn net1's MAC for it (the kernel's
// default answers for any address of the namespace on any interface), nor see ARP
// requests from net1 that carry the cluster address as their source.
func TestNet1AnswersARPOnlyForItsOwnAddresses(t *testing.T) {
	p := newPlugin(t)
	r := p.mustAdd(t, proxyConf("1.0.0", "auto"))
	cluster := p.pod.Addr.Addr().String()
	p.tp.Exec(t, p.tp.Gateway, "ip", "route", "add", cluster+"/32", "dev", "lan").Run(t)
	_ = p.tp.Gateway.Do(func(ns.NetNS) error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(cluster, "80"), time.Second) // asks for its MAC first
		if err == nil {
			c.Close()
		}
		return nil
	})
	if got := p.tp.Exec(t, p.tp.Gateway, "ip", "neigh", "show", cluster, "dev", "lan").Run(t); strings.Contains(got, r.Interfaces[0].Mac) {
		t.Errorf("net1 answered ARP for the pod's cluster address %s: %s", cluster, got)
	}
}
