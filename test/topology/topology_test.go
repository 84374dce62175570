package topology

import (
	"testing"
)

// The topology itself: the destination accepts only the reserved address, so the
// client going direct is refused, while the node network and cluster work.
func TestDirectPathIsRefusedAndClusterWorks(t *testing.T) {
	tp := New(t)
	ServeSource(t, tp.Dest, "tcp", 80)
	ServeSource(t, tp.Dest, "udp", 53)
	ServeSource(t, tp.Node, "tcp", 9)
	if _, err := AskSource(tp.Client, "tcp", "203.0.113.25:80"); !IsRefused(err) {
		t.Fatalf("direct TCP from the client: want refused, got %v", err)
	}
	if _, err := AskSource(tp.Client, "tcp", "[2001:db8:20::25]:80"); !IsRefused(err) {
		t.Fatalf("direct TCP over IPv6 from the client: want refused, got %v", err)
	}
	if _, err := AskSource(tp.Client, "udp", "203.0.113.53:53"); err == nil {
		t.Fatalf("direct UDP from the client: want an error")
	}
	// The pod reaches a cluster address (the node's bridge) over eth0, from its own
	// cluster address.
	src, err := AskSource(tp.Pod.NS, "tcp", "10.128.0.1:9")
	if err != nil || src != tp.Pod.Addr.Addr().String() {
		t.Fatalf("pod to cluster: source %q, %v; want %s", src, err, tp.Pod.Addr.Addr())
	}
}
