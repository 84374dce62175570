package httpproxy

import (
	"bytes"
	"errors"
	"io"
	"syscall"
	"time"
)

// errClient marks a failure on the client's side of an exchange, which gets no answer.
var errClient = errors.New("client connection failed")

// forward proxies one absolute-form request and reports whether the client connection
// may carry another.
func (c *clientConn) forward() bool {
	req := &c.req
	if req.hasTE && !req.chunked {
		c.fail(501)
		return false
	}
	authority, path, err := parseAbsolute(req.start[1])
	if err != nil {
		c.fail(400)
		return false
	}
	t, err := c.target(authority)
	if err != nil {
		c.fail(400)
		return false
	}
	body := requestBody(req)
	rs := c.s.rules.Load()
	d, reused, err := c.connectUpstream(rs, t)
	c.record("request", rs.requests, d, t)
	if err == nil {
		err = c.roundTrip(path, t, body)
		if err != nil && reused && body == noBody && isStale(err) && safeToRepeat(req.start[0]) {
			// The kept connection was closed by the destination, most likely while
			// idle, before the request reached it. It may also have read the request
			// and then reset: only a method that is safe to repeat is sent again.
			c.closeUpstream()
			if _, _, err = c.connectUpstream(rs, t); err == nil {
				err = c.roundTrip(path, t, body)
			}
		}
	}
	c.countBytes()
	switch {
	case err == nil:
		return c.relayResponse()
	case errors.Is(err, errClient):
	default:
		c.fail(statusForUpstreamError(err))
	}
	return false
}

// target parses the authority of a request, reusing the previous result when a
// keep-alive client repeats it.
func (c *clientConn) target(authority []byte) (target, error) {
	if len(authority) > 0 && bytes.Equal(authority, c.lastAuthority) {
		return c.last, nil
	}
	t, err := parseAuthority(authority, 80)
	if err == nil {
		c.lastAuthority = append(c.lastAuthority[:0], authority...)
		c.last = t
	}
	return t, err
}

func requestBody(h *head) bodyKind {
	switch {
	case h.chunked:
		return chunkBody
	case h.contentLength > 0:
		return lengthBody
	}
	return noBody
}

// roundTrip sends the request, head and body, and reads the final response head.
func (c *clientConn) roundTrip(path []byte, t target, body bodyKind) error {
	req, u := &c.req, c.up
	c.writeRequestHead(path, t, body)
	if body != noBody {
		if req.minor == 1 && c.expectsContinue() {
			c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if err := c.bw.Flush(); err != nil {
				return errClient
			}
		}
		if err := c.copyRequestBody(body); err != nil {
			return err
		}
	}
	if err := u.bw.Flush(); err != nil {
		return err
	}
	return c.readResponseHead()
}

// copyRequestBody copies the body to the upstream, telling a client failure (no answer
// owed) from an upstream one.
func (c *clientConn) copyRequestBody(body bodyKind) error {
	_, err := copyBody(c.up.bw, c.br, body, c.req.contentLength, true)
	if err != nil && (errors.Is(err, errBadChunk) || errors.Is(err, errBareLF)) {
		c.fail(400)
		return errClient
	}
	if err != nil && c.up.rw.failed {
		return err
	}
	if err != nil {
		return errClient
	}
	return nil
}

func (c *clientConn) writeRequestHead(path []byte, t target, body bodyKind) {
	req, w := &c.req, c.up.bw
	w.Write(req.start[0])
	w.WriteByte(' ')
	w.Write(path)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(t.authority)
	w.WriteString("\r\n")
	for _, f := range req.fields {
		if req.endToEnd(f.name) && !fieldIs(f.name, "expect") {
			writeField(w, f.name, f.value)
		}
	}
	switch {
	case body == chunkBody:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	case req.contentLength >= 0:
		writeLength(w, req.contentLength)
	}
	if c.s.AddVia {
		w.WriteString("Via: " + viaValue + "\r\n")
	}
	if c.s.AddForwardedFor {
		w.WriteString("X-Forwarded-For: ")
		w.WriteString(clientAddr(c.tcp).Addr().String())
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
}

// expectsContinue reports "Expect: 100-continue". The proxy answers it itself (the
// client then sends the body at once) and does not pass it on.
func (c *clientConn) expectsContinue() bool {
	for _, f := range c.req.fields {
		if fieldIs(f.name, "expect") && bytes.EqualFold(f.value, []byte("100-continue")) {
			return true
		}
	}
	return false
}

// maxInterim bounds the interim (1xx) responses before the final one: a destination
// cannot hold the exchange with an endless stream of them.
const maxInterim = 5

var errTooManyInterim = errors.New("more interim responses than the limit")

// readResponseHead reads the upstream's response head. Interim (1xx) responses are
// passed on to an HTTP/1.1 client as each arrives, so 103 Early Hints are early. 101
// is refused: Upgrade is never forwarded, so a destination switching protocols is
// misbehaving.
func (c *clientConn) readResponseHead() error {
	u := c.up
	for interim := 0; ; interim++ {
		u.rw.readBy = time.Now().Add(c.s.UpstreamTimeout)
		err := c.resp.read(u.br, c.s.MaxHeaderBytes, true)
		u.rw.readBy = time.Time{}
		switch {
		case err != nil:
			return err
		case c.resp.status == 101:
			return errMalformed
		case c.resp.status >= 200:
			return nil
		case interim == maxInterim:
			return errTooManyInterim
		case c.req.minor == 1:
			c.writeResponseHead(false, false)
			if err := c.bw.Flush(); err != nil {
				return errClient
			}
		}
	}
}

// relayResponse sends the response head and body to the client and reports whether
// the client connection stays open.
func (c *clientConn) relayResponse() bool {
	req, resp, u := &c.req, &c.resp, c.up
	kind := responseBody(req.start[0], resp)
	chunkedOut := kind == chunkBody && req.minor == 1
	keep := !req.close && !c.s.draining.Load() && (kind == noBody || kind == lengthBody || chunkedOut)
	c.writeResponseHead(chunkedOut, keep)
	_, err := copyBody(c.bw, u.br, kind, resp.contentLength, chunkedOut)
	if err == nil {
		err = c.bw.Flush()
	}
	c.countBytes()
	if err != nil || resp.close || kind == closeBody {
		c.closeUpstream()
	}
	return err == nil && keep
}

func (c *clientConn) writeResponseHead(chunked, keep bool) {
	resp, w := &c.resp, c.bw
	w.WriteString("HTTP/1.1 ")
	w.Write(resp.start[1])
	w.WriteByte(' ')
	w.Write(resp.start[2])
	w.WriteString("\r\n")
	for _, f := range resp.fields {
		if resp.endToEnd(f.name) {
			writeField(w, f.name, f.value)
		}
	}
	switch {
	case chunked:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	case resp.contentLength >= 0 && resp.status >= 200 && resp.status != 204:
		// The length of a body, or for HEAD and 304 the one a GET would have had.
		writeLength(w, resp.contentLength)
	}
	if c.s.AddVia {
		w.WriteString("Via: " + viaValue + "\r\n")
	}
	switch {
	case resp.status < 200: // an interim response says nothing of the connection
	case !keep:
		w.WriteString("Connection: close\r\n")
	case c.req.minor == 0:
		w.WriteString("Connection: keep-alive\r\n")
	}
	w.WriteString("\r\n")
}

// responseBody says how a response body is delimited (RFC 9112 section 6.3).
func responseBody(method []byte, h *head) bodyKind {
	switch {
	case string(method) == "HEAD" || h.status < 200 || h.status == 204 || h.status == 304:
		return noBody
	case h.chunked:
		return chunkBody
	case h.hasTE: // a coding other than chunked: the body ends with the connection
		return closeBody
	case h.contentLength >= 0:
		return lengthBody
	}
	return closeBody
}

// safeToRepeat reports a safe method (RFC 9110 section 9.2.1), which a proxy may send
// a second time after the destination may have seen it once. PUT and DELETE, merely
// idempotent, are left out: a destination may not treat them so.
func safeToRepeat(method []byte) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}

// isStale reports an error that means a kept upstream connection had been closed by the
// destination before this request was sent.
func isStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// countBytes adds the bytes moved to and from the upstream since the last count.
func (c *clientConn) countBytes() {
	if u := c.up; u != nil {
		c.s.Metrics.sent.Add(float64(u.rw.written))
		c.s.Metrics.received.Add(float64(u.rw.read))
		u.rw.written, u.rw.read = 0, 0
	}
}
