package httpproxy

import (
	"bufio"
	"strconv"
)

// hopByHop are the fields that describe one connection and are never forwarded, in
// either direction. Proxy-Authorization and Proxy-Authenticate belong to the hop to
// this proxy; Proxy-Connection is the non-standard field old clients still send.
// Transfer-Encoding is hop-by-hop too; it is among proxyWritten.
var hopByHop = [...]string{
	"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
	"proxy-authorization", "te", "trailer", "upgrade",
}

// proxyWritten are the fields the proxy writes itself, from the framing it parsed and
// the target it decided for, and never copies from the sender's field list: what is
// forwarded is then framed exactly as the proxy reads it, whatever the sender's
// Connection field says.
var proxyWritten = [...]string{"content-length", "transfer-encoding", "host"}

// endToEnd reports whether a field of h is copied on: not hop-by-hop, not one the
// proxy writes itself, and not named in h's Connection field.
func (h *head) endToEnd(name []byte) bool {
	for _, hop := range hopByHop {
		if fieldIs(name, hop) {
			return false
		}
	}
	for _, own := range proxyWritten {
		if fieldIs(name, own) {
			return false
		}
	}
	return !h.namedInConnection(name)
}

func writeField(w *bufio.Writer, name []byte, value []byte) {
	w.Write(name)
	w.WriteString(": ")
	w.Write(value)
	w.WriteString("\r\n")
}

// writeLength writes the Content-Length field for n bytes.
func writeLength(w *bufio.Writer, n int64) {
	w.WriteString("Content-Length: ")
	w.Write(strconv.AppendInt(w.AvailableBuffer(), n, 10))
	w.WriteString("\r\n")
}

// viaValue is the Via field the proxy adds when asked to.
const viaValue = "1.1 egress-http-proxy"
