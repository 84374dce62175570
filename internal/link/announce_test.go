package link

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
)

// The advertisement must pass a receiver's checks and override its entry: override
// without solicited, the target, and our MAC in the target link-layer option.
func TestNeighbourAdvertisementOverridesTheEntry(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	ip := netip.MustParseAddr("2001:db8:12::99")
	b := neighbourAdvertisement(mac, ip)
	switch {
	case len(b) != 32 || b[0] != 136 || b[1] != 0:
		t.Fatalf("not a neighbour advertisement: % x", b)
	case b[4] != 0x20:
		t.Fatalf("flags %#x, want override only", b[4])
	case netip.AddrFrom16([16]byte(b[8:24])) != ip:
		t.Fatalf("target %s", netip.AddrFrom16([16]byte(b[8:24])))
	case b[24] != 2 || b[25] != 1 || !bytes.Equal(b[26:32], mac):
		t.Fatalf("target link-layer option: % x", b[24:])
	}
}
