package link

import (
	"bytes"
	"fmt"
	"net/netip"
	"time"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"golang.org/x/sys/unix"

	"github.com/egress-router/egress-router/internal/sockio"
)

// InUse reports whether another host on the interface's segment answers for one of
// the reserved IPv4 addresses: it sends an ARP probe (RFC 5227: sender address 0, so
// no neighbour learns anything from it) for each and waits up to wait for a reply.
// A holder answers while the kernel holds the address, even with its agent frozen,
// which is what lets a new leader wait for the old one to let go. IPv6 addresses are
// not probed. Call it in the pod namespace, with the link up and the addresses not
// held here.
func InUse(r Reservation, wait time.Duration) (bool, error) {
	var targets [][4]byte
	for _, a := range r.Addresses {
		if a.Addr().Is4() {
			targets = append(targets, a.Addr().As4())
		}
	}
	if len(targets) == 0 {
		return false, nil
	}
	l, err := netlinksafe.LinkByName(r.IfName)
	if err != nil {
		return false, fmt.Errorf("find %s: %w", r.IfName, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(sockio.Htons(unix.ETH_P_ARP)))
	if err != nil {
		return false, fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: sockio.Htons(unix.ETH_P_ARP), Ifindex: l.Attrs().Index}); err != nil {
		return false, fmt.Errorf("bind packet socket to %s: %w", r.IfName, err)
	}
	to := arpBroadcast(l.Attrs().Index)
	for _, ip := range targets {
		probe := arpAnnouncement(l.Attrs().HardwareAddr, netip.AddrFrom4(ip))
		clear(probe[14:18]) // sender address 0: a probe
		if err := unix.Sendto(fd, probe, 0, to); err != nil {
			return false, fmt.Errorf("ARP probe for %s on %s: %w", netip.AddrFrom4(ip), r.IfName, err)
		}
	}
	deadline := time.Now().Add(wait)
	buf := make([]byte, 128)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		tv := unix.NsecToTimeval(max(left, time.Millisecond).Nanoseconds()) // 0 would block for ever
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return false, fmt.Errorf("probe timeout: %w", err)
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("read ARP on %s: %w", r.IfName, err)
		}
		if holder, ok := arpSender(buf[:n]); ok && !bytes.Equal(holder.mac, l.Attrs().HardwareAddr) {
			for _, ip := range targets {
				if holder.ip == ip {
					return true, nil
				}
			}
		}
	}
}

type arpPeer struct {
	mac []byte
	ip  [4]byte
}

// arpSender is the sender of an Ethernet/IPv4 ARP packet (request or reply): a host
// that sends from an address holds it.
func arpSender(b []byte) (arpPeer, bool) {
	if len(b) < 28 || b[0] != 0 || b[1] != 1 || b[2] != 8 || b[3] != 0 || b[4] != 6 || b[5] != 4 {
		return arpPeer{}, false
	}
	var p arpPeer
	p.mac = b[8:14]
	copy(p.ip[:], b[14:18])
	return p, true
}
