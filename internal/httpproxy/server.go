// Package httpproxy is the forward proxy of http-proxy mode: absolute-form HTTP/1.x
// requests and CONNECT tunnels, each destination decided by the allow/deny list and
// the destination guard, every upstream connection leaving from the reserved address.
//
// It runs its own HTTP/1 loop rather than net/http's server: the loop reads message
// heads strictly (net/http accepts bare LF line ends and lets Transfer-Encoding
// silently override Content-Length, both smuggling vectors for a proxy), keeps the
// keep-alive path free of allocations, and owns the raw *net.TCPConn that CONNECT hands
// to the splice relay. A keep-alive request on a kept upstream allocates nothing in
// the proxy (TestKeepAliveRequestAllocations: 0 per request); a decision log line,
// when the rate limit admits one, adds about 13.
package httpproxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/egress-router/egress-router/internal/connlimit"
	"github.com/egress-router/egress-router/internal/drain"
	"github.com/egress-router/egress-router/internal/logging"
)

// Defaults for Server's fields left zero.
const (
	DefaultDialTimeout     = 10 * time.Second
	DefaultHeaderTimeout   = 10 * time.Second
	DefaultIdleTimeout     = 2 * time.Minute
	DefaultUpstreamTimeout = time.Minute
	DefaultMaxHeaderBytes  = 32 << 10
)

// Server is the proxy. Set the fields, call SetRules, then Serve.
type Server struct {
	Resolve Resolver
	// ConnectPorts are the ports CONNECT may reach; empty means 443 only.
	ConnectPorts []uint16

	// DialTimeout bounds resolution plus connect; zero: DefaultDialTimeout.
	DialTimeout time.Duration
	// HeaderTimeout bounds the arrival of a request head once its first byte is in;
	// zero: DefaultHeaderTimeout.
	HeaderTimeout time.Duration
	// IdleTimeout bounds a keep-alive connection between requests and every read or
	// write of a body; zero: DefaultIdleTimeout.
	IdleTimeout time.Duration
	// UpstreamTimeout bounds the wait for a response head; zero:
	// DefaultUpstreamTimeout.
	UpstreamTimeout time.Duration
	// TunnelIdleTimeout closes a tunnel with no data either way; zero: never.
	TunnelIdleTimeout time.Duration
	// MaxHeaderBytes caps each message head; zero: DefaultMaxHeaderBytes.
	MaxHeaderBytes int

	// AddVia and AddForwardedFor add those fields; off by default, as they tell the
	// destination the pod's internal address and the proxy's existence.
	AddVia, AddForwardedFor bool

	Metrics *Metrics
	Log     *slog.Logger
	// DecisionLogsPerSecond caps the decision log lines.
	DecisionLogsPerSecond int

	rules     atomic.Pointer[ruleSet]
	decisions decisionLog

	// base is the context of every resolution and dial; Shutdown cancels it when the
	// grace period ends, so a dial in progress ends then rather than at its timeout.
	base     context.Context
	stopBase context.CancelFunc

	mu        sync.Mutex
	listeners map[*connlimit.Listener]struct{}
	conns     map[*clientConn]struct{}
	active    drain.Group
	draining  atomic.Bool
	startOnce sync.Once
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("httpproxy: server closed")

func (s *Server) init() {
	s.startOnce.Do(func() {
		s.listeners = map[*connlimit.Listener]struct{}{}
		s.conns = map[*clientConn]struct{}{}
		s.base, s.stopBase = context.WithCancel(context.Background())
		s.decisions = decisionLog{log: s.Log, budget: logging.Budget{PerSecond: s.DecisionLogsPerSecond}}
		if len(s.ConnectPorts) == 0 {
			s.ConnectPorts = []uint16{443}
		}
		setDefault(&s.DialTimeout, DefaultDialTimeout)
		setDefault(&s.HeaderTimeout, DefaultHeaderTimeout)
		setDefault(&s.IdleTimeout, DefaultIdleTimeout)
		setDefault(&s.UpstreamTimeout, DefaultUpstreamTimeout)
		setDefault(&s.MaxHeaderBytes, DefaultMaxHeaderBytes)
	})
}

// setDefault gives a field left zero its default.
func setDefault[T time.Duration | int](field *T, def T) {
	if *field == 0 {
		*field = def
	}
}

// Serve accepts connections on ln until Shutdown. Every connection gets its own
// goroutine; a panic in one is recovered, counted and logged, and ends only that one.
func (s *Server) Serve(ln *connlimit.Listener) error {
	s.init()
	if s.rules.Load() == nil {
		return errors.New("httpproxy: SetRules was not called")
	}
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	for {
		c, err := ln.Accept() // waits out errors other than a closed listener
		if err != nil {
			if s.draining.Load() {
				return ErrServerClosed
			}
			return err
		}
		cc := s.track(ln, c.(*net.TCPConn))
		if cc == nil {
			c.Close()
			ln.Release(c)
			continue
		}
		go s.serveConn(cc)
	}
}

// track registers a new connection, or returns nil when draining.
func (s *Server) track(ln *connlimit.Listener, c *net.TCPConn) *clientConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active.Start() {
		return nil
	}
	cc := newClientConn(s, ln, c)
	s.conns[cc] = struct{}{}
	return cc
}

func (s *Server) serveConn(cc *clientConn) {
	s.Metrics.ActiveConnections.Inc()
	defer func() {
		if r := recover(); r != nil {
			s.Metrics.Panics.Inc()
			s.Log.Error("panic serving a connection; closed it", "client", cc.peer, "panic", r, "stack", string(debug.Stack()))
		}
		cc.close()
		s.mu.Lock()
		delete(s.conns, cc)
		s.mu.Unlock()
		s.Metrics.ActiveConnections.Dec()
		s.active.Done()
	}()
	cc.serve()
}

// Shutdown stops accepting, closes connections waiting for a request, and waits for
// requests and tunnels under way to finish; when ctx ends first, it cancels dials in
// progress and closes them, and returns how many it closed.
func (s *Server) Shutdown(ctx context.Context) int {
	s.init()
	defer s.stopBase()
	s.mu.Lock()
	s.draining.Store(true)
	s.active.Stop() // under mu, so no connection is tracked after the idle ones close
	for ln := range s.listeners {
		ln.Close()
	}
	for cc := range s.conns {
		cc.closeIfIdle()
	}
	s.mu.Unlock()
	return s.active.Wait(ctx, func() (cut int) {
		s.stopBase()
		s.mu.Lock()
		defer s.mu.Unlock()
		for cc := range s.conns {
			cc.abort()
			cut++
		}
		return cut
	})
}

// Ready reports whether the proxy is serving with rules in place.
func (s *Server) Ready() error {
	switch {
	case s.draining.Load():
		return errors.New("shutting down")
	case s.rules.Load() == nil:
		return errors.New("no rules loaded")
	}
	return nil
}

// connectAllowed reports whether CONNECT may reach port.
func (s *Server) connectAllowed(port uint16) bool {
	for _, p := range s.ConnectPorts {
		if p == port {
			return true
		}
	}
	return false
}

// clientAddr is the unmapped remote address of c.
func clientAddr(c *net.TCPConn) netip.AddrPort {
	a := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
