package nat

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/egress-router/egress-router/internal/redirect"
)

var (
	// xtCtTests are the conntrack conditions in the conntrack match's words, as
	// iptables-save prints them. DNAT is the virtual state of a connection whose
	// destination was translated: the bit nft's `ct status dnat` tests.
	xtCtTests = map[ctMatch][]string{
		ctEstablished: {"--ctstate", "RELATED,ESTABLISHED"},
		ctDNAT:        {"--ctstate", "DNAT"},
		ctNotDNAT:     {"!", "--ctstate", "DNAT"},
		ctNew:         {"--ctstate", "NEW"},
	}
	xtTargets = map[verdict]string{accept: "ACCEPT", drop: "DROP", dnat: "DNAT", snat: "SNAT"}
	xtToFlags = map[verdict]string{dnat: "--to-destination", snat: "--to-source"}
	// xtModules are the match extensions xtArgs loads.
	xtModules = []string{"tcp", "udp", "sctp", "conntrack", "comment"}
)

// xtArgs renders r as an iptables rule specification in the order iptables-save
// prints it back, so xtRule can read it. The family is the tool's (iptables or
// ip6tables), not part of the specification.
func xtArgs(r rule) []string {
	var a []string
	if r.in != "" {
		a = append(a, "-i", r.in)
	}
	if r.notIn != "" {
		a = append(a, "!", "-i", r.notIn)
	}
	if r.out != "" {
		a = append(a, "-o", r.out)
	}
	if r.proto != "" {
		a = append(a, "-p", string(r.proto))
		if r.dport != 0 {
			a = append(a, "-m", string(r.proto), "--dport", strconv.Itoa(int(r.dport)))
		}
	}
	if test, ok := xtCtTests[r.ct]; ok {
		a = append(append(a, "-m", "conntrack"), test...)
	}
	a = append(a, "-j", xtTargets[r.action])
	if flag, ok := xtToFlags[r.action]; ok {
		a = append(a, flag, formatTarget(r.to))
	}
	return a
}

// xtRule reads a rule specification back. Options xtArgs does not write (or a rule
// without a target) make it an unknown rule; comments are not compared.
func xtRule(c chain, f family, args []string) rule {
	r := rule{chain: c, family: f}
	if !r.readArgs(args) || r.action == 0 {
		return rule{chain: c, family: f, unknown: strings.Join(args, " ")}
	}
	return r
}

func (r *rule) readArgs(args []string) bool {
	for len(args) > 0 {
		neg := args[0] == "!"
		if neg {
			args = args[1:]
		}
		if len(args) < 2 {
			return false
		}
		opt, val := args[0], args[1]
		args = args[2:]
		if !r.readOption(opt, val, neg) {
			return false
		}
	}
	return true
}

func (r *rule) readOption(opt, val string, neg bool) bool {
	toFlag, isNAT := xtToFlags[r.action]
	switch {
	case opt == "--ctstate":
		return r.readCtstate(val, neg)
	case neg:
		return opt == "-i" && setOnce(&r.notIn, val)
	case opt == "-i":
		return setOnce(&r.in, val)
	case opt == "-o":
		return setOnce(&r.out, val)
	case opt == "-p":
		_, known := l4protos[redirect.Proto(val)]
		return known && setOnce(&r.proto, redirect.Proto(val))
	case opt == "--dport":
		port, err := strconv.ParseUint(val, 10, 16)
		return err == nil && port != 0 && setOnce(&r.dport, uint16(port))
	case opt == "-m":
		return slices.Contains(xtModules, val)
	case opt == "--comment":
		return true
	case opt == "-j":
		for v, target := range xtTargets {
			if target == val {
				return setOnce(&r.action, v)
			}
		}
	case isNAT && opt == toFlag:
		to, ok := parseNATTarget(val)
		return ok && setOnce(&r.to, to)
	}
	return false
}

func (r *rule) readCtstate(val string, neg bool) bool {
	got := []string{"--ctstate", val}
	if neg {
		got = append([]string{"!"}, got...)
	}
	for m, test := range xtCtTests {
		if slices.Equal(got, test) {
			return setOnce(&r.ct, m)
		}
	}
	return false
}

// parseNATTarget reads "203.0.113.25", "203.0.113.25:80" or "[2001:db8::1]:80".
func parseNATTarget(s string) (netip.AddrPort, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, true
	}
	a, err := netip.ParseAddr(s)
	return netip.AddrPortFrom(a, 0), err == nil
}
