// Package policy is the HTTP proxy's allow/deny list (httpProxy.destinations, the
// legacy EGRESS_HTTP_PROXY_DESTINATION): its grammar and its first-match decision.
//
//	203.0.113.9 / 2001:db8::9   that address
//	203.0.113.0/24              that range
//	www.example.com             that host name exactly
//	*.example.com               example.com and every name under it
//	!<any of the above>         deny instead of allow
//	*                           allow everything not denied above; last line only
package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/egress-router/egress-router/internal/canonical"
	"github.com/egress-router/egress-router/internal/guard"
	"github.com/egress-router/egress-router/internal/lines"
)

// Kind says what a rule matches.
type Kind int

const (
	Address Kind = iota // one IP address (stored as a full-length prefix)
	Range               // a CIDR range
	Name                // one host name
	Domain              // a domain and every name under it
	Any                 // "*"
)

func (k Kind) String() string {
	return [...]string{"address", "range", "name", "domain", "any"}[k]
}

// Rule is one line of the list.
type Rule struct {
	Deny   bool
	Kind   Kind
	Prefix netip.Prefix // Address and Range
	Name   string       // Name and Domain: canonical, without the "*." of a Domain
	// dotName is "."+Name for a Domain, built once so matching allocates nothing.
	dotName string
}

// String renders the rule in its normalised line form.
func (r Rule) String() string {
	var s string
	switch r.Kind {
	case Address:
		s = r.Prefix.Addr().String()
	case Range:
		s = r.Prefix.String()
	case Name:
		s = r.Name
	case Domain:
		s = "*." + r.Name
	case Any:
		s = "*"
	}
	if r.Deny {
		return "!" + s
	}
	return s
}

// matches reports whether the rule applies to a request for host (canonical name, or
// "" when the client asked for an IP literal) about to dial addr.
func (r Rule) matches(host string, addr netip.Addr) bool {
	switch r.Kind {
	case Address, Range:
		return addr.IsValid() && r.Prefix.Contains(addr)
	case Name:
		return host != "" && host == r.Name
	case Domain:
		return host != "" && (host == r.Name || strings.HasSuffix(host, r.dotName))
	default:
		return true
	}
}

// Policy is a parsed list; the zero value denies everything.
type Policy struct {
	Rules []Rule
	// named holds the allow address and range rules, which are what lifts the
	// destination guard for an address (see guard.Check).
	named []netip.Prefix
	// exact holds the addresses of the allow address rules (not ranges): only those
	// lift the refusal of the proxy's own pod (see NamedAddrs).
	exact []netip.Addr
}

// NamedAddrs returns the addresses allow address rules name one by one. Some
// refusals yield only to such a rule, never to a range or a name that covers the
// address: the proxy's own pod is one (dialer.CheckLocal). The slice is shared.
func (p Policy) NamedAddrs() []netip.Addr {
	return p.exact
}

// Lines renders the policy as normalised lines.
func (p Policy) Lines() []string {
	out := make([]string, len(p.Rules))
	for i, r := range p.Rules {
		out[i] = r.String()
	}
	return out
}

// Decision is the outcome for one dial. It is built on every request, so it carries
// what decided rather than a formatted reason; Reason formats on demand.
type Decision struct {
	Allow bool
	// Rule is the index in Rules of the deciding rule, or -1 when no rule matched
	// (default deny) or the decision was a refusal.
	Rule    int
	Matched Rule
	// Refusal is why an address was refused whatever the rules say (the destination
	// guard, or a caller's own check); nil otherwise.
	Refusal error
}

// Refused is the decision for an address refused outside the rules.
func Refused(err error) Decision {
	return Decision{Rule: -1, Refusal: err}
}

// Reason says in words why, for logs and -explain.
func (d Decision) Reason() string {
	switch {
	case d.Refusal != nil:
		return d.Refusal.Error()
	case d.Rule < 0:
		return "no rule matches (default deny)"
	case d.Allow:
		return fmt.Sprintf("allowed by rule %d %q", d.Rule+1, d.Matched.String())
	default:
		return fmt.Sprintf("denied by rule %d %q", d.Rule+1, d.Matched.String())
	}
}

// Decide applies the list to a request for host (canonical, or "" for an IP literal)
// about to dial addr: the first matching rule decides, no match denies. An allowed
// address in a guarded range is refused unless an allow address rule names it; that
// includes the private ranges (guard.CheckInternal), since a rule allowing a name says
// nothing about where its owner may point it.
func (p Policy) Decide(host string, addr netip.Addr) Decision {
	for i, r := range p.Rules {
		if !r.matches(host, addr) {
			continue
		}
		if r.Deny {
			return Decision{Rule: i, Matched: r}
		}
		if err := guard.CheckInternal(addr, p.named...); err != nil {
			return Refused(err)
		}
		return Decision{Allow: true, Rule: i, Matched: r}
	}
	return Decision{Rule: -1}
}

// AllowsName reports whether some allow rule could match host before any deny rule
// does, judging by the name alone. A proxy uses it to refuse a request before
// resolving a name no dial could ever be allowed for.
func (p Policy) AllowsName(host string) bool {
	for _, r := range p.Rules {
		switch {
		case r.Kind == Address || r.Kind == Range:
			if !r.Deny {
				return true // depends on the address the name resolves to
			}
		case r.matches(host, netip.Addr{}):
			return !r.Deny
		}
	}
	return false
}

// Parse reads the list and reports every bad line.
func Parse(entries []string) (Policy, error) {
	var (
		p    Policy
		errs []error
	)
	all := lines.Split(entries)
	for i, l := range all {
		r, err := parseRule(l, i == len(all)-1)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.Rules = append(p.Rules, r)
		if !r.Deny && (r.Kind == Address || r.Kind == Range) {
			p.named = append(p.named, r.Prefix)
		}
		if !r.Deny && r.Kind == Address {
			p.exact = append(p.exact, r.Prefix.Addr())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Policy{}, err
	}
	return p, nil
}

func parseRule(l lines.Line, last bool) (Rule, error) {
	if len(l.Fields) != 1 {
		return Rule{}, lines.Errorf(l, "want one address, range or host name per line")
	}
	s := l.Fields[0]
	var r Rule
	if rest, ok := strings.CutPrefix(s, "!"); ok {
		r.Deny, s = true, rest
		if s == "" {
			return Rule{}, lines.Errorf(l, "nothing follows the deny mark \"!\"")
		}
	}
	switch {
	case s == "*":
		if r.Deny {
			return Rule{}, lines.Errorf(l, "\"!*\" is not allowed: everything no rule allows is already denied")
		}
		if !last {
			return Rule{}, lines.Errorf(l, "\"*\" (allow everything not denied above) must be the last line")
		}
		r.Kind = Any
	case strings.Contains(s, "/"):
		prefix, err := canonical.Prefix(s)
		if err != nil {
			return Rule{}, lines.Errorf(l, "%v", err)
		}
		if masked := prefix.Masked(); masked != prefix {
			return Rule{}, lines.Errorf(l, "%s has host bits set; did you mean %s?", strconv.Quote(s), masked)
		}
		r.Kind, r.Prefix = Range, prefix
	case strings.Contains(s, "*"):
		domain, ok := strings.CutPrefix(s, "*.")
		if !ok || strings.Contains(domain, "*") {
			return Rule{}, lines.Errorf(l, "a wildcard must be the whole first label, as in *.example.com, or \"*\" alone")
		}
		name, err := canonical.Hostname(domain)
		if err != nil {
			return Rule{}, lines.Errorf(l, "%v", err)
		}
		r.Kind, r.Name, r.dotName = Domain, name, "."+name
	default:
		if a, err := canonical.Addr(s); err == nil {
			r.Kind, r.Prefix = Address, netip.PrefixFrom(a, a.BitLen())
			break
		} else if strings.Contains(s, ":") {
			return Rule{}, lines.Errorf(l, "%v (rules name hosts or addresses, without a scheme or port)", err)
		}
		name, err := canonical.Hostname(s)
		if err != nil {
			return Rule{}, lines.Errorf(l, "%v", err)
		}
		r.Kind, r.Name = Name, name
	}
	return r, nil
}
