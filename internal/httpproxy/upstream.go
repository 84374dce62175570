package httpproxy

import (
	"bufio"
	"net"
	"net/netip"

	"github.com/egress-router/egress-router/internal/policy"
)

// upstream is a connection to a destination: a tunnel's other end, or a request's,
// kept for the next request of the same client connection to the same target. It is
// never handed to another client, so one client's bytes can never end up in another's
// response. A tunnel's has no buffers: its socket stays raw for splice.
type upstream struct {
	tcp    *net.TCPConn
	rw     deadlineConn
	br     *bufio.Reader
	bw     *bufio.Writer
	target target
	addr   netip.AddrPort
	source netip.Addr // the reserved source it left from; invalid: the kernel chose
}

// connectUpstream returns the decision for t and leaves c.up connected to it. A kept
// upstream for the same target is reused when the current rules still allow its
// address and still reserve the source it left from; reused says so, since a kept
// connection may have been closed by the other end in the meantime.
func (c *clientConn) connectUpstream(rs *ruleSet, t target) (d policy.Decision, reused bool, err error) {
	if c.up != nil && c.up.target == t && c.up.source == rs.source(c.up.addr.Addr()) {
		if d = rs.decide(t, c.up.addr.Addr()); d.Allow {
			return d, true, nil
		}
		c.closeUpstream()
		return d, false, errDenied
	}
	c.closeUpstream()
	u, d, err := c.s.open(c.s.base, rs, t)
	if err != nil {
		return d, false, err
	}
	u.rw.init(u.tcp, c.s.IdleTimeout)
	u.br = bufio.NewReaderSize(&u.rw, 4<<10)
	u.bw = bufio.NewWriterSize(&u.rw, 4<<10)
	c.setUp(u)
	return d, false, nil
}

func (c *clientConn) closeUpstream() {
	if c.up != nil {
		c.up.tcp.Close()
		c.setUp(nil)
	}
}
