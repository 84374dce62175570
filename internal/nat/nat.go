// Package nat writes an attachment's packet filter state into the router pod's
// network namespace: in every mode the input guard, which keeps anything on the node
// network from opening a connection to the pod through the egress interface, and in
// redirect mode the NAT and forward filter. One interface, two backends (nftables
// over netlink, and iptables through one iptables-restore call); callers run them
// inside the pod netns. The guard needs conntrack; ShortenTimeWait bounds what that
// costs.
package nat

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/egress-router/egress-router/internal/redirect"
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
	// SourcePerFamily holds the reserved source of each family that has one (see
	// reserved.Sources.PerFamily): SNAT on Egress uses the one of the packet's family,
	// and each of their families is guarded.
	SourcePerFamily []netip.Addr
	// Redirect is empty in the proxy modes, which get the input guard alone.
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

// The names New takes.
const (
	NFTables = "nftables"
	IPTables = "iptables"
	Auto     = "auto" // the first that works
)

// New returns the backend kind names, checked to work here: NFTables, IPTables, or
// Auto (also "") for the first that does, nftables first because it needs no binary
// and replaces a whole attachment in one kernel transaction.
func New(kind string) (Backend, error) {
	var candidates []Backend
	switch kind {
	case NFTables:
		candidates = []Backend{nftablesBackend{}}
	case IPTables:
		candidates = []Backend{iptablesBackend{}}
	case Auto, "":
		candidates = []Backend{nftablesBackend{}, iptablesBackend{}}
	default:
		return nil, fmt.Errorf("unknown NAT backend %q (want nftables, iptables or auto)", kind)
	}
	var errs []error
	for _, b := range candidates {
		err := b.Available()
		if err == nil {
			return b, nil
		}
		errs = append(errs, fmt.Errorf("%s backend is unavailable: %w", b.Name(), err))
	}
	return nil, errors.Join(errs...)
}
