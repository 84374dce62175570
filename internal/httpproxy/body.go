package httpproxy

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"sync"
)

// bodyKind is how a message body is delimited.
type bodyKind int

const (
	noBody     bodyKind = iota
	lengthBody          // Content-Length bytes
	chunkBody           // Transfer-Encoding: chunked
	closeBody           // until the sender closes (responses only)
)

var errBadChunk = errors.New("malformed chunked body")

// copyBufs are the buffers bodies are copied through, shared so an idle keep-alive
// connection holds none.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyBody copies a body of the given kind from src to dst. A chunked body is checked
// chunk by chunk and re-encoded when rechunk is set, or decoded (for an HTTP/1.0
// client) when not; trailers are dropped. It returns the body bytes copied.
func copyBody(dst io.Writer, src *bufio.Reader, kind bodyKind, length int64, rechunk bool) (int64, error) {
	if kind == noBody || (kind == lengthBody && length == 0) {
		return 0, nil
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	switch kind {
	case lengthBody:
		return copyN(dst, src, length, *bp)
	case chunkBody:
		return copyChunked(dst, src, *bp, rechunk)
	default:
		n, err := copyN(dst, src, -1, *bp)
		if err == io.EOF {
			err = nil
		}
		return n, err
	}
}

// copyN copies n bytes (all of src when n < 0) through buf. It reads through src's
// buffer, which hands large reads straight to the socket.
func copyN(dst io.Writer, src *bufio.Reader, n int64, buf []byte) (int64, error) {
	var copied int64
	for n < 0 || copied < n {
		p := buf
		if n >= 0 && int64(len(p)) > n-copied {
			p = p[:n-copied]
		}
		k, err := src.Read(p)
		if k > 0 {
			if _, werr := dst.Write(p[:k]); werr != nil {
				return copied, werr
			}
			copied += int64(k)
		}
		if err != nil {
			if err == io.EOF && n >= 0 {
				err = io.ErrUnexpectedEOF
			}
			return copied, err
		}
	}
	return copied, nil
}

// copyChunked copies a chunked body: each size line must be hex digits with optional
// extensions (dropped) and CRLF; each chunk must end in CRLF; the trailer section must
// end in an empty CRLF line.
func copyChunked(dst io.Writer, src *bufio.Reader, buf []byte, rechunk bool) (int64, error) {
	var (
		total   int64
		sizeBuf [20]byte
	)
	for {
		line, err := readCRLFLine(src)
		if err != nil {
			return total, err
		}
		size, ok := parseChunkSize(line)
		if !ok {
			return total, errBadChunk
		}
		if size == 0 {
			if err := skipTrailers(src); err != nil {
				return total, err
			}
			if rechunk {
				_, err = io.WriteString(dst, "0\r\n\r\n")
			}
			return total, err
		}
		if rechunk {
			if _, err := dst.Write(append(strconv.AppendUint(sizeBuf[:0], size, 16), '\r', '\n')); err != nil {
				return total, err
			}
		}
		n, err := copyN(dst, src, int64(size), buf)
		total += n
		if err != nil {
			return total, err
		}
		if end, err := readCRLFLine(src); err != nil || len(end) != 0 {
			return total, errBadChunk
		}
		if rechunk {
			if _, err := dst.Write(crlf); err != nil {
				return total, err
			}
		}
	}
}

// readCRLFLine returns one line without its CRLF; a line longer than src's buffer or
// ending in a bare LF is an error.
func readCRLFLine(src *bufio.Reader) ([]byte, error) {
	line, err := src.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull || err == io.EOF {
			return nil, errBadChunk
		}
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, errBareLF
	}
	return line[:len(line)-2], nil
}

// maxChunkDigits keeps a chunk size within uint64 (and far beyond any real chunk).
const maxChunkDigits = 15

func parseChunkSize(line []byte) (uint64, bool) {
	digits := line
	for i, c := range line {
		if c == ';' {
			digits = line[:i]
			if hasCTL(line[i:]) {
				return 0, false
			}
			break
		}
	}
	if len(digits) == 0 || len(digits) > maxChunkDigits {
		return 0, false
	}
	var n uint64
	for _, c := range digits {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(d)
	}
	return n, true
}

// maxTrailerLines bounds the trailer section, which is read and dropped.
const maxTrailerLines = 64

func skipTrailers(src *bufio.Reader) error {
	for range maxTrailerLines {
		line, err := readCRLFLine(src)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		if _, ok := parseField(line); !ok {
			return errBadChunk
		}
	}
	return errBadChunk
}
