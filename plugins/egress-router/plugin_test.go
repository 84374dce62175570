package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/testutils"

	"github.com/egress-router/egress-router/test/topology"
)

// The full lifecycle, for each spec version and both kinds of attachment: ADD reports
// and programs the attachment, CHECK accepts it, DEL removes it and may be repeated.
func TestAddCheckDelOverEverySpecVersion(t *testing.T) {
	for _, tc := range []struct {
		name string
		conf func(version string) string
	}{
		{"redirect/nftables", func(v string) string { return redirectConf(v, "nftables") }},
		{"redirect/iptables", func(v string) string { return redirectConf(v, "iptables") }},
		{"http-proxy/nftables", func(v string) string { return proxyConf(v, "nftables") }},
		{"http-proxy/iptables", func(v string) string { return proxyConf(v, "iptables") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlugin(t)
			for _, version := range specVersions {
				t.Run(version, func(t *testing.T) {
					conf := tc.conf(version)
					r := p.mustAdd(t, conf)
					p.assertResult(t, r)
					p.assertLive(t, r, strings.Contains(tc.name, "redirect"))
					withPrev := withPrevResult(t, conf, r)
					if testutils.SpecVersionHasCHECK(version) {
						if err := p.check(p.args(withPrev)); err != nil {
							t.Fatalf("CHECK right after ADD: %v", err)
						}
					}
					for i := range 2 {
						if err := p.del(p.args(withPrev)); err != nil {
							t.Fatalf("DEL #%d: %v", i+1, err)
						}
					}
					p.assertNothingLeft(t)
				})
			}
		})
	}
}

func (p *plugin) assertResult(t *testing.T, r *current.Result) {
	t.Helper()
	if len(r.Interfaces) != 1 || r.Interfaces[0].Name != "net1" || r.Interfaces[0].Sandbox != p.pod.NS.Path() || r.Interfaces[0].Mac == "" {
		t.Fatalf("interfaces = %v, want net1 in %s with a MAC", r.Interfaces, p.pod.NS.Path())
	}
	var ips []string
	for _, ipc := range r.IPs {
		ips = append(ips, ipc.Address.String()+" gw "+ipc.Gateway.String())
		if ipc.Interface == nil || *ipc.Interface != 0 {
			t.Errorf("ip %s is not tied to interface 0", ipc.Address.String())
		}
	}
	if want := []string{"192.0.2.99/24 gw 192.0.2.1", "2001:db8:12::99/64 gw 2001:db8:12::1"}; !slices.Equal(ips, want) {
		t.Errorf("ips = %q, want %q", ips, want)
	}
	if len(r.Routes) != 0 {
		t.Errorf("routes = %v, want none: they are in the policy table, behind rules", r.Routes)
	}
}

// assertLive looks at the pod namespace the way an administrator would.
func (p *plugin) assertLive(t *testing.T, r *current.Result, redirect bool) {
	t.Helper()
	link := p.inPod(t, "ip -d link show net1")
	if !strings.Contains(link, "macvlan mode") || !strings.Contains(link, r.Interfaces[0].Mac) || !strings.Contains(link, "state UP") {
		t.Errorf("net1 is not an up macvlan with MAC %s:\n%s", r.Interfaces[0].Mac, link)
	}
	addrs := p.inPod(t, "ip addr show net1")
	for _, a := range []string{"192.0.2.99/24", "2001:db8:12::99/64"} {
		if !strings.Contains(addrs, a) {
			t.Errorf("net1 lacks %s:\n%s", a, addrs)
		}
	}
	for _, line := range strings.Split(addrs, "\n") {
		if strings.Contains(line, "scope global") && strings.Contains(line, "tentative") {
			t.Errorf("a reserved address is still tentative after ADD:\n%s", addrs)
		}
	}
	if main := p.inPod(t, "ip route show default"); !strings.Contains(main, "dev eth0") || strings.Contains(main, "net1") {
		t.Errorf("the pod's default route must stay on eth0:\n%s", main)
	}
	// In the proxy modes the guard's conntrack forgets a closed connection after 10 s;
	// redirect mode's SNAT keeps the kernel's 120.
	if got, want := strings.TrimSpace(p.inPod(t, "sysctl -n "+timeWaitSysctl)), map[bool]string{false: "10", true: "120"}[redirect]; got != want {
		t.Errorf("%s = %s, want %s", timeWaitSysctl, got, want)
	}
	rules := p.inPod(t, "ip rule show")
	if redirect {
		// What the pod forwards from the cluster side leaves via the gateway on net1,
		// for any destination: only the forward filter decides what is forwarded.
		client, client6 := topology.ClientAddr.Addr(), topology.ClientAddr6.Addr()
		if got := p.inPod(t, "ip route get 203.0.113.25 from "+client.String()+" iif eth0"); !strings.Contains(got, "via 192.0.2.1 dev net1") {
			t.Errorf("203.0.113.25 forwarded from eth0 is not routed via the gateway on net1: %s", got)
		}
		if got := p.inPod(t, "ip -6 route get 2001:db8:20::25 from "+client6.String()+" iif eth0"); !strings.Contains(got, "via 2001:db8:12::1 dev net1") {
			t.Errorf("2001:db8:20::25 forwarded from eth0 is not routed via the gateway on net1: %s", got)
		}
		// The pod's own traffic keeps the main table.
		if got := p.inPod(t, "ip route get 203.0.113.25"); !strings.Contains(got, "dev eth0") {
			t.Errorf("the pod's own traffic to 203.0.113.25 left eth0: %s", got)
		}
		for _, want := range []string{"32764:\tfrom all iif lo goto 32766", "32765:\tnot from all iif net1 lookup 17746"} {
			if !strings.Contains(rules, want) {
				t.Errorf("rule %q is missing:\n%s", want, rules)
			}
		}
		if got := p.inPod(t, "sysctl -n net.ipv4.ip_forward"); strings.TrimSpace(got) != "1" {
			t.Errorf("ip_forward = %s, want 1", got)
		}
		return
	}
	if !strings.Contains(rules, "from 192.0.2.99 lookup 17746") {
		t.Errorf("no source rule for the reserved address:\n%s", rules)
	}
	if got := p.inPod(t, "ip route get 203.0.113.25 from 192.0.2.99"); !strings.Contains(got, "via 192.0.2.1 dev net1") {
		t.Errorf("traffic from the reserved address does not leave via net1: %s", got)
	}
	if got := p.inPod(t, "ip -6 route get 2001:db8:20::25 from 2001:db8:12::99"); !strings.Contains(got, "via 2001:db8:12::1 dev net1") {
		t.Errorf("IPv6 traffic from the reserved address does not leave via net1: %s", got)
	}
}

// assertNothingLeft: no interface, rule or NAT state of the attachment remains.
func (p *plugin) assertNothingLeft(t *testing.T) {
	t.Helper()
	if out, err := p.tp.Exec(t, p.pod.NS, "ip", "link", "show", "net1").Output(); err == nil {
		t.Errorf("net1 is still there:\n%s", out)
	}
	for _, family := range []string{"-4", "-6"} {
		if rules := p.inPod(t, "ip "+family+" rule show"); strings.Contains(rules, "32764") || strings.Contains(rules, "17746") {
			t.Errorf("a rule of the attachment is left:\n%s", rules)
		}
	}
	for _, list := range []string{"nft list ruleset", "iptables-save", "ip6tables-save"} {
		if rs := strings.ToLower(p.inPod(t, list)); strings.Contains(rs, "egr") {
			t.Errorf("NAT state is left (%s):\n%s", list, rs)
		}
	}
}

// A configuration error is code 7 naming the field and line, before anything looks at
// the (here nonexistent) namespace. DEL is the exception (del_test.go).
func TestInvalidConfigIsCode7BeforeTheNamespaceIsOpened(t *testing.T) {
	p := newPlugin(t)
	for _, version := range specVersions {
		conf := strings.Replace(redirectConf(version, "auto"), `"80 tcp 203.0.113.25"`, `"80 tcpx 203.0.113.25"`, 1)
		args := p.args(conf)
		args.Netns = "/var/run/netns/does-not-exist-egress-test"
		_, err := p.add(args)
		wantCode(t, err, types.ErrInvalidNetworkConfig, "ip.destinations", `"80 tcpx 203.0.113.25"`)
		wantCode(t, cmdGC(args), types.ErrInvalidNetworkConfig, "ip.destinations")
	}
}

func TestAddIntoMissingNamespaceIsCode4(t *testing.T) {
	p := newPlugin(t)
	args := p.args(proxyConf("1.0.0", "auto"))
	args.Netns = filepath.Join(t.TempDir(), "gone")
	_, err := p.add(args)
	wantCode(t, err, types.ErrInvalidEnvironmentVariables, "namespace")
}

func TestAddWithMissingMasterIsCode4(t *testing.T) {
	p := newPlugin(t)
	_, err := p.add(p.args(strings.Replace(proxyConf("1.0.0", "auto"), `"master": "ext0"`, `"master": "nosuch0"`, 1)))
	wantCode(t, err, types.ErrInvalidEnvironmentVariables, "nosuch0")
	p.assertNothingLeft(t)
}

// The pod's own traffic stays off net1 even where the main table has no route for it
// (an IPv6 reserved address in a cluster without IPv6): it must not fall through to
// the rule that sends forwarded traffic out from the reserved address.
func TestPodTrafficWithoutAMainRouteDoesNotLeaveByNet1(t *testing.T) {
	p := newPlugin(t)
	p.mustAdd(t, redirectConf("1.0.0", "auto"))
	p.inPod(t, "ip -6 route del default")
	out, err := p.tp.Exec(t, p.pod.NS, "ip", "-6", "route", "get", "2001:db8:20::25").Output()
	if err == nil || strings.Contains(out, "net1") {
		t.Errorf("the pod's own IPv6 traffic without a main route: %s (%v), want unreachable", out, err)
	}
	forwarded := p.inPod(t, "ip -6 route get 2001:db8:20::25 from "+topology.ClientAddr6.Addr().String()+" iif eth0")
	if !strings.Contains(forwarded, "via 2001:db8:12::1 dev net1") {
		t.Errorf("forwarded IPv6 traffic no longer leaves via net1: %s", forwarded)
	}
}

// The master defaults to the link of the caller's default route: ext0 in the node.
func TestMasterDefaultsToTheDefaultRouteLink(t *testing.T) {
	p := newPlugin(t)
	conf := strings.Replace(proxyConf("1.0.0", "auto"), `"master": "ext0", `, "", 1)
	p.mustAdd(t, conf)
	if link := p.inPod(t, "ip -d link show net1"); !strings.Contains(link, "macvlan mode private") {
		t.Errorf("net1:\n%s", link)
	}
}

// Rules outlive their link: an ADD into a namespace that kept an older copy's rules
// (at the priority the kernel gave them before priorities were fixed) replaces them.
func TestAddReplacesRulesAnOlderCopyLeft(t *testing.T) {
	p := newPlugin(t)
	p.inPod(t, "ip rule add from 192.0.2.99 lookup 17746 pref 17000")
	p.inPod(t, "ip rule add from 192.0.2.99 lookup 17746")
	p.mustAdd(t, proxyConf("1.0.0", "auto"))
	rules := p.inPod(t, "ip rule show")
	if n := strings.Count(rules, "from 192.0.2.99 lookup 17746"); n != 1 || !strings.Contains(rules, "32765:\tfrom 192.0.2.99 lookup 17746") {
		t.Errorf("want the one rule at 32765, got %d:\n%s", n, rules)
	}
}

// ADD over an existing net1 fails with code 4 and leaves the existing one alone.
func TestAddOverAnExistingInterfaceFailsAndKeepsIt(t *testing.T) {
	p := newPlugin(t)
	conf := redirectConf("1.0.0", "auto")
	first := p.mustAdd(t, conf)
	_, err := p.add(p.args(conf))
	wantCode(t, err, types.ErrInvalidEnvironmentVariables, "net1", "exists")
	if err := p.check(p.args(withPrevResult(t, conf, first))); err != nil {
		t.Fatalf("the first attachment was disturbed: %v", err)
	}
}

// DEL succeeds with no namespace, with a namespace already gone, with no link, without
// prevResult, and when repeated.
func TestDelIsIdempotentAndTolerant(t *testing.T) {
	p := newPlugin(t)
	conf := redirectConf("1.0.0", "auto")
	for _, netns := range []string{"", filepath.Join(t.TempDir(), "gone"), p.pod.NS.Path()} {
		args := p.args(conf)
		args.Netns = netns
		for range 2 {
			if err := p.del(args); err != nil {
				t.Errorf("DEL with netns %q, nothing added: %v", netns, err)
			}
		}
	}
	p.mustAdd(t, conf)
	p.inPod(t, "ip link del net1")
	if err := p.del(p.args(conf)); err != nil {
		t.Fatalf("DEL after the link vanished: %v", err)
	}
	p.assertNothingLeft(t)
}

// CHECK names what drifted after the namespace was tampered with.
func TestCheckNamesWhatDrifted(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		tamper     func(*testing.T, *plugin)
		want       []string
	}{
		{"changed address", redirectConf("1.0.0", "nftables"), func(t *testing.T, p *plugin) {
			p.inPod(t, "ip addr del 192.0.2.99/24 dev net1")
			p.inPod(t, "ip addr add 192.0.2.98/24 dev net1")
		}, []string{"address 192.0.2.99/24 is missing", "unexpected address 192.0.2.98/24"}},
		{"deleted route", redirectConf("1.0.0", "nftables"), func(t *testing.T, p *plugin) {
			p.inPod(t, "ip route del default table 17746")
		}, []string{"route 0.0.0.0/0 via 192.0.2.1 table 17746 dev net1 is missing"}},
		{"deleted rule", redirectConf("1.0.0", "nftables"), func(t *testing.T, p *plugin) {
			p.inPod(t, "ip -6 rule del pref 32765")
		}, []string{"IPv6 rule 32765: not iif net1 lookup 17746 is missing"}},
		{"changed MAC", redirectConf("1.0.0", "nftables"), func(t *testing.T, p *plugin) {
			p.inPod(t, "ip link set net1 address 02:00:00:00:00:99")
		}, []string{"MAC is 02:00:00:00:00:99"}},
		{"link down", redirectConf("1.0.0", "nftables"), func(t *testing.T, p *plugin) { p.inPod(t, "ip link set net1 down") }, []string{"net1: link is down"}},
		{"forwarding off", redirectConf("1.0.0", "nftables"), func(t *testing.T, p *plugin) { p.inPod(t, "sysctl -w net.ipv4.ip_forward=0") }, []string{"ip_forward is 0"}},
		{"deleted DNAT rule/nftables", redirectConf("1.0.0", "nftables"), deleteOneDNATRule, []string{"nftables", "dnat"}},
		{"deleted DNAT rule/iptables", redirectConf("1.0.0", "iptables"), deleteOneDNATRule, []string{"iptables", "dnat"}},
		{"input guard emptied/nftables", proxyConf("1.0.0", "nftables"), flushInputGuard, []string{"nftables", "input drop rule for IPv4 tcp new on net1 is missing"}},
		{"input guard emptied/iptables", proxyConf("1.0.0", "iptables"), flushInputGuard, []string{"iptables", "input drop rule for IPv4 tcp new on net1 is missing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlugin(t)
			withPrev := withPrevResult(t, tc.conf, p.mustAdd(t, tc.conf))
			tc.tamper(t, p)
			err := p.check(p.args(withPrev))
			wantCode(t, err, errDrift)
			for _, w := range tc.want {
				if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(w)) {
					t.Errorf("CHECK error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// deleteOneDNATRule removes the first DNAT rule it finds, with the tool of the
// backend the test used.
func deleteOneDNATRule(t *testing.T, p *plugin) {
	t.Helper()
	position := map[string]int{} // rules seen so far per chain
	for _, line := range strings.Split(p.inPod(t, "iptables -t nat -S"), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "-A" {
			continue
		}
		position[f[1]]++
		if strings.Contains(line, "-j DNAT") {
			p.inPod(t, fmt.Sprintf("iptables -t nat -D %s %d", f[1], position[f[1]]))
			return
		}
	}
	var table, chain string
	for _, line := range strings.Split(p.inPod(t, "nft -a list ruleset"), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "table":
			table = f[1] + " " + f[2]
		case len(f) >= 2 && f[0] == "chain":
			chain = f[1]
		case strings.Contains(line, "dnat") && len(f) > 2 && f[len(f)-2] == "handle":
			p.inPod(t, fmt.Sprintf("nft delete rule %s %s handle %s", table, chain, f[len(f)-1]))
			return
		}
	}
	t.Fatal("no DNAT rule found to delete")
}

// flushInputGuard empties the input guard's chain, with the tool of the backend the
// test used.
func flushInputGuard(t *testing.T, p *plugin) {
	t.Helper()
	for _, line := range strings.Split(p.inPod(t, "iptables -S"), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "-N" && strings.HasSuffix(f[1], "-IN") {
			p.inPod(t, "iptables -F "+f[1])
			return
		}
	}
	for _, line := range strings.Split(p.inPod(t, "nft list tables"), "\n") {
		if f := strings.Fields(line); len(f) == 3 && strings.HasPrefix(f[2], "egress_router_") {
			p.inPod(t, "nft flush chain inet "+f[2]+" input")
			return
		}
	}
	t.Fatal("no input guard found to empty")
}

// STATUS: fine with the master up; code 50 with the master missing or down, or with
// no working NAT backend (iptables chosen, and no iptables on PATH), in every mode:
// the proxy modes write the input guard.
func TestStatusNeedsAnUpMasterAndABackend(t *testing.T) {
	p := newPlugin(t)
	conf := redirectConf("1.1.0", "auto")
	if err := p.status(conf); err != nil {
		t.Fatalf("STATUS with ext0 up: %v", err)
	}
	t.Run("no backend", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		wantCode(t, p.status(redirectConf("1.1.0", "iptables")), errPluginNotAvailable, "iptables")
		wantCode(t, p.status(proxyConf("1.1.0", "iptables")), errPluginNotAvailable, "iptables")
	})
	wantCode(t, p.status(strings.Replace(conf, `"master": "ext0"`, `"master": "nosuch0"`, 1)), errPluginNotAvailable, "nosuch0")
	p.tp.Exec(t, p.tp.Node, "ip", "link", "set", "ext0", "down").Run(t)
	wantCode(t, p.status(conf), errPluginNotAvailable, "ext0", "down")
	if err := cmdGC(p.args(conf)); err != nil {
		t.Errorf("GC with a valid config: %v", err)
	}
}

// A failure at any step of ADD leaves the namespace as it was, the namespace-wide
// sysctls (redirect mode's forwarding, the proxy modes' conntrack TIME_WAIT) included.
func TestFailedAddLeavesNothingBehind(t *testing.T) {
	for mode, conf := range map[string]string{"redirect": redirectConf("1.0.0", "auto"), "http-proxy": proxyConf("1.0.0", "auto")} {
		t.Run(mode, func(t *testing.T) {
			p := newPlugin(t)
			var steps []string
			failBefore = func(step string) error { steps = append(steps, step); return nil }
			t.Cleanup(func() { failBefore = nil })
			p.mustAdd(t, conf) // also loads conntrack, whose sysctls then exist in the pod
			if err := p.del(p.args(conf)); err != nil {
				t.Fatal(err)
			}
			if len(steps) < 5 {
				t.Fatalf("steps = %q", steps)
			}
			if guard, up := slices.Index(steps, "apply netfilter"), slices.Index(steps, "set link up"); guard < 0 || guard > up {
				t.Errorf("steps %q: the input guard must be in place before net1 comes up", steps)
			}
			sysctls := "net.ipv4.ip_forward " + timeWaitSysctl
			for _, failing := range append(steps[1:], "after the last") {
				t.Run(failing, func(t *testing.T) {
					p.inPod(t, "sysctl -qw net.ipv4.ip_forward=0 "+timeWaitSysctl+"=120")
					failBefore = func(step string) error {
						if step == failing {
							return fmt.Errorf("injected failure before %s", step)
						}
						return nil
					}
					if failing == "after the last" {
						failBefore = nil
						p.mustAdd(t, conf)
						if err := p.del(p.args(conf)); err != nil {
							t.Fatal(err)
						}
						p.assertNothingLeft(t)
						return
					}
					_, err := p.add(p.args(conf))
					wantCode(t, err, types.ErrInternal, "injected failure before "+failing)
					p.assertNothingLeft(t)
					if got := strings.Fields(p.inPod(t, "sysctl -n "+sysctls)); !slices.Equal(got, []string{"0", "120"}) {
						t.Errorf("%s are %q, were 0 and 120", sysctls, got)
					}
				})
			}
		})
	}
}

// A conntrack TIME_WAIT other than the kernel's default is the pod's own choice (CRI-O
// applies a pod's sysctls before ADD) and stays.
func TestAddKeepsAConntrackTimeWaitThePodChose(t *testing.T) {
	p := newPlugin(t)
	conf := proxyConf("1.0.0", "auto")
	p.mustAdd(t, conf) // loads conntrack, whose sysctls then exist in the pod
	if err := p.del(p.args(conf)); err != nil {
		t.Fatal(err)
	}
	p.inPod(t, "sysctl -qw "+timeWaitSysctl+"=30")
	p.mustAdd(t, conf)
	if got := strings.TrimSpace(p.inPod(t, "sysctl -n "+timeWaitSysctl)); got != "30" {
		t.Fatalf("%s = %s after ADD, want the pod's 30", timeWaitSysctl, got)
	}
}

// A chained prevResult comes back with the attachment appended.
func TestChainedPrevResultIsPassedThrough(t *testing.T) {
	p := newPlugin(t)
	prev := &current.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*current.Interface{{Name: "eth0", Sandbox: p.pod.NS.Path()}},
		IPs:        []*current.IPConfig{{Interface: current.Int(0), Address: *mustCIDR(t, "10.128.0.20/24")}},
	}
	r := p.mustAdd(t, withPrevResult(t, proxyConf("1.0.0", "auto"), prev))
	if len(r.Interfaces) != 2 || r.Interfaces[0].Name != "eth0" || r.Interfaces[1].Name != "net1" {
		t.Fatalf("interfaces = %v", r.Interfaces)
	}
	if len(r.IPs) != 3 || *r.IPs[0].Interface != 0 || *r.IPs[1].Interface != 1 {
		t.Fatalf("ips = %v", r.IPs)
	}
}

// log_file receives structured lines in the node policy's log directory, which the
// plugin creates (0750); the file is created 0640. stdout carries only the result
// (CmdAdd parses it).
func TestLogFileIsHonoured(t *testing.T) {
	p := newPlugin(t)
	logDir := filepath.Join(t.TempDir(), "logs")
	withNodePolicy(t, fmt.Sprintf(`{"logDir": %q}`, logDir))
	logFile := filepath.Join(logDir, "egress-router.log")
	conf := strings.Replace(proxyConf("1.0.0", "auto"), `"mode": "http-proxy"`, fmt.Sprintf(`"mode": "http-proxy", "log_file": %q, "log_level": "debug"`, logFile), 1)
	p.mustAdd(t, conf)
	data, err := os.ReadFile(logFile)
	if err != nil || !strings.Contains(string(data), `"msg":"ADD done"`) {
		t.Fatalf("log file: %v\n%s", err, data)
	}
	for path, want := range map[string]os.FileMode{logDir: os.ModeDir | 0o750, logFile: 0o640} {
		if info, err := os.Stat(path); err != nil || info.Mode() != want&^umask() {
			t.Errorf("%s: %v %v, want %v", path, info.Mode(), err, want&^umask())
		}
	}
}

// umask reads the process's file mode creation mask.
func umask() os.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}
