package link

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"golang.org/x/sys/unix"
)

// Announce tells the neighbours on the interface which MAC now holds each reserved
// address: a gratuitous ARP request for IPv4, an unsolicited neighbour advertisement
// with the override flag for IPv6. A gateway holding a stale entry (the previous
// router pod, on another node) updates it at once instead of sending to the old MAC
// until its entry times out — what makes failover fast. Call it in the pod namespace,
// with the link up and addressed.
//
// The frames are written here, on an AF_PACKET socket, rather than through a library:
// each is a few dozen bytes, the common Go arping library speaks only ARP, and the
// kernel's own arp_notify/ndisc_notify send asynchronously, so ADD could return
// before the neighbours were told.
func Announce(s Spec) error {
	l, err := netlinksafe.LinkByName(s.IfName)
	if err != nil {
		return fmt.Errorf("find %s: %w", s.IfName, err)
	}
	mac, index := l.Attrs().HardwareAddr, l.Attrs().Index
	for _, a := range s.Addresses {
		var err error
		if a.Addr().Is4() {
			err = send(index, unix.ETH_P_ARP, broadcastMAC, gratuitousARP(mac, a.Addr()))
		} else {
			err = send(index, unix.ETH_P_IPV6, allNodesMAC, unsolicitedNA(mac, a.Addr()))
		}
		if err != nil {
			return fmt.Errorf("announce %s on %s: %w", a.Addr(), s.IfName, err)
		}
	}
	return nil
}

var (
	broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	allNodesMAC  = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1} // ff02::1
	allNodes     = netip.MustParseAddr("ff02::1")
)

// send writes one frame with a link-layer header the kernel builds (SOCK_DGRAM).
func send(ifIndex int, ethType uint16, dst net.HardwareAddr, payload []byte) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Protocol: htons(ethType), Ifindex: ifIndex, Halen: uint8(len(dst))}
	copy(to.Addr[:], dst)
	return unix.Sendto(fd, payload, 0, to)
}

// gratuitousARP is an ARP request for ip from ip (RFC 5227 announcement): Linux
// updates an existing entry from it whatever arp_accept says.
func gratuitousARP(mac net.HardwareAddr, ip netip.Addr) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(b[2:], 0x0800) // IPv4
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], 1) // request
	copy(b[8:], mac)
	copy(b[14:], ip.AsSlice())
	copy(b[24:], ip.AsSlice()) // target hardware address stays zero
	return b
}

// unsolicitedNA is an IPv6 packet carrying a neighbour advertisement for ip to all
// nodes (RFC 4861 7.2.6): override set, solicited clear, our MAC as target link-layer
// address, hop limit 255 as receivers require.
func unsolicitedNA(mac net.HardwareAddr, ip netip.Addr) []byte {
	const headerLen, naLen = 40, 32
	b := make([]byte, headerLen+naLen)
	b[0] = 6 << 4
	binary.BigEndian.PutUint16(b[4:], naLen)
	b[6], b[7] = unix.IPPROTO_ICMPV6, 255
	src, dst := ip.As16(), allNodes.As16()
	copy(b[8:], src[:])
	copy(b[24:], dst[:])
	na := b[headerLen:]
	na[0] = 136           // neighbour advertisement
	na[4] = 0x20          // override
	copy(na[8:], src[:])  // target
	na[24], na[25] = 2, 1 // option: target link-layer address, 8 bytes
	copy(na[26:], mac)
	binary.BigEndian.PutUint16(na[2:], icmpv6Checksum(src, dst, na))
	return b
}

func icmpv6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	sum += uint32(len(msg)) + unix.IPPROTO_ICMPV6
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
