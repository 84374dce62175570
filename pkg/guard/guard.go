// Package guard is the destination guard both proxies apply to every address they are
// about to dial: loopback, unspecified, link-local, multicast and cloud metadata
// addresses are refused unless a rule names them explicitly. A name rule or "*" never
// counts as naming them; that is the point — a name that resolves to 127.0.0.1 or
// 169.254.169.254 must not get through on the strength of the name.
package guard

import (
	"fmt"
	"net/netip"
)

// Block is one guarded range and why it is guarded.
type Block struct {
	Prefix netip.Prefix
	Reason string
}

// blocks is ordered most specific first, so a metadata address reports as metadata
// rather than as link-local.
var blocks = []Block{
	{netip.MustParsePrefix("169.254.169.254/32"), "a cloud metadata address"},
	{netip.MustParsePrefix("100.100.100.200/32"), "a cloud metadata address"},
	{netip.MustParsePrefix("168.63.129.16/32"), "a cloud platform address"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "a cloud metadata address"},
	{netip.MustParsePrefix("255.255.255.255/32"), "the broadcast address"},
	{netip.MustParsePrefix("::/128"), "the unspecified address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified (this-network) address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	// An IPv4-mapped IPv6 answer reaches the IPv4 address it embeds; refuse the form
	// outright rather than guess which IPv4 rules should apply to it.
	{netip.MustParsePrefix("::ffff:0:0/96"), "an IPv4-mapped IPv6 address"},
}

// Blocked returns the guarded range holding a, if any.
func Blocked(a netip.Addr) (Block, bool) {
	a = a.WithZone("")
	for _, b := range blocks {
		if b.Prefix.Contains(a) {
			return b, true
		}
	}
	return Block{}, false
}

// UnlockedBy reports whether a rule naming rule explicitly lifts the block: the rule
// must lie inside the guarded range (169.254.169.254 or 169.254.0.0/16 lift the
// metadata block; 0.0.0.0/0 does not).
func (b Block) UnlockedBy(rule netip.Prefix) bool {
	return rule.Bits() >= b.Prefix.Bits() && b.Prefix.Contains(rule.Addr())
}

// Error says why an address was refused.
type Error struct {
	Addr  netip.Addr
	Block Block
}

func (e *Error) Error() string {
	return fmt.Sprintf("destination %s is %s and no rule names it", e.Addr, e.Block.Reason)
}

// Check refuses a guarded address unless one of the explicitly named prefixes (address
// rules, IP literals in forwarding lines) lifts its block and contains it.
func Check(a netip.Addr, named ...netip.Prefix) error {
	b, blocked := Blocked(a)
	if !blocked {
		return nil
	}
	for _, p := range named {
		if p.Contains(a.WithZone("")) && b.UnlockedBy(p) {
			return nil
		}
	}
	return &Error{Addr: a, Block: b}
}
