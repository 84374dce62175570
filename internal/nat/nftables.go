package nat

import (
	"errors"
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nftablesBackend gives each attachment its own inet table, egress_router_<hash>,
// written over netlink: one table per attachment makes replace and remove a matter of
// deleting the table, and keeps attachments from touching each other's rules.
type nftablesBackend struct{}

func (nftablesBackend) Name() string { return NFTables }

// Available checks that nf_tables answers. It does not prove NAT support by creating
// and deleting a NAT chain: removing a base chain waits for an RCU grace period
// (several milliseconds on every ADD); a kernel with nf_tables but without its NAT
// expressions fails at Apply instead, with the kernel's error, and backend
// "iptables" is the way out.
func (nftablesBackend) Available() error {
	conn, err := newConn()
	if err != nil {
		return err
	}
	if _, err := conn.ListTablesOfFamily(nftables.TableFamilyINet); err != nil {
		return fmt.Errorf("list inet tables: %w", err)
	}
	return nil
}

// socketBuffer sizes the netlink buffers of a transaction. The kernel takes a batch in
// one sendmsg that must fit the send buffer, and answers each message with an ack
// that must fit the receive buffer; the defaults (net.core.wmem_max, rmem_max) hold a
// few hundred rules, and a thousand destination lines need a few megabytes. The FORCE
// options pass those maxima; they need CAP_NET_ADMIN, which anything writing
// nftables rules has anyway.
const socketBuffer = 16 << 20

// newConn opens a netlink connection able to carry a whole ruleset at once.
func newConn() (*nftables.Conn, error) {
	conn, err := nftables.New(nftables.WithSockOptions(func(c *netlink.Conn) error {
		raw, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var sockErr error
		if err := raw.Control(func(fd uintptr) {
			sockErr = errors.Join(
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBuffer),
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer))
		}); err != nil {
			return err
		}
		return sockErr
	}))
	if err != nil {
		return nil, fmt.Errorf("open netlink connection: %w", err)
	}
	return conn, nil
}

// nftChainSpecs are the base chains each table holds; the priorities are the ones
// nft calls dstnat, srcnat and filter.
var nftChainSpecs = map[chain]nftables.Chain{
	prerouting:  {Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest},
	postrouting: {Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource},
	forward:     {Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter},
	input:       {Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter},
}

func nftTable(a Attachment) *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: "egress_router_" + a.hash()}
}

// Apply deletes any older copy of the table and writes the new one in the same
// netlink batch, which the kernel commits as one transaction. The older copy is
// looked for first rather than deleted blindly: deleting base chains waits for an RCU
// grace period, which a first ADD need not pay. Each family's per-port DNAT rules go
// into its map, looked up by one rule where the first of them would be.
//
// Only the chains that hold rules are created: an empty base chain still hooks every
// packet, and an empty NAT chain would make the proxy modes, which translate nothing,
// depend on the kernel's NAT support.
func (nftablesBackend) Apply(a Attachment, rs Ruleset) error {
	rules, err := a.rulesOf(rs)
	if err != nil {
		return err
	}
	conn, table, exists, err := openTable(a)
	if err != nil {
		return err
	}
	if exists {
		conn.DelTable(table)
	}
	conn.AddTable(table)
	comment := userdata.AppendString(nil, userdata.TypeComment, a.comment())
	written := map[chain]*nftables.Chain{}
	for _, c := range usedChains(rules) {
		spec := nftChainSpecs[c]
		spec.Name, spec.Table = c.String(), table
		written[c] = conn.AddChain(&spec)
	}
	maps := map[family]*nftables.Set{}
	elements := map[family][]nftables.SetElement{}
	for _, r := range rules {
		if !inRedirectMap(r) {
			conn.AddRule(&nftables.Rule{Table: table, Chain: written[r.chain], Exprs: nftExprs(r), UserData: comment})
			continue
		}
		elements[r.family] = append(elements[r.family], redirectElement(r))
		if maps[r.family] == nil {
			maps[r.family] = newRedirectMap(table, r.family)
			if err := conn.AddSet(maps[r.family], nil); err != nil {
				return fmt.Errorf("add map %s: %w", maps[r.family].Name, err)
			}
			conn.AddRule(&nftables.Rule{Table: table, Chain: written[r.chain], Exprs: redirectLookupExprs(r, maps[r.family]), UserData: comment})
		}
	}
	for _, f := range families {
		if m := maps[f]; m != nil {
			if err := addElements(conn, m, elements[f]); err != nil {
				return err
			}
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("write table %s: %w", table.Name, err)
	}
	return nil
}

func (nftablesBackend) Remove(a Attachment) error {
	if err := a.validate(); err != nil {
		return err
	}
	conn, table, exists, err := openTable(a)
	if err != nil || !exists {
		return err
	}
	conn.DelTable(table)
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("delete table %s: %w", table.Name, err)
	}
	return nil
}

// openTable opens a connection and says whether the attachment's table is in the
// kernel.
func openTable(a Attachment) (conn *nftables.Conn, table *nftables.Table, exists bool, err error) {
	if conn, err = newConn(); err != nil {
		return nil, nil, false, err
	}
	table = nftTable(a)
	tables, err := conn.ListTablesOfFamily(table.Family)
	if err != nil {
		return nil, nil, false, fmt.Errorf("list tables: %w", err)
	}
	exists = slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == table.Name })
	return conn, table, exists, nil
}
