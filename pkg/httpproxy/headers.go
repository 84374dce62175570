package httpproxy

import "bufio"

// hopByHop are the fields that describe one connection and are never forwarded, in
// either direction. Proxy-Authorization and Proxy-Authenticate belong to the hop to
// this proxy; Proxy-Connection is the non-standard field old clients still send.
var hopByHop = [...]string{
	"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
	"proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
}

// endToEnd reports whether a field of h may be forwarded: not hop-by-hop, and not
// named in h's Connection field.
func (h *head) endToEnd(name []byte) bool {
	for _, hop := range hopByHop {
		if fieldIs(name, hop) {
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

// viaValue is the Via field the proxy adds when asked to.
const viaValue = "1.1 egress-http-proxy"
