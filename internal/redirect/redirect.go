// Package redirect is the grammar of redirect mode's destination lines
// (ip.destinations, the legacy EGRESS_DESTINATION):
//
//	<port> <proto> <ip>                 local port to the same port on <ip>
//	<port> <proto> <ip> <remote port>   local port to <remote port> on <ip>
//	<ip>                                fallback for everything else; last line only
package redirect

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/egress-router/egress-router/internal/canonical"
	"github.com/egress-router/egress-router/internal/lines"
)

// Proto is a transport protocol the kernel can DNAT by port.
type Proto string

const (
	TCP  Proto = "tcp"
	UDP  Proto = "udp"
	SCTP Proto = "sctp"
)

// Rule sends connections to local Port/Proto on to Target:TargetPort.
type Rule struct {
	Port       uint16
	Proto      Proto
	Target     netip.Addr
	TargetPort uint16
}

// String renders the rule in its normalised line form, which Parse reads back as the
// same rule.
func (r Rule) String() string {
	s := fmt.Sprintf("%d %s %s", r.Port, r.Proto, r.Target)
	if r.TargetPort != r.Port {
		s += " " + strconv.Itoa(int(r.TargetPort))
	}
	return s
}

// Table is a parsed destination list. Fallback is the zero Addr when there is none.
type Table struct {
	Rules    []Rule
	Fallback netip.Addr
}

// Lines renders the table as normalised lines.
func (t Table) Lines() []string {
	out := make([]string, 0, len(t.Rules)+1)
	for _, r := range t.Rules {
		out = append(out, r.String())
	}
	if t.Fallback.IsValid() {
		out = append(out, t.Fallback.String())
	}
	return out
}

// Targets lists every address the table sends traffic to, fallback included.
func (t Table) Targets() []netip.Addr {
	out := make([]netip.Addr, 0, len(t.Rules)+1)
	for _, r := range t.Rules {
		out = append(out, r.Target)
	}
	if t.Fallback.IsValid() {
		out = append(out, t.Fallback)
	}
	return out
}

// Parse reads destination lines (see lines.Split for the accepted shapes) and reports
// every bad line, not just the first.
func Parse(entries []string) (Table, error) {
	var (
		t    Table
		errs []error
		seen = map[localPort]int{} // -> the line number that uses it
	)
	all := lines.Split(entries)
	for i, l := range all {
		if len(l.Fields) == 1 {
			target, err := parseTarget(l.Fields[0])
			switch {
			case err != nil:
				errs = append(errs, lines.Errorf(l, "%v", err))
			case i != len(all)-1:
				errs = append(errs, lines.Errorf(l, "a fallback address (a line with only an IP) must be the last line"))
			default:
				t.Fallback = target
			}
			continue
		}
		r, err := parseRule(l)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		key := localPort{r.Port, r.Proto}
		if first, dup := seen[key]; dup {
			errs = append(errs, lines.Errorf(l, "local port %d/%s is already used on line %d", r.Port, r.Proto, first))
			continue
		}
		seen[key] = l.Number
		t.Rules = append(t.Rules, r)
	}
	if err := errors.Join(errs...); err != nil {
		return Table{}, err
	}
	return t, nil
}

// localPort is what a destination line claims on the router: a port of a protocol.
type localPort struct {
	port  uint16
	proto Proto
}

func parseRule(l lines.Line) (Rule, error) {
	f := l.Fields
	if len(f) < 3 || len(f) > 4 {
		return Rule{}, lines.Errorf(l, "want <port> <protocol> <ip> [<remote port>], or a single fallback <ip> on the last line")
	}
	var (
		r    Rule
		errs []string
		err  error
	)
	if r.Port, err = lines.Port(f[0]); err != nil {
		errs = append(errs, "local "+err.Error())
	}
	switch p := Proto(strings.ToLower(f[1])); p {
	case TCP, UDP, SCTP:
		r.Proto = p
	default:
		errs = append(errs, fmt.Sprintf("unknown protocol %s (want tcp, udp or sctp)", strconv.Quote(f[1])))
	}
	if r.Target, err = parseTarget(f[2]); err != nil {
		errs = append(errs, err.Error())
	}
	r.TargetPort = r.Port
	if len(f) == 4 {
		if r.TargetPort, err = lines.Port(f[3]); err != nil {
			errs = append(errs, "remote "+err.Error())
		}
	}
	if len(errs) > 0 {
		return Rule{}, lines.Errorf(l, "%s", strings.Join(errs, "; "))
	}
	return r, nil
}

// parseTarget reads a destination address: one IP literal, never a range or a name,
// and never an address the kernel cannot DNAT to.
func parseTarget(s string) (netip.Addr, error) {
	if strings.Contains(s, "/") {
		return netip.Addr{}, fmt.Errorf("%s is a range; a destination must be a single IP address", strconv.Quote(s))
	}
	a, err := canonical.Addr(s)
	if err != nil {
		if _, nameErr := canonical.Hostname(s); nameErr == nil {
			return netip.Addr{}, fmt.Errorf("%s is a host name; redirect destinations must be IP addresses (dns-proxy mode forwards to names)", strconv.Quote(s))
		}
		return netip.Addr{}, err
	}
	if a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("%s cannot be a destination (unspecified, loopback or multicast)", strconv.Quote(s))
	}
	return a, nil
}
