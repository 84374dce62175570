package relay

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/egress-router/egress-router/internal/dialer"
	"github.com/egress-router/egress-router/test/serve"
)

// listenLoops listens on a free port of 127.0.0.1 in the loops, with accepted as the
// handler, and returns the address to dial; started unless hold.
func listenLoops(t *testing.T, a Accept, hold bool) (*Listener, string) {
	t.Helper()
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	ln, err := a.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ln.Close)
	if !hold {
		ln.Start()
	}
	return ln, addr
}

// echoServer echoes each connection until its FIN.
func echoServer(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.(*net.TCPConn).CloseWrite() }()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// attempts is an Upstream.Start that dials each of dsts in turn, recording the
// errors of those that failed, and gives up with errGaveUp after the last.
type attempts struct {
	dsts   []netip.AddrPort
	mu     sync.Mutex
	failed []error
}

var errGaveUp = errors.New("gave up")

func (a *attempts) start(failed error) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if failed != nil {
		a.failed = append(a.failed, failed)
	}
	if len(a.dsts) == 0 {
		return -1, errGaveUp
	}
	dst := a.dsts[0]
	a.dsts = a.dsts[1:]
	return (&dialer.Dialer{}).Start(dst)
}

func (a *attempts) errors() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]error(nil), a.failed...)
}

// connecting listens and connects each accepted connection with a fresh attempts
// over dsts; it returns the address to dial and what each session's done reports.
func connecting(t *testing.T, timeout time.Duration, dsts ...netip.AddrPort) (string, *attempts, chan outcome, chan *Session) {
	t.Helper()
	a := &attempts{dsts: dsts}
	ended := make(chan outcome, 1)
	sessions := make(chan *Session, 1)
	_, addr := listenLoops(t, Accept{Accepted: func(c *Accepted) {
		sessions <- Relay{}.Connect(c, &Upstream{Start: a.start, Timeout: timeout}, func(res Result, err error) { ended <- outcome{res, err} })
	}}, false)
	return addr, a, ended, sessions
}

func dialClient(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.(*net.TCPConn)
}

// closedByProxy expects the proxy to close c without relaying anything.
func closedByProxy(t *testing.T, c *net.TCPConn) {
	t.Helper()
	if n, err := c.Read(make([]byte, 1)); n != 0 || (err != io.EOF && !errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("client: read %d, %v; want it closed", n, err)
	}
}

// An accepted connection is relayed once its upstream connects; the accepted socket
// has TCP_NODELAY (as the net package sets it) and the options Control gave the
// listener; Connected runs once, before done.
func TestAcceptedConnectionIsRelayedOnceTheUpstreamConnects(t *testing.T) {
	echo := echoServer(t)
	var nodelay, keepalive atomic.Int32
	var order []string
	var mu sync.Mutex
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	ended := make(chan outcome, 1)
	_, addr := listenLoops(t, Accept{
		Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1) })
		},
		Accepted: func(c *Accepted) {
			v, _ := unix.GetsockoptInt(c.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY)
			nodelay.Store(int32(v))
			v, _ = unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
			keepalive.Store(int32(v))
			a := &attempts{dsts: []netip.AddrPort{echo}}
			Relay{}.Connect(c, &Upstream{Start: a.start, Timeout: time.Second, Connected: func() { note("connected") }},
				func(res Result, err error) { note("done"); ended <- outcome{res, err} })
		},
	}, false)
	c := dialClient(t, addr)
	io.WriteString(c, "hello")
	c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "hello" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	if o := waitEnded(t, ended); o.err != nil || o.res != (Result{Sent: 5, Received: 5}) {
		t.Fatalf("done: %+v, %v", o.res, o.err)
	}
	if nodelay.Load() != 1 || keepalive.Load() != 1 {
		t.Fatalf("accepted socket: TCP_NODELAY %d, SO_KEEPALIVE %d; want both inherited (1)", nodelay.Load(), keepalive.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(order, ",") != "connected,done" {
		t.Fatalf("callbacks ran as %v", order)
	}
}

// A refused connect gives Start the error (ECONNREFUSED) to try the next address;
// when Start gives up the client is closed and done reports Start's error.
func TestRefusedConnectTriesTheNextThenEndsWithStartsError(t *testing.T) {
	refused := closedAddr(t)
	addr, a, ended, _ := connecting(t, time.Second, refused, refused)
	closedByProxy(t, dialClient(t, addr))
	if o := waitEnded(t, ended); !errors.Is(o.err, errGaveUp) {
		t.Fatalf("done: %v, want Start's error", o.err)
	}
	errs := a.errors()
	if len(errs) != 2 || !errors.Is(errs[0], syscall.ECONNREFUSED) || !errors.Is(errs[1], syscall.ECONNREFUSED) {
		t.Fatalf("Start heard of %v, want two ECONNREFUSED", errs)
	}
}

// A connect that gets no answer is given up after the timeout: Start hears
// ErrConnectTimeout, and once it gives up the client is closed.
func TestConnectTimeoutClosesTheClientAfterTheTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	addr, a, ended, _ := connecting(t, timeout, serve.Silent(t, "127.0.0.1"))
	began := time.Now()
	c := dialClient(t, addr)
	closedByProxy(t, c)
	if took := time.Since(began); took < timeout {
		t.Fatalf("client closed after %s, before the %s timeout", took, timeout)
	}
	if o := waitEnded(t, ended); !errors.Is(o.err, errGaveUp) {
		t.Fatalf("done: %v", o.err)
	}
	if errs := a.errors(); len(errs) != 1 || !errors.Is(errs[0], ErrConnectTimeout) || !errors.Is(errs[0], os.ErrDeadlineExceeded) {
		t.Fatalf("Start heard of %v, want the timeout", errs)
	}
}

// Close while the upstream connects ends the session at once.
func TestCloseWhileConnecting(t *testing.T) {
	addr, _, ended, sessions := connecting(t, time.Minute, serve.Silent(t, "127.0.0.1"))
	c := dialClient(t, addr)
	(<-sessions).Close()
	closedByProxy(t, c)
	if o := waitEnded(t, ended); !errors.Is(o.err, ErrClosedConnecting) {
		t.Fatalf("done: %v", o.err)
	}
}

// Closing a listener resets the connections still in its accept queue, hands none
// of them on, and leaves no descriptor open.
func TestCloseResetsTheConnectionsInTheAcceptQueue(t *testing.T) {
	var handed atomic.Int32
	ln, addr := listenLoops(t, Accept{Accepted: func(c *Accepted) { handed.Add(1); c.Close() }}, true)
	baseline := openDescriptors(t)
	var queued []*net.TCPConn
	for range 5 {
		queued = append(queued, dialClient(t, addr))
	}
	ln.Close()
	for _, c := range queued {
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("queued client after the close: %v, want a reset", err)
		}
		c.Close()
	}
	if handed.Load() != 0 {
		t.Fatalf("%d queued connections handed on after Close", handed.Load())
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still accepting after Close")
	}
	waitFor(t, "the listening sockets to be closed", func() bool { return openDescriptors(t) == baseline-len(ln.acceptors) })
}

func closedAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// Out of descriptors (in a child process), a listener with connections queued keeps
// signalling; the loop backs off instead of trying accept4 again at once (which would
// keep it at 100% of a core): a few failures a second, each reported to Failed. Once
// descriptors are free the queued connections are accepted.
func TestAcceptBacksOffWhenOutOfDescriptors(t *testing.T) {
	if os.Getenv("RELAY_ACCEPT_OUT_OF_DESCRIPTORS") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptBacksOffWhenOutOfDescriptors$", "-test.v")
		cmd.Env = append(os.Environ(), "RELAY_ACCEPT_OUT_OF_DESCRIPTORS=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		t.Logf("child:\n%s", out)
		return
	}
	var failures atomic.Int32
	var lastErr atomic.Value
	ln, addr := listenLoops(t, Accept{
		Accepted: func(c *Accepted) { unix.Write(c.fd, []byte("ok")); c.Close() },
		Failed:   func(err error) { failures.Add(1); lastErr.Store(err) },
	}, true)
	const clients = 20
	var queued []*net.TCPConn
	for range clients {
		queued = append(queued, dialClient(t, addr))
	}
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
		t.Fatal(err)
	}
	lowered := limit
	lowered.Cur = uint64(openDescriptors(t) + 16)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	var fillers []int
	for {
		fd, err := syscall.Dup(0)
		if err != nil {
			break
		}
		fillers = append(fillers, fd)
	}
	var before, after unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &before)
	ln.Start()
	const window = time.Second
	time.Sleep(window)
	unix.Getrusage(unix.RUSAGE_SELF, &after)
	n := failures.Load()
	// Backing off from 5 ms, doubling, 8 tries of each listening socket fit in a
	// second. Without it, a level-triggered listener fails without end, an
	// edge-triggered one once per signal, and then leaves its queue waiting for a new
	// connection's signal (the reads below show the retries take them).
	if most := int32(9 * len(ln.acceptors)); n < 1 || n > most {
		t.Fatalf("%d failed accepts in %s with %d connections queued; want at most %d (backing off)", n, window, clients, most)
	}
	if err, _ := lastErr.Load().(error); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("Failed heard %v, want EMFILE", err)
	}
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	t.Logf("%d failed accepts and %s of CPU in %s out of descriptors", n, cpu, window)

	for _, fd := range fillers {
		syscall.Close(fd)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
		t.Fatal(err)
	}
	for i, c := range queued {
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "ok" {
			t.Fatalf("queued client %d once descriptors are free: %q, %v", i, got, err)
		}
	}
}
