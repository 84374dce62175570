package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/link"
	"github.com/egress-router/egress-router/internal/nat"
	"github.com/egress-router/egress-router/internal/plan"
	"github.com/egress-router/egress-router/test/topology"
)

// haConf is conf with "ha": {"enabled": true}.
func haConf(t *testing.T, conf string) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(conf), &doc); err != nil {
		t.Fatal(err)
	}
	doc["ha"] = map[string]any{"enabled": true}
	out, _ := json.Marshal(doc)
	return string(out)
}

// activation is what the agent adds and removes for conf.
func activation(t *testing.T, conf string) link.Reservation {
	t.Helper()
	c, err := config.Load([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	return plan.New(c, nat.Attachment{IfName: "net1"}, topology.Master, nil).Activation
}

// In HA mode ADD leaves a standby: net1 up with its netfilter state, no reserved
// address, table or rule. CHECK accepts the standby and the active pod (what the agent
// adds with link.Hold), and refuses anything between; DEL removes either.
func TestHAAddLeavesAStandbyAndCheckAcceptsBothRoles(t *testing.T) {
	for _, tc := range []struct {
		name     string
		conf     string
		redirect bool
	}{
		{"redirect/nftables", redirectConf("1.0.0", "nftables"), true},
		{"redirect/iptables", redirectConf("1.0.0", "iptables"), true},
		{"http-proxy/nftables", proxyConf("1.0.0", "nftables"), false},
		{"http-proxy/iptables", proxyConf("1.0.0", "iptables"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlugin(t)
			conf := haConf(t, tc.conf)
			res := activation(t, conf)
			r := p.mustAdd(t, conf)
			if len(r.Interfaces) != 1 || r.Interfaces[0].Name != "net1" || len(r.IPs) != 0 {
				t.Fatalf("result: interfaces %v, ips %v; want net1 and no address", r.Interfaces, r.IPs)
			}
			p.assertStandby(t)
			withPrev := withPrevResult(t, conf, r)
			mustCheck := func(role string) {
				t.Helper()
				if err := p.check(p.args(withPrev)); err != nil {
					t.Fatalf("CHECK of the %s: %v", role, err)
				}
			}
			mustCheck("standby")

			inPod := func(f func() error) {
				t.Helper()
				if err := p.pod.NS.Do(func(ns.NetNS) error { return f() }); err != nil {
					t.Fatal(err)
				}
			}
			inPod(func() error { return link.Hold(res) })
			inPod(func() error { return link.Hold(res) }) // holding twice is harmless
			inPod(func() error { return link.AnnounceHeld(res) })
			p.assertLive(t, r, tc.redirect)
			mustCheck("active pod")

			p.inPod(t, "ip addr del 192.0.2.99/24 dev net1")
			err := p.check(p.args(withPrev))
			wantCode(t, err, errDrift, "neither held nor released", "address 192.0.2.99/24 is missing", "into table 17746 is present")

			inPod(func() error { return link.Release(res) })
			p.assertStandby(t)
			mustCheck("standby after release")
			inPod(func() error { return link.Release(res) }) // releasing twice is harmless

			if err := p.del(p.args(withPrev)); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			p.assertNothingLeft(t)
		})
	}
}

// assertStandby: net1 up, no global address, nothing in or into the policy table,
// and the netfilter state in place.
func (p *plugin) assertStandby(t *testing.T) {
	t.Helper()
	if l := p.inPod(t, "ip link show net1"); !strings.Contains(l, "state UP") {
		t.Errorf("net1 is not up:\n%s", l)
	}
	if a := p.inPod(t, "ip addr show net1"); strings.Contains(a, "scope global") {
		t.Errorf("a standby holds an address:\n%s", a)
	}
	for _, family := range []string{"-4", "-6"} {
		if rules := p.inPod(t, "ip "+family+" rule show"); strings.Contains(rules, "17746") {
			t.Errorf("a standby has a rule into the policy table:\n%s", rules)
		}
		if routes := p.inPod(t, "ip "+family+" route show table all"); strings.Contains(routes, "table 17746") {
			t.Errorf("a standby has policy routes:\n%s", routes)
		}
	}
	nft := p.inPod(t, "nft list ruleset") + p.inPod(t, "iptables-save")
	if !strings.Contains(strings.ToLower(nft), "egr") {
		t.Errorf("the standby has no netfilter state")
	}
}
