package link

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

var testMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}

func TestGratuitousARPAnnouncesTheAddressAsItsOwn(t *testing.T) {
	b := gratuitousARP(testMAC, netip.MustParseAddr("192.0.2.99"))
	ip := []byte{192, 0, 2, 99}
	if len(b) != 28 || binary.BigEndian.Uint16(b[6:]) != 1 || !bytes.Equal(b[8:14], testMAC) ||
		!bytes.Equal(b[14:18], ip) || !bytes.Equal(b[24:28], ip) || !bytes.Equal(b[18:24], make([]byte, 6)) {
		t.Fatalf("not a gratuitous ARP request: % x", b)
	}
}

// The advertisement must pass a receiver's checks: hop limit 255, override without
// solicited, the target and our MAC in the option, and a valid checksum.
func TestUnsolicitedNAIsValid(t *testing.T) {
	ip := netip.MustParseAddr("2001:db8:12::99")
	b := unsolicitedNA(testMAC, ip)
	src, dst := [16]byte(b[8:24]), [16]byte(b[24:40])
	na := b[40:]
	switch {
	case b[0]>>4 != 6 || b[6] != 58 || b[7] != 255 || int(binary.BigEndian.Uint16(b[4:])) != len(na):
		t.Fatalf("IPv6 header: % x", b[:40])
	case netip.AddrFrom16(src) != ip || netip.AddrFrom16(dst) != allNodes:
		t.Fatalf("addresses %s -> %s", netip.AddrFrom16(src), netip.AddrFrom16(dst))
	case na[0] != 136 || na[4] != 0x20 || netip.AddrFrom16([16]byte(na[8:24])) != ip:
		t.Fatalf("advertisement: % x", na)
	case na[24] != 2 || na[25] != 1 || !bytes.Equal(na[26:32], testMAC):
		t.Fatalf("target link-layer option: % x", na[24:])
	}
	if sum := icmpv6Checksum(src, dst, na); sum != 0 {
		t.Fatalf("checksum does not verify: residue %#x", sum)
	}
}
