// Package dnstable is the grammar of the DNS proxy's forwarding lines
// (dnsProxy.destinations, the legacy EGRESS_DNS_PROXY_DESTINATION):
//
//	<port> <host>                 local port to the same port on <host>
//	<port> <host> <remote port>   local port to <remote port> on <host>
//
// <host> is an IPv4 or IPv6 literal or a DNS name, resolved at run time.
package dnstable

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/egress-router/egress-router/internal/canonical"
	"github.com/egress-router/egress-router/internal/lines"
)

// Host is a destination: exactly one of Addr and Name is set.
type Host struct {
	Addr netip.Addr
	Name string // canonical
}

func (h Host) String() string {
	if h.Addr.IsValid() {
		return h.Addr.String()
	}
	return h.Name
}

// Rule relays connections accepted on local Port to Host:RemotePort.
type Rule struct {
	Port       uint16
	Host       Host
	RemotePort uint16
}

// String renders the rule in its normalised line form.
func (r Rule) String() string {
	s := fmt.Sprintf("%d %s", r.Port, r.Host)
	if r.RemotePort != r.Port {
		s += " " + strconv.Itoa(int(r.RemotePort))
	}
	return s
}

// Table is a parsed list of forwarding lines.
type Table struct {
	Rules []Rule
}

// Lines renders the table as normalised lines.
func (t Table) Lines() []string {
	out := make([]string, len(t.Rules))
	for i, r := range t.Rules {
		out[i] = r.String()
	}
	return out
}

// Parse reads forwarding lines and reports every bad line.
func Parse(entries []string) (Table, error) {
	var (
		t    Table
		errs []error
		seen = map[uint16]int{}
	)
	for _, l := range lines.Split(entries) {
		r, err := parseRule(l)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if first, dup := seen[r.Port]; dup {
			errs = append(errs, lines.Errorf(l, "local port %d is already used on line %d", r.Port, first))
			continue
		}
		seen[r.Port] = l.Number
		t.Rules = append(t.Rules, r)
	}
	if err := errors.Join(errs...); err != nil {
		return Table{}, err
	}
	return t, nil
}

func parseRule(l lines.Line) (Rule, error) {
	f := l.Fields
	if len(f) < 2 || len(f) > 3 {
		return Rule{}, lines.Errorf(l, "want <port> <host> [<remote port>]")
	}
	var (
		r    Rule
		errs []string
		err  error
	)
	if r.Port, err = lines.Port(f[0]); err != nil {
		errs = append(errs, "local "+err.Error())
	}
	if r.Host, err = parseHost(f[1]); err != nil {
		errs = append(errs, err.Error())
	}
	r.RemotePort = r.Port
	if len(f) == 3 {
		if r.RemotePort, err = lines.Port(f[2]); err != nil {
			errs = append(errs, "remote "+err.Error())
		}
	}
	if len(errs) > 0 {
		return Rule{}, lines.Errorf(l, "%s", strings.Join(errs, "; "))
	}
	return r, nil
}

func parseHost(s string) (Host, error) {
	if strings.Contains(s, "/") {
		return Host{}, fmt.Errorf("%s is a range; a destination is one address or host name", strconv.Quote(s))
	}
	if strings.Contains(s, ":") {
		a, err := canonical.Addr(s)
		if err != nil {
			return Host{}, err
		}
		return Host{Addr: a}, nil
	}
	if a, err := canonical.Addr(s); err == nil {
		return Host{Addr: a}, nil
	}
	name, err := canonical.Hostname(s)
	if err != nil {
		return Host{}, err
	}
	return Host{Name: name}, nil
}
