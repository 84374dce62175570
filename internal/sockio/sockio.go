// Package sockio opens, accepts, reads, writes and splices non-blocking sockets with
// raw system calls, which skip the Go runtime's syscall bookkeeping (entersyscall,
// exitsyscall).
//
// That bookkeeping is what a blocking call needs, and it is not free for a proxy whose
// calls never block: entering a syscall wakes the runtime's sysmon thread whenever it
// sleeps (it sleeps as soon as every P is idle, so on every request of a lightly used
// proxy), and a write on a veth pair, which delivers the segment to the peer's socket
// within the call, often outlasts sysmon's 20 µs tick, so sysmon takes the P away and
// starts another thread to run it. A profile of egress-http-proxy serving one
// keep-alive client spent more time in sysmon and its wake-ups than in its own code.
// A raw call holds its P for the call's length (tens of microseconds at most on a
// non-blocking socket), which only delays a stop-the-world by as much.
//
// Splice is raw too, though a splice of a megabyte into a socket runs the sending, and
// on a veth pair the peer's receiving, within the call: up to a few hundred
// microseconds, which a stop-the-world may then wait (rare: the relay allocates next
// to nothing). Through the runtime's bookkeeping, sysmon took the P from such calls
// and handed it to another thread: at 16 CONNECT downloads, the HTTP proxy switched
// context 6,200-7,800 times a second, against 2,000-2,300 with raw splices.
//
// Only for file descriptors in non-blocking mode: a raw call that blocks would hold a
// P, and so a share of the program, for as long. The calls that open a connection for
// an event loop (socket, setsockopt, bind, connect, accept) are raw for the same
// reason: none waits for an event, but a non-blocking connect on a veth pair runs the
// handshake's first steps within the call, long enough for sysmon to take the P at
// thousands of connections a second. Their time is the kernel's work alone (the
// source port's search, netfilter on the way), normally microseconds; a stop-the-world
// waits for it.
package sockio

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read is read(2) on the non-blocking fd. EINTR is retried; EAGAIN is returned as is.
func Read(fd int, p []byte) (int, error) {
	for {
		n, err := rawRW(unix.SYS_READ, fd, p)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// Write is write(2) on the non-blocking fd. EINTR is retried; EAGAIN is returned as
// is. A peer that is gone is EPIPE, as for the net package's writes (the runtime
// ignores SIGPIPE on every fd but 1 and 2).
func Write(fd int, p []byte) (int, error) {
	for {
		n, err := rawRW(unix.SYS_WRITE, fd, p)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// rawRW is read or write; the buffer's address is converted in the call's argument
// list, where the compiler keeps p alive for the call (unsafe.Pointer rule 4).
func rawRW(trap uintptr, fd int, p []byte) (int, error) {
	n, _, errno := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// Send is send(2) on the non-blocking socket fd, with flags (MSG_MORE, for one),
// MSG_NOSIGNAL added: a peer that is gone is EPIPE. EINTR is retried.
func Send(fd int, p []byte, flags int) (int, error) {
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), uintptr(flags|unix.MSG_NOSIGNAL), 0, 0)
		if errno == 0 {
			return int(n), nil
		}
		if errno != unix.EINTR {
			return 0, errno
		}
	}
}

// Splice is splice(2) of up to n bytes from in to out, one of them a pipe, both
// non-blocking: SPLICE_F_NONBLOCK keeps the pipe from waiting, the socket's O_NONBLOCK
// the socket. Pages are moved, not copied, where the kernel can. EINTR is retried;
// EAGAIN is returned as is.
func Splice(in, out, n int) (int, error) {
	for {
		m, _, errno := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		if errno == 0 {
			return int(m), nil
		}
		if errno != unix.EINTR {
			return 0, errno
		}
	}
}

// Shutdown is shutdown(2) of the socket fd: it queues a FIN and never waits.
func Shutdown(fd, how int) error {
	if _, _, errno := unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), uintptr(how), 0); errno != 0 {
		return errno
	}
	return nil
}

// Close is close(2) of the socket fd, which returns at once unless SO_LINGER is set
// on it (then it may wait for the unsent data: use unix.Close). Not retried on EINTR:
// the descriptor is released whatever close returns.
func Close(fd int) error {
	if _, _, errno := unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0); errno != 0 {
		return errno
	}
	return nil
}

// Socket is socket(2) for a TCP socket of family (AF_INET or AF_INET6), non-blocking
// and close-on-exec from the start.
func Socket(family int) (int, error) {
	fd, _, errno := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// SetsockoptInt is setsockopt(2) of an int option on the socket fd.
func SetsockoptInt(fd, level, opt, value int) error {
	v := int32(value)
	if _, _, errno := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&v)), unsafe.Sizeof(v), 0); errno != 0 {
		return errno
	}
	return nil
}

// Bind is bind(2) of the socket fd to ap.
func Bind(fd int, ap netip.AddrPort) error { return addrCall(unix.SYS_BIND, fd, ap) }

// Connect is connect(2) of the non-blocking socket fd to ap: EINPROGRESS (the usual
// answer) is returned as is; the caller waits for the socket to be writable.
func Connect(fd int, ap netip.AddrPort) error { return addrCall(unix.SYS_CONNECT, fd, ap) }

// addrCall is bind or connect with ap as the socket address of ap's family; an IPv6
// zone is not passed (the address is dialled as if it had none: the configuration
// admits no zone). An invalid address is EAFNOSUPPORT, not the unspecified address,
// which connect would take for loopback.
func addrCall(trap uintptr, fd int, ap netip.AddrPort) error {
	var errno unix.Errno
	switch a := ap.Addr(); {
	case a.Is4():
		sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Port: Htons(ap.Port()), Addr: a.As4()}
		_, _, errno = unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	case a.Is6():
		sa := unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: Htons(ap.Port()), Addr: a.As16()}
		_, _, errno = unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	default:
		return unix.EAFNOSUPPORT
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// Accept is accept4(2) on the non-blocking listening socket fd: a non-blocking,
// close-on-exec socket and the peer's address (an IPv4-mapped one unmapped); EAGAIN
// when none is queued.
func Accept(fd int) (int, netip.AddrPort, error) {
	var sa unix.RawSockaddrAny
	size := uint32(unsafe.Sizeof(sa))
	nfd, _, errno := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&size)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if errno != 0 {
		return -1, netip.AddrPort{}, errno
	}
	return int(nfd), peerAddr(&sa), nil
}

func peerAddr(sa *unix.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case unix.AF_INET:
		in := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(in.Addr), Htons(in.Port))
	case unix.AF_INET6:
		in := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom16(in.Addr).Unmap(), Htons(in.Port))
	}
	return netip.AddrPort{}
}

// Htons converts a 16-bit value between host and network byte order, as C's htons
// and ntohs (one swap both ways, none on a big-endian host): what a sockaddr's
// in_port_t and a packet socket's protocol hold, big-endian in memory.
func Htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
