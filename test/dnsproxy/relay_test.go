package dnsproxy

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/netip"
	"testing"

	"github.com/egress-router/egress-router/test/topology"
)

// Several lines at once: IPv4 and IPv6 literals, a port map, and a name; each relayed
// from the reserved address of the destination's family, reached from the client over
// the pod's IPv4 and IPv6 cluster addresses. The same destinations refuse the client.
func TestDNSProxyRelaysSeveralLinesIPv4IPv6AndPortMaps(t *testing.T) {
	lines := []string{"80 203.0.113.25", "8080 203.0.113.26 80", "8443 2001:db8:20::25 80", "5432 db.example.com 80"}
	r := newDNSRouter(t, lines...)
	r.dns.Set("db.example.com", 60, netip.MustParseAddr("203.0.113.27"))
	serveEcho(t, r.tp.Dest, "203.0.113.25:80", "203.0.113.26:80", "[2001:db8:20::25]:80", "203.0.113.27:80")
	r.start(t, lines)
	reserved, reserved6 := topology.Reserved.Addr().String(), topology.Reserved6.Addr().String()
	for _, c := range []struct {
		port            int
		clientV6        bool
		dialled, source string
	}{
		{80, false, "203.0.113.25", reserved},
		{80, true, "203.0.113.25", reserved},
		{8080, false, "203.0.113.26", reserved},
		{8443, false, "2001:db8:20::25", reserved6},
		{8443, true, "2001:db8:20::25", reserved6},
		{5432, false, "203.0.113.27", reserved},
	} {
		dialled, source := r.greeting(t, c.port, c.clientV6)
		if dialled != c.dialled || source != c.source {
			t.Errorf("port %d (client over IPv6: %v): reached %s from %s, want %s from %s", c.port, c.clientV6, dialled, source, c.dialled, c.source)
		}
	}
	if _, err := topology.AskSource(r.tp.Client, "tcp", "203.0.113.25:80"); !topology.IsRefused(err) {
		t.Errorf("the client going direct: want refused, got %v", err)
	}
}

// One side's FIN does not cut the other direction, and 24 MiB each way arrive byte for
// byte.
func TestDNSProxyHalfCloseAndLargeTransferByteForByte(t *testing.T) {
	r := newDNSRouter(t, "80 203.0.113.25")
	serveEcho(t, r.tp.Dest, "203.0.113.25:80")
	r.start(t, []string{"80 203.0.113.25"})
	c, err := r.dialPod(80, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.greeting(); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 24<<20)
	rand.Read(payload)
	go func() {
		c.Write(payload)
		c.CloseWrite() // half-close: the echo and "bye" must still come back
	}()
	got, err := io.ReadAll(c.r)
	if err != nil {
		t.Fatalf("read back: %v after %d bytes", err, len(got))
	}
	want := append(payload, "bye\n"...)
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes back, want the %d sent plus the server's reply after the client's FIN", len(got), len(want))
	}
}
