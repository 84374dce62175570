package relay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/egress-router/egress-router/internal/sockio"
)

// pipeIdle is how long a bulk flow stays quiet before its pipe goes back to the loop
// (and its next data is read, not spliced, until a read fills the buffer again).
const pipeIdle = time.Second

// minSweep bounds how often a loop looks for idle sessions.
const minSweep = 10 * time.Millisecond

// loop relays the sessions given to it: one epoll instance, edge-triggered, whose
// ready events one goroutine handles. While none is ready the goroutine is parked in
// Go's own poller, where the epoll descriptor is registered like a socket (it is
// readable when events are ready): no thread is held and the scheduler wakes the loop
// as it would a connection's goroutine, but once for every batch of events across all
// its sessions instead of once per event and connection.
//
// That costs more epoll calls than a loop blocking in its own epoll_wait, as nginx's
// and HAProxy's do: 5.6 per 64-byte round trip at one client against their 2 (Go's
// poller blocks, the loop then polls its own descriptor, and the scheduler polls once
// more before it parks). A loop blocking in epoll_wait was measured: 3.4-3.9 calls, but
// twice the context switches (4.2 against 2.1, the runtime's sysmon waking for a
// thread in a system call among them), and 0.93-1.00x this loop's round trips at 1
// client, 0.80-0.83x at 16. Locking each loop goroutine to a thread of its own while it
// still parks in Go's poller was worse: each wake then hands a P to that thread, and it
// made 0.55x this loop's round trips at 1 client and 0.80x at 8. So was waking a spare
// thread to poll for the other loops whenever one runs (a goroutine started per wake):
// 0.70x at 1 client and 0.91-1.03x from 8 up.
//
// Everything below mu belongs to the loop goroutine; other goroutines reach the loop
// only through request.
type loop struct {
	epfd   int
	wake   int // an eventfd in epfd: requests are waiting
	poller *os.File
	rc     syscall.RawConn
	woken  atomic.Bool // a wake is on its way: further requests need not write one
	mu     sync.Mutex
	queue  []request // guarded by mu

	turnFunc   func(uintptr) bool // turn, bound once
	events     [256]unix.EpollEvent
	buf        [copyBuffer]byte // every flow's small reads, one at a time
	ends       []*end           // by descriptor
	gen        uint32           // the last generation given to an end
	taking     []request        // the queue being handled
	again      []*Session       // sessions that stopped for the turn's budget
	running    []*Session
	registered bool    // sockets added in this batch: their first events are queued
	pipes      []*pipe // spare, empty
	piped      int     // flows holding a pipe
	lift       int     // SO_RCVBUF lifting a bounded receive buffer; 0: no bounds (receiveLift)
	timed      int     // sessions with an idle timeout
	minTimeout time.Duration
	dials      []dialEntry // connects under way (and some over), about oldest first
	epoch      time.Time
	now        int64 // loop clock: nanoseconds since epoch, read once per batch
	nextSweep  int64 // 0: no sweep needed
	// nextDialCheck is when the first connect under way times out; 0: none.
	nextDialCheck int64
	armed         int64 // the poller's read deadline, as the earlier timer; -1: unknown
}

// request hands a session or a listening socket to its loop, to take on or to close;
// closed, if set, hears when a socket is closed.
type request struct {
	s      *Session
	a      *acceptor
	close  bool
	closed chan<- struct{}
}

// loops are started on first use, one per GOMAXPROCS: each can keep a core busy.
var loops struct {
	started atomic.Pointer[[]*loop]
	mu      sync.Mutex
	next    atomic.Uint32
}

// pickLoop returns the loop for a new session, round robin.
func pickLoop() (*loop, error) {
	all, err := allLoops()
	if err != nil {
		return nil, err
	}
	return all[loops.next.Add(1)%uint32(len(all))], nil
}

// allLoops returns the loops, started unless they are.
func allLoops() ([]*loop, error) {
	all := loops.started.Load()
	if all == nil {
		var err error
		if all, err = startLoops(); err != nil {
			return nil, err
		}
	}
	return *all, nil
}

// startLoops starts the loops unless they are; on failure (out of descriptors) none
// is started and the next session tries again.
func startLoops() (*[]*loop, error) {
	loops.mu.Lock()
	defer loops.mu.Unlock()
	if all := loops.started.Load(); all != nil {
		return all, nil
	}
	all := make([]*loop, 0, runtime.GOMAXPROCS(0))
	for range cap(all) {
		l, err := newLoop()
		if err != nil {
			for _, l := range all {
				l.poller.Close()
				unix.Close(l.wake)
			}
			return nil, fmt.Errorf("relay: start an event loop: %w", err)
		}
		all = append(all, l)
	}
	for _, l := range all {
		go l.run()
	}
	loops.started.Store(&all)
	return &all, nil
}

func newLoop() (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	poller := os.NewFile(uintptr(epfd), "relay epoll") // non-blocking: Go's poller takes it
	rc, err := poller.SyscallConn()
	if err != nil {
		poller.Close()
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		poller.Close()
		return nil, os.NewSyscallError("eventfd", err)
	}
	// Generation 0 marks the wake descriptor's events; ends get 1 and up.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(wake)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		poller.Close()
		unix.Close(wake)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	l := &loop{epfd: epfd, wake: wake, poller: poller, rc: rc, epoch: time.Now(), armed: -1, lift: receiveLift()}
	l.turnFunc = l.turn
	return l, nil
}

// request queues r for the loop, waking it unless a wake is on its way already.
func (l *loop) request(r request) {
	l.mu.Lock()
	l.queue = append(l.queue, r)
	l.mu.Unlock()
	if !l.woken.Swap(true) {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		// It cannot fail short of a bug: the counter only counts wakes and is never
		// read, since an edge-triggered eventfd signals every write; 2^64 writes are
		// out of reach.
		sockio.Write(l.wake, one[:])
	}
}

func (l *loop) run() {
	for {
		err := l.rc.Read(l.turnFunc) // turn never returns true: only a deadline ends it
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			panic(fmt.Sprintf("relay: event loop cannot wait for its epoll descriptor: %v", err))
		}
		l.armed = -1 // expired: until it is set again, every wait fails at once
		l.now = int64(time.Since(l.epoch))
		l.timers()
		l.arm()
	}
}

// turn handles ready events until there are none, then returns false to park until
// Go's poller sees the epoll descriptor readable again. An event that comes after the
// last epoll_wait makes it readable after Go's poller was told to watch it (RawConn's
// Read prepares once, before the first call), so none is missed.
func (l *loop) turn(uintptr) bool {
	for {
		n := l.ready()
		l.now = int64(time.Since(l.epoch))
		for i := range n {
			l.dispatch(&l.events[i])
		}
		l.running, l.again = l.again, l.running[:0]
		for _, s := range l.running {
			s.queued = false
			s.pump(l)
		}
		clear(l.running)
		l.timers()
		l.arm()
		if n < len(l.events) && len(l.again) == 0 && !l.registered {
			return false
		}
		l.registered = false // once more: a new session's events are there already
	}
}

// dispatch passes one event on to its session.
func (l *loop) dispatch(ev *unix.EpollEvent) {
	fd := int(ev.Fd)
	if fd == l.wake {
		l.takeRequests()
		return
	}
	if fd >= len(l.ends) {
		return
	}
	e := l.ends[fd]
	if e == nil || e.gen != uint32(ev.Pad) {
		return // queued before its socket was closed
	}
	if e.acceptor != nil {
		e.acceptor.acceptAll()
		return
	}
	if s := e.s; s.connecting() {
		if e == &s.ends[1] {
			s.connectEvent(l, ev.Events)
		} else {
			e.note(ev.Events) // the client waits in its socket until then
		}
		return
	}
	if ev.Events&unix.EPOLLERR != 0 {
		if errno, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); errno != 0 {
			e.s.finish(l, fmt.Errorf("relay: %w", os.NewSyscallError("socket", syscall.Errno(errno))))
			return
		}
	}
	e.note(ev.Events)
	e.s.pump(l)
}

// note records the readiness an event reports.
func (e *end) note(events uint32) {
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		e.readable = true
	}
	if events&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		e.peerEnded = true
	}
	if events&(unix.EPOLLOUT|unix.EPOLLHUP) != 0 {
		e.writable = true
	}
}

func (l *loop) takeRequests() {
	l.woken.Store(false)
	l.mu.Lock()
	l.taking, l.queue = l.queue, l.taking[:0]
	l.mu.Unlock()
	for _, r := range l.taking {
		switch {
		case r.a != nil && r.close:
			r.a.close()
			r.closed <- struct{}{}
		case r.a != nil:
			r.a.end.acceptor = r.a
			if err := l.watch(&r.a.end); err != nil {
				// Cannot happen short of a kernel out of memory: the listener then
				// accepts nothing, and its queue is reset when it is closed.
				r.a.close()
			}
		case r.s.finished:
		case r.close && r.s.connecting():
			r.s.finish(l, ErrClosedConnecting)
		case r.close:
			r.s.finish(l, nil)
		default:
			l.register(r.s)
		}
	}
	clear(l.taking)
}

// register starts relaying s: its sockets (both, or the client's while the upstream
// is not connected yet) in the table and in epoll, which reports their present state
// at once (edge-triggered entries start with an edge).
func (l *loop) register(s *Session) {
	s.started = l.now
	l.registered = true
	if s.idleTimeout > 0 {
		l.timed++
		if l.minTimeout == 0 || s.idleTimeout < l.minTimeout {
			l.minTimeout = s.idleTimeout
		}
		l.sweepWithin(max(l.minTimeout/4, minSweep))
	}
	for i := range s.ends {
		if s.ends[i].fd < 0 {
			continue
		}
		if err := l.watch(&s.ends[i]); err != nil {
			s.finish(l, err)
			return
		}
	}
}

// watch puts e in the table under a new generation and its socket in epoll.
func (l *loop) watch(e *end) error {
	if l.gen++; l.gen == 0 {
		l.gen = 1
	}
	e.gen = l.gen
	if e.fd >= len(l.ends) {
		l.ends = append(l.ends, make([]*end, e.fd+1-len(l.ends)+len(l.ends)/2)...)
	}
	l.ends[e.fd] = e
	events := uint32(unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET)
	if e.acceptor != nil {
		events = unix.EPOLLIN | unix.EPOLLET
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(e.fd), Pad: int32(e.gen)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, e.fd, &ev); err != nil {
		l.forget(e)
		return fmt.Errorf("relay: watch the socket: %w", os.NewSyscallError("epoll_ctl", err))
	}
	return nil
}

// forget takes e out of the table, before its socket is closed: an event still
// queued for it (or for a new socket given the same number later) is then told apart.
// Closing the socket takes it out of epoll, the loop holding its only descriptor.
func (l *loop) forget(e *end) {
	if e.fd >= 0 && e.fd < len(l.ends) && l.ends[e.fd] == e {
		l.ends[e.fd] = nil
	}
}

// sweepWithin makes the next sweep come within d.
func (l *loop) sweepWithin(d time.Duration) {
	if at := l.now + int64(d); l.nextSweep == 0 || at < l.nextSweep {
		l.nextSweep = at
	}
}

// timers runs the sweep and the connect timeouts when they are due.
func (l *loop) timers() {
	if l.nextSweep != 0 && l.now >= l.nextSweep {
		l.sweep()
	}
	if l.nextDialCheck != 0 && l.now >= l.nextDialCheck {
		l.expireDials()
	}
}

// sweep closes the sessions idle past their timeout, takes back the pipes of bulk
// flows gone quiet and lets listeners that backed off accept again.
func (l *loop) sweep() {
	l.nextSweep = 0
	for _, e := range l.ends {
		if e != nil && e.acceptor != nil {
			e.acceptor.retry()
		}
		if e == nil || e.s == nil || e != &e.s.ends[0] || e.s.connecting() {
			continue // each relaying session once, by its client end
		}
		s := e.s
		if s.idleTimeout > 0 && l.now-max(s.started, s.flows[0].lastRead, s.flows[1].lastRead) >= int64(s.idleTimeout) {
			s.finish(l, nil)
			continue
		}
		for i := range s.flows {
			if f := &s.flows[i]; f.pipe != nil && f.inPipe == 0 && l.now-f.lastRead >= int64(pipeIdle) {
				l.givePipe(f)
			}
		}
	}
	if l.timed > 0 {
		l.sweepWithin(max(l.minTimeout/4, minSweep))
	} else {
		l.minTimeout = 0
	}
	if l.piped > 0 {
		l.sweepWithin(pipeIdle)
	}
}

// arm sets the poller's read deadline to the next timer, so a parked loop wakes for it.
func (l *loop) arm() {
	next := l.nextSweep
	if next == 0 || (l.nextDialCheck != 0 && l.nextDialCheck < next) {
		next = l.nextDialCheck
	}
	if next == l.armed {
		return
	}
	var at time.Time
	if next != 0 {
		at = l.epoch.Add(time.Duration(next))
	}
	l.poller.SetReadDeadline(at)
	l.armed = next
}

// ready is epoll_wait(2) on the loop's epoll descriptor without waiting, as a raw
// system call (see internal/sockio: it cannot block), into l.events.
func (l *loop) ready() int {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
	if errno != 0 {
		return 0 // EINTR
	}
	return int(n)
}
