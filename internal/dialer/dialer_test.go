package dialer

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/egress-router/egress-router/test/serve"
)

func listen(t *testing.T, addr string) netip.AddrPort {
	t.Helper()
	return serve.Local(t, addr, func(net.Conn) {})
}

func TestBindsTheSourceOfTheDestinationsFamily(t *testing.T) {
	dst := listen(t, "127.0.0.1:0")
	d := Dialer{Sources: []netip.Addr{netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.2")}}
	c, err := d.Dial(context.Background(), dst)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr(); got != netip.MustParseAddr("127.0.0.2") {
		t.Fatalf("bound %s, want 127.0.0.2", got)
	}
}

func TestNoSourceOfTheFamilyIsAnError(t *testing.T) {
	dst := listen(t, "[::1]:0")
	d := Dialer{Sources: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}
	if _, err := d.Dial(context.Background(), dst); !errors.Is(err, ErrNoSource) {
		t.Fatalf("got %v, want ErrNoSource", err)
	}
}

func TestCheckRunsInControlOnTheDialledAddress(t *testing.T) {
	dst := listen(t, "127.0.0.1:0")
	var seen []netip.AddrPort
	var calls atomic.Int32
	d := Dialer{Check: func(ap netip.AddrPort) error {
		calls.Add(1)
		seen = append(seen, ap)
		return nil
	}}
	c, err := d.Dial(context.Background(), dst)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if calls.Load() != 1 || seen[0] != dst {
		t.Fatalf("check calls %d on %v, want once on %s", calls.Load(), seen, dst)
	}

	refuse := errors.New("guarded")
	d.Check = func(netip.AddrPort) error { return refuse }
	if _, err := d.Dial(context.Background(), dst); !errors.Is(err, refuse) {
		t.Fatalf("refused destination dialled: %v", err)
	}
}

func TestMappedAddressesAreUnmappedBeforeTheCheck(t *testing.T) {
	dst := listen(t, "127.0.0.1:0")
	mapped := netip.AddrPortFrom(netip.AddrFrom16(dst.Addr().As16()), dst.Port())
	var got netip.AddrPort
	d := Dialer{Check: func(ap netip.AddrPort) error { got = ap; return nil }}
	c, err := d.Dial(context.Background(), mapped)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got != dst {
		t.Fatalf("checked %s, want %s", got, dst)
	}
}

func TestUsableNeedsASourceOfTheFamilyUnlessThereIsNone(t *testing.T) {
	v4, v6 := netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("2001:db8::5")
	only4 := Dialer{Sources: []netip.Addr{netip.MustParseAddr("192.0.2.99")}}
	if !only4.Usable(v4) || only4.Usable(v6) {
		t.Error("a dialer with only an IPv4 source reaches IPv4 only")
	}
	if kernel := (Dialer{}); !kernel.Usable(v4) || !kernel.Usable(v6) {
		t.Error("with no reserved source the kernel chooses, for both families")
	}
}

func TestIsLocalKnowsLoopbackUnspecifiedNotOthers(t *testing.T) {
	for _, a := range []string{"127.0.0.1", "127.9.9.9", "::ffff:127.0.0.1", "::1", "0.0.0.0", "::"} {
		if !IsLocal(netip.MustParseAddr(a)) {
			t.Errorf("%s reaches this namespace itself", a)
		}
	}
	if IsLocal(netip.MustParseAddr("203.0.113.250")) {
		t.Error("a documentation address is not local here")
	}
}

// Only an address named exactly lifts the refusal of the pod's own addresses.
func TestCheckLocalYieldsOnlyToTheExactAddress(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		addr   string
		named  []netip.Addr
		refuse bool
	}{
		{"127.0.0.2", nil, true},
		{"127.0.0.2", []netip.Addr{a("127.0.0.1"), a("192.0.2.1")}, true},
		{"127.0.0.2", []netip.Addr{a("127.0.0.2")}, false},
		{"::ffff:127.0.0.2", []netip.Addr{a("127.0.0.2")}, false},
		{"::1", []netip.Addr{a("::1")}, false},
		{"203.0.113.250", nil, false},
	} {
		err := CheckLocal(a(tc.addr), tc.named...)
		if (err != nil) != tc.refuse {
			t.Errorf("CheckLocal(%s, %v) = %v, want refused %v", tc.addr, tc.named, err, tc.refuse)
		}
	}
}

func TestDialsBothFamiliesWithAndWithoutASource(t *testing.T) {
	v4, v6 := listen(t, "127.0.0.1:0"), listen(t, "[::1]:0")
	for _, tc := range []struct {
		name    string
		sources []netip.Addr
		dst     netip.AddrPort
	}{
		{"IPv4 from the reserved source", []netip.Addr{netip.MustParseAddr("127.0.0.1")}, v4},
		{"IPv6 from the reserved source", []netip.Addr{netip.MustParseAddr("::1")}, v6},
		{"IPv4 with no source", nil, v4},
		{"IPv6 with no source", nil, v6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := (&Dialer{Sources: tc.sources}).Dial(context.Background(), tc.dst)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.RemoteAddr().(*net.TCPAddr).AddrPort(); got != tc.dst {
				t.Fatalf("connected to %s, want %s", got, tc.dst)
			}
			// The port was left to connect (IP_BIND_ADDRESS_NO_PORT), so one reserved
			// address's ports serve every destination.
			raw, err := c.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var noPort int
			var getErr error
			raw.Control(func(fd uintptr) {
				noPort, getErr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT)
			})
			if getErr != nil || noPort != 1 {
				t.Fatalf("IP_BIND_ADDRESS_NO_PORT = %d (%v), want 1", noPort, getErr)
			}
		})
	}
}
