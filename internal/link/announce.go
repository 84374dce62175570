package link

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"golang.org/x/sys/unix"

	"github.com/egress-router/egress-router/internal/sockio"
)

// Announcing the reserved addresses tells the neighbours which MAC now holds them: a
// gateway with a stale entry (the previous router pod, on another node) updates it at
// once instead of sending to the old MAC until the entry times out — what makes
// failover fast. Both announcements leave before ADD returns:
//
//   - IPv4: Tune sets arp_notify on the interface, so the kernel itself sends a
//     gratuitous ARP request for every address while Up brings the link up.
//   - IPv6: the kernel sends no advertisement for an address without DAD, so Announce
//     sends an unsolicited neighbour advertisement on a raw ICMPv6 socket; the kernel
//     adds the IPv6 header and checksum.
//
// Not an AF_PACKET socket (hand-made frames, or the arping libraries): closing one
// waits for an RCU grace period (synchronize_net in packet_release), about 10 ms here,
// a third of a whole ADD.

// Announce sends the unsolicited neighbour advertisements. Call it in the pod
// namespace, with the link up and addressed.
func Announce(r Reservation) error {
	l, err := netlinksafe.LinkByName(r.IfName)
	if err != nil {
		return fmt.Errorf("find %s: %w", r.IfName, err)
	}
	for _, a := range r.Addresses {
		if a.Addr().Is6() {
			if err := advertise(l.Attrs().Index, l.Attrs().HardwareAddr, a.Addr()); err != nil {
				return fmt.Errorf("announce %s on %s: %w", a.Addr(), r.IfName, err)
			}
		}
	}
	return nil
}

// AnnounceHeld announces addresses Hold added to a link already up (an agent taking
// over): the kernel announces neither family then, so this sends a gratuitous ARP
// request for each IPv4 address and an unsolicited neighbour advertisement for each
// IPv6 one. The AF_PACKET socket's slow close does not matter here: the agent
// announces after it has taken over, not on a runtime's critical path. Call it in the
// pod namespace.
func AnnounceHeld(r Reservation) error {
	l, err := netlinksafe.LinkByName(r.IfName)
	if err != nil {
		return fmt.Errorf("find %s: %w", r.IfName, err)
	}
	for _, a := range r.Addresses {
		if a.Addr().Is4() {
			if err := gratuitousARP(l.Attrs().Index, l.Attrs().HardwareAddr, a.Addr()); err != nil {
				return fmt.Errorf("announce %s on %s: %w", a.Addr(), r.IfName, err)
			}
		}
	}
	return Announce(r)
}

// gratuitousARP broadcasts an ARP request for ip from ip (RFC 5227's announcement):
// receivers with an entry for ip replace its MAC, even within their lock time.
func gratuitousARP(ifIndex int, mac net.HardwareAddr, ip netip.Addr) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(fd)
	return unix.Sendto(fd, arpAnnouncement(mac, ip), 0, arpBroadcast(ifIndex))
}

// arpBroadcast is the Ethernet broadcast address of an ARP packet on ifIndex.
func arpBroadcast(ifIndex int) *unix.SockaddrLinklayer {
	to := &unix.SockaddrLinklayer{Protocol: sockio.Htons(unix.ETH_P_ARP), Ifindex: ifIndex, Halen: 6}
	copy(to.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	return to
}

// arpAnnouncement is the ARP payload (RFC 826) of a request whose sender and target
// protocol addresses are both ip; the kernel adds the Ethernet header.
func arpAnnouncement(mac net.HardwareAddr, ip netip.Addr) []byte {
	b := make([]byte, 28)
	b[1] = 1          // hardware type: Ethernet
	b[2], b[3] = 8, 0 // protocol type: IPv4
	b[4], b[5] = 6, 4 // address lengths
	b[7] = 1          // request
	copy(b[8:14], mac)
	a := ip.As4()
	copy(b[14:18], a[:])
	copy(b[24:28], a[:])
	return b
}

var allNodes = netip.MustParseAddr("ff02::1")

// advertise sends an unsolicited neighbour advertisement for ip to all nodes on the
// interface, from ip itself, with hop limit 255 as receivers require.
func advertise(ifIndex int, mac net.HardwareAddr, ip netip.Addr) error {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
	if err != nil {
		return fmt.Errorf("ICMPv6 socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 255); err != nil {
		return fmt.Errorf("hop limit: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: ip.As16()}); err != nil {
		return fmt.Errorf("bind %s: %w", ip, err)
	}
	to := &unix.SockaddrInet6{Addr: allNodes.As16(), ZoneId: uint32(ifIndex)}
	return unix.Sendto(fd, neighbourAdvertisement(mac, ip), 0, to)
}

// neighbourAdvertisement is the ICMPv6 message (RFC 4861 4.4): override set and
// solicited clear, as an unsolicited advertisement must be (7.2.6), with our MAC as
// the target link-layer address. The checksum is left to the kernel.
func neighbourAdvertisement(mac net.HardwareAddr, ip netip.Addr) []byte {
	b := make([]byte, 32)
	b[0] = 136  // neighbour advertisement
	b[4] = 0x20 // override
	target := ip.As16()
	copy(b[8:], target[:])
	b[24], b[25] = 2, 1 // option: target link-layer address, 8 bytes
	copy(b[26:], mac)
	return b
}
