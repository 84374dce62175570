// Package nat writes redirect mode's NAT and forward-filter state into the router
// pod's network namespace. One interface, two backends (nftables over netlink, and
// iptables through one iptables-restore call); callers run them inside the pod netns.
package nat

import (
	"net/netip"

	"github.com/egress-router/egress-router/pkg/redirect"
)

// Attachment identifies the state one CNI attachment owns; every table, chain or rule a
// backend writes is tagged with it, so it can be found, checked and removed.
type Attachment struct {
	ContainerID string
	IfName      string // the egress interface, net1
}

// Ruleset is everything one attachment programs.
type Ruleset struct {
	// Egress is the macvlan interface traffic leaves on (net1). Traffic arriving on any
	// other interface is the cluster side and is redirected.
	Egress string
	// Sources are the reserved addresses, at most one per family: SNAT on Egress uses
	// the one of the packet's family.
	Sources  []netip.Addr
	Redirect redirect.Table
}

// Backend programs a Ruleset. All methods act on the current network namespace.
type Backend interface {
	// Name is "nftables" or "iptables".
	Name() string
	// Available reports why the backend cannot work here, or nil.
	Available() error
	// Apply writes the ruleset in one atomic transaction, replacing any state the
	// attachment already has (an ADD over an older copy never duplicates it).
	Apply(a Attachment, rs Ruleset) error
	// Check compares the live state with rs and returns an error naming what drifted
	// (a missing DNAT rule, a changed SNAT source, ...).
	Check(a Attachment, rs Ruleset) error
	// Remove deletes the attachment's state; it succeeds when there is none.
	Remove(a Attachment) error
}
