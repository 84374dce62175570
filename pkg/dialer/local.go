package dialer

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// localTTL is how long the list of the namespace's own addresses is reused: a pod's
// addresses change only when the plugin runs, and reading them is a netlink dump.
const localTTL = time.Second

var local struct {
	sync.Mutex
	addrs map[netip.Addr]bool
	read  time.Time
}

// IsLocal reports whether a is an address of this network namespace — the pod's own
// eth0, net1 or loopback. A proxy that dialled one would be talking to itself or to its
// neighbours in the pod: a loop, or a way around the rules. When the addresses cannot
// be read it says yes, the safe side.
func IsLocal(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	local.Lock()
	defer local.Unlock()
	if local.addrs == nil || time.Since(local.read) > localTTL {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			local.addrs = nil
			return true
		}
		local.addrs = map[netip.Addr]bool{}
		for _, ifa := range addrs {
			if n, ok := ifa.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					local.addrs[ip.Unmap()] = true
				}
			}
		}
		local.read = time.Now()
	}
	return local.addrs[a]
}
