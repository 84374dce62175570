// Package topology builds the design's test topology out of network namespaces, for
// the plugin's data-path tests, the proxies' suites, the end-to-end suite, the demo's
// Go counterpart and the benchmarks:
//
//	client ──veth── node (bridge "cluster", 10.128.0.1) ──veth── router pod eth0
//	                node: ext0 (veth, the macvlan master) ──veth── gateway ──veth── dest
//	       (AddNode) node2: ext0 ──veth──┘ (the gateway's bridge "lan": one segment)
//
// The destination namespace answers on every address of 203.0.113.0/24 and
// 2001:db8:20::/64 and accepts only the reserved source addresses. Everything lives in
// namespaces created here with unique names and is removed by t.Cleanup.
package topology

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/containernetworking/plugins/pkg/utils/sysctl"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The topology's addresses. Cluster addresses (10.128.0.0/24, 2001:db8:128::/64) live
// only inside the test namespaces.
var (
	ClusterGateway  = netip.MustParsePrefix("10.128.0.1/24")
	ClusterGateway6 = netip.MustParsePrefix("2001:db8:128::1/64")
	ClientAddr      = netip.MustParsePrefix("10.128.0.10/24")
	ClientAddr6     = netip.MustParsePrefix("2001:db8:128::10/64")
	NodeAddr        = netip.MustParsePrefix("192.0.2.10/24") // the node's own address on ext0
	NodeAddr6       = netip.MustParsePrefix("2001:db8:12::10/64")
	Gateway         = netip.MustParsePrefix("192.0.2.1/24") // the node network's router
	Gateway6        = netip.MustParsePrefix("2001:db8:12::1/64")
	Reserved        = netip.MustParsePrefix("192.0.2.99/24") // the egress router's reserved IP
	Reserved6       = netip.MustParsePrefix("2001:db8:12::99/64")
	gatewayWAN      = netip.MustParsePrefix("198.51.100.1/24")
	gatewayWAN6     = netip.MustParsePrefix("2001:db8:51::1/64")
	destWAN         = netip.MustParsePrefix("198.51.100.2/24")
	destWAN6        = netip.MustParsePrefix("2001:db8:51::2/64")
	// DestNet and DestNet6 are served entirely by the destination namespace.
	DestNet  = netip.MustParsePrefix("203.0.113.0/24")
	DestNet6 = netip.MustParsePrefix("2001:db8:20::/64")
)

// Master is the node link the router's macvlan sits on.
const Master = "ext0"

// Topology is one instance of the test network.
type Topology struct {
	Node, Client, Gateway, Dest ns.NetNS
	// Pod is the first router pod; AddPod makes more on the same cluster bridge.
	Pod   *Pod
	pods  int
	nodes int // besides Node
	mu    sync.Mutex
}

// Pod is a router pod namespace with its cluster interface eth0.
type Pod struct {
	NS     ns.NetNS
	Addr   netip.Prefix // eth0's IPv4 cluster address
	Addr6  netip.Prefix
	Bridge string // node-side veth name
}

// New builds the topology and registers its removal with t.Cleanup. It needs root.
func New(t testing.TB) *Topology {
	t.Helper()
	RequireRoot(t)
	tp := &Topology{}
	tp.Node = NewNS(t)
	tp.Client = NewNS(t)
	tp.Gateway = NewNS(t)
	tp.Dest = NewNS(t)
	for _, n := range []ns.NetNS{tp.Node, tp.Client, tp.Gateway, tp.Dest} {
		must(t, "no DAD", n.Do(func(ns.NetNS) error { return withoutDAD() }))
	}
	must(t, "node", tp.Node.Do(func(ns.NetNS) error {
		if err := enableForwarding(); err != nil {
			return err
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "cluster"}}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("bridge: %w", err)
		}
		return setUp("cluster", ClusterGateway, ClusterGateway6)
	}))
	tp.attachToCluster(t, tp.Client, "veth-client", ClientAddr, ClientAddr6)
	tp.Pod = tp.AddPod(t)

	// node ext0 <-> gateway lan0, a port of the bridge lan: the node network's segment,
	// which AddNode's nodes join too.
	veth(t, tp.Node, Master, tp.Gateway, "lan0")
	must(t, "gateway lan", tp.Gateway.Do(func(ns.NetNS) error {
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "lan"}}); err != nil {
			return fmt.Errorf("bridge lan: %w", err)
		}
		return joinSegment("lan0")
	}))
	must(t, "node ext0", tp.Node.Do(func(ns.NetNS) error {
		if err := setUp(Master, NodeAddr, NodeAddr6); err != nil {
			return err
		}
		return defaultRoutes(Master, Gateway.Addr(), Gateway6.Addr())
	}))
	veth(t, tp.Gateway, "wan", tp.Dest, "wan")
	must(t, "gateway", tp.Gateway.Do(func(ns.NetNS) error {
		if err := enableForwarding(); err != nil {
			return err
		}
		if err := setUp("lan", Gateway, Gateway6); err != nil {
			return err
		}
		if err := setUp("wan", gatewayWAN, gatewayWAN6); err != nil {
			return err
		}
		// Destinations behind dest; the cluster behind the node, so a client that
		// goes direct is told "refused" rather than left to time out.
		return routes(
			route{DestNet, "wan", destWAN.Addr()}, route{DestNet6, "wan", destWAN6.Addr()},
			route{ClusterGateway.Masked(), "lan", NodeAddr.Addr()}, route{ClusterGateway6.Masked(), "lan", NodeAddr6.Addr()},
		)
	}))
	must(t, "dest", tp.Dest.Do(func(ns.NetNS) error {
		if err := setUp("wan", destWAN, destWAN6); err != nil {
			return err
		}
		if err := setUp("lo"); err != nil {
			return err
		}
		if err := defaultRoutes("wan", gatewayWAN.Addr(), gatewayWAN6.Addr()); err != nil {
			return err
		}
		return localRoutes(DestNet, DestNet6)
	}))
	tp.Exec(t, tp.Dest, "nft", "-f", "-").Stdin(destFirewall).Run(t)
	return tp
}

// destFirewall lets only the reserved addresses reach the destination ranges, and
// refuses everyone else at once (a reset or an ICMP error, not silence).
var destFirewall = fmt.Sprintf(`table inet dest {
	chain input {
		type filter hook input priority 0; policy accept;
		ip daddr %[1]s ip saddr != %[2]s meta l4proto tcp reject with tcp reset
		ip daddr %[1]s ip saddr != %[2]s reject
		ip6 daddr %[3]s ip6 saddr != %[4]s meta l4proto tcp reject with tcp reset
		ip6 daddr %[3]s ip6 saddr != %[4]s reject
	}
}
`, DestNet, Reserved.Addr(), DestNet6, Reserved6.Addr())

// AddPod makes another router pod namespace on the cluster bridge (10.128.0.20 + n).
func (tp *Topology) AddPod(t testing.TB) *Pod {
	t.Helper()
	tp.mu.Lock()
	n := tp.pods
	tp.pods++
	tp.mu.Unlock()
	if n > 200 {
		t.Fatal("topology: too many pods")
	}
	p := &Pod{
		NS:     NewNS(t),
		Addr:   netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 128, 0, byte(20 + n)}), 24),
		Addr6:  netip.MustParsePrefix(fmt.Sprintf("2001:db8:128::%x/64", 0x20+n)),
		Bridge: fmt.Sprintf("veth-pod%d", n),
	}
	tp.attachToCluster(t, p.NS, p.Bridge, p.Addr, p.Addr6)
	return p
}

// AddNode makes another node namespace with a master link ext0 on the gateway's
// segment (192.0.2.10 + n, default routes via the gateway), as Node's: router pods whose net1 sits on either node's ext0
// share one layer 2 with the gateway, as replicas on two nodes of one network do. The
// cluster network stays Node's bridge, which stands for the whole cluster's: pods
// made with AddPod reach each other and the client whichever node their net1 is on.
func (tp *Topology) AddNode(t testing.TB) ns.NetNS {
	t.Helper()
	tp.mu.Lock()
	tp.nodes++
	n := tp.nodes
	tp.mu.Unlock()
	if n > 200 {
		t.Fatal("topology: too many nodes")
	}
	port := fmt.Sprintf("lan%d", n)
	addr := NodeAddr.Addr().As4()
	addr[3] += byte(n)
	node := NewNS(t)
	must(t, "no DAD", node.Do(func(ns.NetNS) error { return withoutDAD() }))
	veth(t, node, Master, tp.Gateway, port)
	must(t, "gateway "+port, tp.Gateway.Do(func(ns.NetNS) error { return joinSegment(port) }))
	must(t, "node ext0", node.Do(func(ns.NetNS) error {
		if err := setUp(Master, netip.PrefixFrom(netip.AddrFrom4(addr), NodeAddr.Bits()),
			netip.MustParsePrefix(fmt.Sprintf("2001:db8:12::%x/64", 0x10+n))); err != nil {
			return err
		}
		return defaultRoutes(Master, Gateway.Addr(), Gateway6.Addr())
	}))
	return node
}

// joinSegment makes port a port of the gateway's bridge lan, up.
func joinSegment(port string) error {
	l, err := netlink.LinkByName(port)
	if err != nil {
		return err
	}
	br, err := netlink.LinkByName("lan")
	if err != nil {
		return err
	}
	if err := netlink.LinkSetMaster(l, br); err != nil {
		return fmt.Errorf("%s into lan: %w", port, err)
	}
	return netlink.LinkSetUp(l)
}

func (tp *Topology) attachToCluster(t testing.TB, peer ns.NetNS, nodeSide string, addr, addr6 netip.Prefix) {
	t.Helper()
	veth(t, tp.Node, nodeSide, peer, "eth0")
	must(t, nodeSide, tp.Node.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(nodeSide)
		if err != nil {
			return err
		}
		br, err := netlink.LinkByName("cluster")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetMaster(l, br); err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	}))
	must(t, "eth0", peer.Do(func(ns.NetNS) error {
		if err := setUp("lo"); err != nil {
			return err
		}
		if err := setUp("eth0", addr, addr6); err != nil {
			return err
		}
		return defaultRoutes("eth0", ClusterGateway.Addr(), ClusterGateway6.Addr())
	}))
}

// RequireRoot fails the test unless it runs as root; only a -short run may skip.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if testing.Short() {
		t.Skip("needs root: creates network namespaces")
	}
	t.Fatal("this test creates network namespaces and needs root; run `make test` as root, or `make unit` for unit tests only")
}

// NewNS creates a network namespace with a unique name, removed when the test ends.
// It needs root (see RequireRoot).
func NewNS(t testing.TB) ns.NetNS {
	t.Helper()
	RequireRoot(t)
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatalf("create netns: %v", err)
	}
	t.Cleanup(func() {
		if n.Close() != nil {
			return // DeleteNS has removed it
		}
		if err := testutils.UnmountNS(n); err != nil {
			t.Errorf("remove netns: %v", err)
		}
	})
	return n
}

// DeleteNS removes a namespace NewNS made before the test ends, as a container runtime
// removes a pod's: the kernel destroys it, and every link in it (a veth's peer and a
// macvlan included), once nothing else holds it — no process in it, no socket made in
// it, no other open handle.
func DeleteNS(n ns.NetNS) error {
	if err := n.Close(); err != nil {
		return err
	}
	return testutils.UnmountNS(n)
}

// veth creates a veth pair with one end, aName, in a and the other, bName, in b.
func veth(t testing.TB, a ns.NetNS, aName string, b ns.NetNS, bName string) {
	t.Helper()
	must(t, "veth "+aName, a.Do(func(ns.NetNS) error {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: aName}, PeerName: bName, PeerNamespace: netlink.NsFd(int(b.Fd()))}
		return netlink.LinkAdd(v)
	}))
}

// setUp brings a link up with the given addresses. IPv6 addresses skip duplicate
// address detection: nothing else uses them, and DAD would only add seconds.
func setUp(name string, addrs ...netip.Prefix) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	for _, a := range addrs {
		addr := &netlink.Addr{IPNet: ipNet(a)}
		if a.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(l, addr); err != nil {
			return fmt.Errorf("address %s on %s: %w", a, name, err)
		}
	}
	return netlink.LinkSetUp(l)
}

type route struct {
	dst netip.Prefix
	dev string
	via netip.Addr
}

func routes(rs ...route) error {
	for _, r := range rs {
		l, err := netlink.LinkByName(r.dev)
		if err != nil {
			return err
		}
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(r.dst), Gw: net.IP(r.via.AsSlice())}); err != nil {
			return fmt.Errorf("route %s via %s: %w", r.dst, r.via, err)
		}
	}
	return nil
}

func defaultRoutes(dev string, via, via6 netip.Addr) error {
	return routes(route{netip.MustParsePrefix("0.0.0.0/0"), dev, via}, route{netip.MustParsePrefix("::/0"), dev, via6})
}

// localRoutes makes every address of the prefixes local, so one wildcard listener in
// the destination namespace answers for the whole documentation range.
func localRoutes(prefixes ...netip.Prefix) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	for _, p := range prefixes {
		r := &netlink.Route{LinkIndex: lo.Attrs().Index, Dst: ipNet(p), Type: unix.RTN_LOCAL, Table: unix.RT_TABLE_LOCAL, Scope: netlink.SCOPE_HOST}
		if err := netlink.RouteAdd(r); err != nil {
			return fmt.Errorf("local route %s: %w", p, err)
		}
	}
	return nil
}

// withoutDAD makes links created from now on in the current namespace skip duplicate
// address detection, link-local addresses included. A forwarding router (node,
// gateway) solicits a neighbour from its link-local address and sends nothing while
// that address is tentative (up to two seconds after the link comes up), so a test's
// first forwarded packets could be lost; the client and destination get the same
// settling-free start. Pod namespaces are left alone: the plugin works on them as it
// would in a cluster.
func withoutDAD() error {
	// The kernel skips DAD only if both "all" and the link say so; "all" is 0 in a new
	// namespace unless the host makes namespaces inherit its settings.
	for _, key := range []string{"net/ipv6/conf/all/accept_dad", "net/ipv6/conf/default/accept_dad"} {
		if _, err := sysctl.Sysctl(key, "0"); err != nil {
			return fmt.Errorf("sysctl %s: %w", key, err)
		}
	}
	return nil
}

func enableForwarding() error {
	for _, key := range []string{"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"} {
		if _, err := sysctl.Sysctl(key, "1"); err != nil {
			return fmt.Errorf("sysctl %s: %w", key, err)
		}
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("topology %s: %v", what, err)
	}
}

// Command is a program to run inside one of the topology's namespaces.
type Command struct {
	cmd *exec.Cmd
}

// Exec prepares name args... to run in netns n. nsenter rather than `ip netns exec`,
// which remounts /sys.
func (tp *Topology) Exec(t testing.TB, n ns.NetNS, name string, args ...string) *Command {
	return &Command{cmd: exec.Command("nsenter", append([]string{"--net=" + n.Path(), "--", name}, args...)...)}
}

// Stdin feeds s to the command.
func (c *Command) Stdin(s string) *Command {
	c.cmd.Stdin = strings.NewReader(s)
	return c
}

// Output runs the command and returns its combined output and error.
func (c *Command) Output() (string, error) {
	out, err := c.cmd.CombinedOutput()
	return string(out), err
}

// Run runs the command and fails the test if it fails.
func (c *Command) Run(t testing.TB) string {
	t.Helper()
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(c.cmd.Args, " "), err, out)
	}
	return out
}
