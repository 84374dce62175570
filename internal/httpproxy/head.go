package httpproxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// field is one header field, as slices of its head's buffer.
type field struct{ name, value []byte }

// head is one message head (request or response) read strictly: every line ends in
// CRLF, field names are tokens (so "Name :" is refused), no obsolete line folding, no
// control characters in values. Its slices point into buf and are reused from one
// message to the next on the same connection, so a keep-alive request allocates
// nothing here.
type head struct {
	buf    []byte
	fields []field
	// start holds the start line's three parts: method, target, version for a
	// request; version, status, reason for a response.
	start  [3][]byte
	minor  int // HTTP/1.minor
	status int // a response's status code

	contentLength int64 // -1 when there is no Content-Length
	chunked       bool  // Transfer-Encoding: chunked
	hasTE         bool  // any Transfer-Encoding, chunked or not
	close         bool  // the sender will close after this message
	connection    [][]byte
}

var (
	errHeadTooLarge = errors.New("message head larger than the limit")
	errMalformed    = errors.New("malformed message head")
	errBareLF       = errors.New("line ends in a bare LF")
	errVersion      = errors.New("HTTP version not supported")
)

// read reads one head of at most limit bytes and parses its lines; response says which
// kind of start line to expect. Empty lines before the start line are skipped, as RFC
// 9112 section 2.2 allows.
func (h *head) read(r *bufio.Reader, limit int, response bool) error {
	h.buf = h.buf[:0]
	lineStart := 0
	for {
		chunk, err := r.ReadSlice('\n')
		if len(h.buf)+len(chunk) > limit {
			return errHeadTooLarge
		}
		h.buf = append(h.buf, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(h.buf) > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		line := h.buf[lineStart:]
		if !bytes.HasSuffix(line, crlf) {
			return errBareLF
		}
		if len(line) == 2 {
			if lineStart == 0 {
				h.buf = h.buf[:0] // an empty line before the start line
				continue
			}
			return h.parse(response)
		}
		lineStart = len(h.buf)
	}
}

var crlf = []byte("\r\n")

// parse splits buf (complete lines, each ending in CRLF, the last one empty) into the
// start line and fields, and reads the framing fields.
func (h *head) parse(response bool) error {
	h.fields = h.fields[:0]
	h.connection = h.connection[:0]
	h.contentLength, h.chunked, h.hasTE, h.close = -1, false, false, false
	line, rest := cutLine(h.buf)
	if !h.splitStart(line, response) {
		return errMalformed
	}
	version := h.start[2]
	if response {
		version = h.start[0]
		var ok bool
		if h.status, ok = statusCode(h.start[1]); !ok {
			return errMalformed
		}
	} else if bytes.IndexByte(version, ' ') >= 0 {
		return errMalformed // a request line has exactly three parts
	}
	if !h.version(version) {
		return errVersion
	}
	for {
		line, rest = cutLine(rest)
		if len(line) == 0 {
			return h.framing()
		}
		f, ok := parseField(line)
		if !ok {
			return errMalformed
		}
		h.fields = append(h.fields, f)
	}
}

// cutLine returns the first line of b without its CRLF, and the rest.
func cutLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	return b[:i-1], b[i+1:]
}

// splitStart splits a start line at its first two single spaces. The third part may
// hold spaces (a response's reason phrase); the first two may not. A response's reason
// may be empty (RFC 9112 section 4), and the space before it missing, as many servers
// send "HTTP/1.1 200". No control character may appear, and in a request line not even
// a tab, which RFC 9112 allows only in a reason phrase: passed on in a request-target,
// it is one a next hop may split the line on.
func (h *head) splitStart(line []byte, response bool) bool {
	a, rest, ok1 := bytes.Cut(line, sp)
	b, c, ok2 := bytes.Cut(rest, sp)
	if !ok1 || !(ok2 || response) || len(a) == 0 || len(b) == 0 || hasCTL(line) {
		return false
	}
	if !response && bytes.IndexByte(line, '\t') >= 0 {
		return false
	}
	h.start = [3][]byte{a, b, c}
	return true
}

var sp = []byte(" ")

func statusCode(b []byte) (int, bool) {
	if len(b) != 3 {
		return 0, false
	}
	n, err := strconv.Atoi(string(b))
	return n, err == nil && n >= 100 && n <= 599
}

// parseField reads "name: value". The name must be all token characters, which refuses
// a space before the colon and a leading space (obsolete folding).
func parseField(line []byte) (field, bool) {
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok || len(name) == 0 || !isToken(name) || hasCTL(value) {
		return field{}, false
	}
	return field{name: name, value: bytes.Trim(value, " \t")}, true
}

// version parses "HTTP/1.0" or "HTTP/1.1"; other versions (HTTP/2's preface "PRI *
// HTTP/2.0" among them) are refused, so HTTP/2 is never spoken here.
func (h *head) version(v []byte) bool {
	switch string(v) {
	case "HTTP/1.1":
		h.minor = 1
	case "HTTP/1.0":
		h.minor = 0
	default:
		return false
	}
	return true
}

// isToken reports whether b is a non-empty RFC 9110 token.
func isToken(b []byte) bool {
	for _, c := range b {
		if !tokenChar[c] {
			return false
		}
	}
	return len(b) > 0
}

var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// hasCTL reports a control character other than horizontal tab (or DEL), which no
// start line or field value may carry: a CR or NUL inside a value is how response
// splitting and smuggling start.
func hasCTL(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}
