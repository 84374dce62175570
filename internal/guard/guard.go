// Package guard is the destination guard both proxies apply to every address they are
// about to dial. Loopback, unspecified, link-local, multicast and cloud metadata
// addresses are refused unless a rule names them explicitly; a name rule or "*" never
// counts as naming them — a name that resolves to 127.0.0.1 or 169.254.169.254 must not
// get through on the strength of the name. CheckInternal adds the private ranges, for
// decisions taken on a name (the HTTP proxy's name rules).
package guard

import (
	"errors"
	"fmt"
	"net/netip"
)

// Block is one guarded range and why it is guarded.
type Block struct {
	Prefix netip.Prefix
	Reason string
}

// always is what no proxy dials unless a rule names it. Most specific first, so a
// metadata address reports as metadata rather than as link-local.
var always = []Block{
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
	// The local-use NAT64 prefix may embed IPv4 anywhere in it: no way to check it.
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a local-use NAT64 address"},
}

// internal are the private ranges: a cluster's service and pod networks and a
// company's internal servers live there.
var internal = []Block{
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address"},
	{netip.MustParsePrefix("fc00::/7"), "a unique local address"},
}

// IPv6 forms that embed an IPv4 address: a translator, a relay or a host's own stack
// may deliver a packet sent to the IPv6 form to the IPv4 address, so that is what gets
// checked too.
var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96")    // RFC 6052 well-known prefix
	sixToFour  = netip.MustParsePrefix("2002::/16")       // RFC 3056: bits 16-47
	compatible = netip.MustParsePrefix("::/96")           // RFC 4291 2.5.5.1, deprecated
	siit       = netip.MustParsePrefix("::ffff:0:0:0/96") // RFC 2765 IPv4-translated
	teredo     = netip.MustParsePrefix("2001::/32")       // RFC 4380: server and client
)

// unlockedBy reports whether a rule naming rule lifts the block: the rule must lie
// inside the guarded range (169.254.169.254 lifts the metadata block; 169.254.0.0/16
// lifts the link-local block but not the metadata one; 0.0.0.0/0 lifts nothing).
func (b Block) unlockedBy(rule netip.Prefix) bool {
	return rule.Bits() >= b.Prefix.Bits() && b.Prefix.Contains(rule.Addr())
}

// Error says why an address was refused.
type Error struct {
	Addr  netip.Addr
	Via   netip.Addr // the IPv6 address that embeds Addr, when one was dialled
	Block Block
}

func (e *Error) Error() string {
	if e.Via.IsValid() {
		return fmt.Sprintf("destination %s embeds %s, %s, and no rule names it", e.Via, e.Addr, e.Block.Reason)
	}
	return fmt.Sprintf("destination %s is %s and no rule names it", e.Addr, e.Block.Reason)
}

var errInvalid = errors.New("destination is not a valid IP address")

// Check refuses an always-guarded address unless one of the explicitly named prefixes
// (allow address rules, IP literals in forwarding lines) lifts its block.
func Check(a netip.Addr, named ...netip.Prefix) error {
	return check(a, named, always)
}

// CheckInternal is Check plus the private ranges, for an address reached on the
// strength of a name rule: such a name must not lead into the cluster or the company
// network unless an address rule names the range.
func CheckInternal(a netip.Addr, named ...netip.Prefix) error {
	return check(a, named, always, internal)
}

func check(a netip.Addr, named []netip.Prefix, lists ...[]Block) error {
	if !a.IsValid() {
		return errInvalid
	}
	a = a.WithZone("")
	if err := checkIn(a, named, lists); err != nil {
		return err
	}
	for _, v4 := range embeddedIPv4(a) {
		if !v4.IsValid() {
			continue
		}
		if err := checkIn(v4, named, lists); err != nil {
			err.Via = a
			return err
		}
	}
	return nil
}

func checkIn(a netip.Addr, named []netip.Prefix, lists [][]Block) *Error {
	for _, list := range lists {
		for _, b := range list {
			if !b.Prefix.Contains(a) {
				continue
			}
			for _, p := range named {
				if p.Contains(a) && b.unlockedBy(p) {
					return nil
				}
			}
			return &Error{Addr: a, Block: b}
		}
	}
	return nil
}

// embeddedIPv4 returns the IPv4 addresses an IPv6 address embeds (NAT64, 6to4,
// IPv4-compatible, SIIT: one; Teredo: its server and its client, whose address is
// stored inverted); unused entries are invalid. An array, not a slice, so the check
// on every request allocates nothing.
func embeddedIPv4(a netip.Addr) (v4 [2]netip.Addr) {
	b := a.As16()
	last := netip.AddrFrom4([4]byte(b[12:16]))
	switch {
	case a.Is4():
	case nat64.Contains(a), siit.Contains(a):
		v4[0] = last
	case compatible.Contains(a):
		// :: and ::1 are themselves; the always list guards them.
		if !a.IsUnspecified() && !a.IsLoopback() {
			v4[0] = last
		}
	case sixToFour.Contains(a):
		v4[0] = netip.AddrFrom4([4]byte(b[2:6]))
	case teredo.Contains(a):
		v4[0] = netip.AddrFrom4([4]byte(b[4:8]))
		v4[1] = netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
	}
	return v4
}
