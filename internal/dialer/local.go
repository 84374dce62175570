package dialer

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// localTTL is how long the list of the namespace's own addresses is reused: a pod's
// addresses change only when the plugin runs, and reading them is a netlink dump.
const localTTL = time.Second

type localAddrs struct {
	addrs map[netip.Addr]bool
	read  time.Time
}

var (
	local       atomic.Pointer[localAddrs] // read on every dial, without a lock
	localReread sync.Mutex                 // one re-read at a time
)

// IsLocal reports whether a reaches this network namespace itself: a loopback or
// unspecified address (each reaches a listener on the wildcard address), or one of
// the pod's own addresses on eth0 and net1. A proxy that dialled one would be talking
// to itself or to its neighbours in the pod: a loop, or a way around the rules. When
// the addresses cannot be read it says yes, the safe side.
func IsLocal(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	if a.IsLoopback() || a.IsUnspecified() {
		return true
	}
	l := local.Load()
	if l == nil || time.Since(l.read) > localTTL {
		var ok bool
		if l, ok = rereadLocal(); !ok {
			return true
		}
	}
	return l.addrs[a]
}

// CheckLocal refuses a when it is an address of this pod (IsLocal), on any port,
// unless it is one of named: the addresses the configuration names exactly (an
// allow address rule, a forwarding line's IP literal). Both proxies apply it to every
// address they would dial. A range, a name or "*" that happens to cover a pod address
// does not count: dialling one reaches the pod's other listeners (metrics, sidecars)
// from inside, or the proxy itself, each connection opening the next.
func CheckLocal(a netip.Addr, named ...netip.Addr) error {
	if !IsLocal(a) || slices.Contains(named, a.Unmap()) {
		return nil
	}
	return fmt.Errorf("destination %s is an address of this pod and the configuration does not name it", a)
}

func rereadLocal() (*localAddrs, bool) {
	localReread.Lock()
	defer localReread.Unlock()
	if l := local.Load(); l != nil && time.Since(l.read) <= localTTL {
		return l, true // another caller re-read it meanwhile
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, false
	}
	l := &localAddrs{addrs: map[netip.Addr]bool{}, read: time.Now()}
	for _, ifa := range ifaddrs {
		if n, ok := ifa.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				l.addrs[ip.Unmap()] = true
			}
		}
	}
	local.Store(l)
	return l, true
}
