package sockio

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestReadWrite checks the raw calls keep read(2)'s and write(2)'s contract on a
// non-blocking socket: EAGAIN when nothing is queued, the bytes written, 0 at the end
// of the stream, EPIPE (not SIGPIPE) once the peer is gone.
func TestReadWrite(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := fds[0], fds[1]
	defer unix.Close(a)
	buf := make([]byte, 16)
	if n, err := Read(a, buf); n != 0 || err != unix.EAGAIN {
		t.Fatalf("read of an empty socket: %d, %v; want 0, EAGAIN", n, err)
	}
	if n, err := Write(b, []byte("hello")); n != 5 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	if n, err := Read(a, buf); n != 5 || err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read: %d, %v, %q", n, err, buf[:n])
	}
	if n, err := Read(a, nil); n != 0 || err != nil {
		t.Fatalf("read of nothing: %d, %v", n, err)
	}
	unix.Close(b)
	if n, err := Read(a, buf); n != 0 || err != nil {
		t.Fatalf("read at the end: %d, %v; want 0, nil", n, err)
	}
	if _, err := Write(a, []byte("x")); err != unix.EPIPE {
		t.Fatalf("write to a closed peer: %v; want EPIPE", err)
	}
}
