package httpproxy

import (
	"fmt"
	"time"

	"github.com/egress-router/egress-router/internal/policy"
	"github.com/egress-router/egress-router/internal/relay"
)

const connectEstablished = "HTTP/1.1 200 Connection established\r\n\r\n"

// tunnel serves a CONNECT request: decide, dial, answer 200, pass on whatever the
// client sent after its request head, then relay both raw sockets with splice. A
// refused CONNECT closes the connection: bytes the client sent early (a TLS hello) are
// never read as another request.
func (c *clientConn) tunnel() {
	req := &c.req
	if req.contentLength > 0 || req.hasTE {
		c.fail(400)
		return
	}
	t, err := parseAuthority(req.start[1], 0)
	if err != nil {
		c.fail(400)
		return
	}
	rs := c.s.rules.Load()
	if !c.s.connectAllowed(t.port) {
		c.record("tunnel", rs.tunnels, policy.Refused(fmt.Errorf("CONNECT to port %d is not allowed", t.port)), t)
		c.fail(403)
		return
	}
	u, d, err := c.s.open(c.s.base, rs, t)
	if err == nil {
		c.setUp(u)
	}
	c.record("tunnel", rs.tunnels, d, t)
	if err != nil {
		c.fail(statusForUpstreamError(err))
		return
	}
	up := u.tcp
	var early int64
	_, err = c.bw.WriteString(connectEstablished)
	if err == nil {
		err = c.bw.Flush()
	}
	if n := c.br.Buffered(); err == nil && n > 0 {
		p, _ := c.br.Peek(n)
		up.SetWriteDeadline(time.Now().Add(c.s.IdleTimeout))
		_, err = up.Write(p)
		early = int64(n)
	}
	if err != nil {
		return // the connection's close closes up too
	}
	// From here on the sockets are raw: no deadlines, no buffers.
	c.tcp.SetDeadline(time.Time{})
	up.SetDeadline(time.Time{})
	c.br, c.bw = nil, nil
	c.s.Metrics.ActiveTunnels.Inc()
	ended := make(chan relay.Result, 1)
	// Under mu, so abort either closes the connections before the relay takes them
	// (the relay then ends at once) or finds the session to close.
	c.mu.Lock()
	c.tunnelled = relay.Relay{IdleTimeout: c.s.TunnelIdleTimeout}.RunThen(c.tcp, up, func(res relay.Result, _ error) { ended <- res })
	c.mu.Unlock()
	res := <-ended
	c.s.Metrics.ActiveTunnels.Dec()
	c.s.Metrics.sent.Add(float64(res.Sent + early))
	c.s.Metrics.received.Add(float64(res.Received))
}
