package httpproxy

import (
	"bytes"
	"errors"
)

var (
	errFraming           = errors.New("conflicting or invalid message length")
	errConnectionFraming = errors.New("the Connection header names Content-Length, Transfer-Encoding or Host")
)

// framing reads the fields that delimit the body and the connection. It refuses the
// ambiguous cases request smuggling lives on: Content-Length together with
// Transfer-Encoding, two different lengths, a length that is not plain digits, a
// Transfer-Encoding in HTTP/1.0 or one that is not exactly "chunked", and a Connection
// field naming a framing field: a hop that honoured it would drop the length the proxy
// frames the body by, and read the body as the next message.
func (h *head) framing() error {
	for _, f := range h.fields {
		switch {
		case fieldIs(f.name, "content-length"):
			n, ok := parseLength(f.value)
			if !ok || (h.contentLength >= 0 && n != h.contentLength) {
				return errFraming
			}
			h.contentLength = n
		case fieldIs(f.name, "transfer-encoding"):
			if h.hasTE {
				return errFraming
			}
			h.hasTE = true
			h.chunked = bytes.EqualFold(f.value, []byte("chunked"))
		case fieldIs(f.name, "connection"):
			h.addConnectionTokens(f.value)
		}
	}
	if h.hasTE && (h.contentLength >= 0 || h.minor == 0) {
		return errFraming
	}
	for _, name := range proxyWritten {
		if h.namedInConnection([]byte(name)) {
			return errConnectionFraming
		}
	}
	if h.minor == 0 && !h.namedInConnection([]byte("keep-alive")) {
		h.close = true
	}
	return nil
}

// addConnectionTokens records the options of a Connection field: "close", and the
// names of the fields the sender meant for this hop only.
func (h *head) addConnectionTokens(value []byte) {
	for len(value) > 0 {
		var token []byte
		token, value, _ = bytes.Cut(value, []byte(","))
		token = bytes.Trim(token, " \t")
		if len(token) == 0 {
			continue
		}
		if bytes.EqualFold(token, []byte("close")) {
			h.close = true
		}
		h.connection = append(h.connection, token)
	}
}

func (h *head) namedInConnection(name []byte) bool {
	for _, t := range h.connection {
		if bytes.EqualFold(t, name) {
			return true
		}
	}
	return false
}

// maxLengthDigits keeps a Content-Length within int64 without overflow checks.
const maxLengthDigits = 18

func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > maxLengthDigits {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// fieldIs compares a field name with a lowercase name, ignoring case, without
// allocating.
func fieldIs(name []byte, lower string) bool {
	if len(name) != len(lower) {
		return false
	}
	for i, c := range name {
		if c|0x20 != lower[i] && c != lower[i] {
			return false
		}
	}
	return true
}
