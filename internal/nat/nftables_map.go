package nat

import (
	"bytes"
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The per-port DNAT rules of a family live in one map, keyed by protocol and port,
// that one prerouting rule looks up:
//
//	meta nfproto ipv4 iifname != "net1" dnat ip to meta l4proto . th dport map @redirect4
//
// Written as rules, a thousand destination lines were a thousand NEWRULE messages,
// each acked and each NAT rule validated by the kernel on its own, and every new
// connection walked them in order. As map elements they go in a few NEWSETELEM
// messages and a new connection costs one hash lookup. The rules stay the
// backend-neutral model: Apply writes them as elements, Check reads the elements back
// as the same rules, so diff compares them like any others.

// redirectMapNames are the maps of each family.
var redirectMapNames = map[family]string{ipv4: "redirect4", ipv6: "redirect6"}

// redirectMapTypes are the maps' data types: `ipv4_addr . inet_service` and
// `ipv6_addr . inet_service`; every map's key is `inet_proto . inet_service`.
var (
	redirectMapKey   = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	redirectMapTypes = map[family]nftables.SetDatatype{
		ipv4: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService),
		ipv6: nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetService),
	}
)

// The registers of the map lookup, as nft allocates them: the key's two parts in
// consecutive 32-bit registers, and the looked-up address and port from the first
// register on, so the port is in the 32-bit register after the 4- or 16-byte address
// (the kernel reports a 32-bit register that starts a 16-byte one by the latter's
// number).
const (
	regKeyProto = unix.NFT_REG_1 // NFT_REG32_00
	regKeyPort  = unix.NFT_REG32_01
	regToAddr   = unix.NFT_REG_1
)

var regToPort = map[family]uint32{ipv4: unix.NFT_REG32_01, ipv6: unix.NFT_REG_2}

// elementsPerMessage bounds a NEWSETELEM message: its element list is one netlink
// attribute, whose length has 16 bits (64 KiB), and an IPv6 element takes 48 bytes.
const elementsPerMessage = 1024

// inRedirectMap reports whether r is written as an element of its family's map: a
// DNAT of one protocol and port to an address and port of the rule's family.
func inRedirectMap(r rule) bool {
	return r.chain == prerouting && r.action == dnat && r.proto != "" && r.dport != 0 && r.ct == ctAny &&
		r.in == "" && r.out == "" && r.unknown == "" && r.to.Port() != 0 && r.family != anyFamily && familyOf(r.to.Addr()) == r.family
}

func newRedirectMap(table *nftables.Table, f family) *nftables.Set {
	return &nftables.Set{Table: table, Name: redirectMapNames[f], IsMap: true, Concatenation: true,
		KeyType: redirectMapKey, DataType: redirectMapTypes[f]}
}

// addElements adds elements to map m in as few messages as their size allows.
func addElements(conn *nftables.Conn, m *nftables.Set, elements []nftables.SetElement) error {
	for chunk := range slices.Chunk(elements, elementsPerMessage) {
		if err := conn.SetAddElements(m, chunk); err != nil {
			return fmt.Errorf("add elements to map %s: %w", m.Name, err)
		}
	}
	return nil
}

// redirectElement is r as an element of its family's map. Concatenations pad each
// part to a 32-bit register.
func redirectElement(r rule) nftables.SetElement {
	return nftables.SetElement{
		Key: append(registerWord([]byte{l4protos[r.proto]}), registerWord(binaryutil.BigEndian.PutUint16(r.dport))...),
		Val: append(r.to.Addr().AsSlice(), registerWord(binaryutil.BigEndian.PutUint16(r.to.Port()))...),
	}
}

func registerWord(b []byte) []byte { return append(b, make([]byte, 4-len(b))...) }

// redirectRule reads element e of the map that lookup (see readRedirectLookup)
// looks up back as the rule it was written from: lookup gives the family and
// interface, e the protocol, port and target. An element redirectElement would not
// write comes back as an unknown rule.
func redirectRule(lookup rule, e nftables.SetElement) rule {
	r := lookup
	if len(e.Key) == 8 && len(e.Val) >= 4 {
		for p, n := range l4protos {
			if n == e.Key[0] {
				r.proto = p
			}
		}
		r.dport = binaryutil.BigEndian.Uint16(e.Key[4:6])
		addr, _ := netip.AddrFromSlice(e.Val[:len(e.Val)-4])
		r.to = netip.AddrPortFrom(addr, binaryutil.BigEndian.Uint16(e.Val[len(e.Val)-4:]))
	}
	if !inRedirectMap(r) {
		return unknownElement(lookup.family, e)
	}
	if w := redirectElement(r); !bytes.Equal(w.Key, e.Key) || !bytes.Equal(w.Val, e.Val) {
		return unknownElement(lookup.family, e)
	}
	return r
}

// redirectRules reads the elements of lookup's map as rules (see redirectRule), in
// the order want lists them: a map has no order, and its rules match disjoint
// packets, so no order of theirs can be wrong.
func redirectRules(lookup rule, elements []nftables.SetElement, want []rule) []rule {
	wanted := make(map[rule]int, len(want))
	for i, w := range want {
		wanted[w.key()] = i
	}
	position := func(r rule) int {
		if i, ok := wanted[r.key()]; ok {
			return i
		}
		return len(want)
	}
	rules := make([]rule, len(elements))
	for i, e := range elements {
		rules[i] = redirectRule(lookup, e)
	}
	slices.SortStableFunc(rules, func(a, b rule) int { return cmp.Compare(position(a), position(b)) })
	return rules
}

func unknownElement(f family, e nftables.SetElement) rule {
	return rule{chain: prerouting, unknown: fmt.Sprintf("element %x : %x of map %s", e.Key, e.Val, redirectMapNames[f])}
}

// redirectLookupExprs renders the rule that DNATs r's family through map m: r's
// family and interface matches, then the lookup.
func redirectLookupExprs(r rule, m *nftables.Set) []expr.Any {
	portLoad := dportLoad(regKeyPort)
	return append(nftExprs(rule{family: r.family, notIn: r.notIn}),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regKeyProto},
		&portLoad,
		&expr.Lookup{SourceRegister: regKeyProto, DestRegister: regToAddr, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(nfprotos[r.family]), RegAddrMin: regToAddr, RegProtoMin: regToPort[r.family]},
	)
}

// readRedirectLookup recognises the rule redirectLookupExprs writes and returns it
// as the rule each element of the map extends: prerouting, family, interface, DNAT.
func readRedirectLookup(exprs []expr.Any) (rule, bool) {
	const tail = 4 // l4proto load, port load, lookup, nat
	if len(exprs) < tail {
		return rule{}, false
	}
	head, e := exprs[:len(exprs)-tail], exprs[len(exprs)-tail:]
	r := rule{chain: prerouting}
	if r.readFragments(head) != len(head) || r.family == anyFamily || r.in != "" || r.out != "" || r.key() != (rule{chain: prerouting, family: r.family}) {
		return rule{}, false
	}
	proto, okProto := e[0].(*expr.Meta)
	port, okPort := e[1].(*expr.Payload)
	lookup, okLookup := e[2].(*expr.Lookup)
	nat, okNAT := e[3].(*expr.NAT)
	if !okProto || !okPort || !okLookup || !okNAT ||
		*proto != (expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regKeyProto}) || *port != dportLoad(regKeyPort) ||
		lookup.SourceRegister != regKeyProto || lookup.DestRegister != regToAddr || !lookup.IsDestRegSet || lookup.Invert ||
		lookup.SetName != redirectMapNames[r.family] ||
		!natUses(nat, expr.NATTypeDestNAT, r.family, regToAddr, regToPort[r.family]) {
		return rule{}, false
	}
	r.action = dnat
	return r, true
}
