package resolver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/egress-router/egress-router/pkg/resolver/dnstest"
)

var (
	addr1 = netip.MustParseAddr("203.0.113.1")
	addr2 = netip.MustParseAddr("203.0.113.2")
	addr6 = netip.MustParseAddr("2001:db8:20::1")
)

func TestLookupReturnsBothFamiliesIPv4First(t *testing.T) {
	srv := dnstest.Start(t, nil)
	srv.Set("db.example.com", 42, addr6, addr1, addr2)
	r := Resolver{Servers: []string{srv.Addr}}
	got, err := r.Lookup(context.Background(), "db.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Addr{addr1, addr2, addr6}; !slices.Equal(got.Addrs, want) || got.TTL != 42*time.Second {
		t.Fatalf("got %v ttl %s, want %v ttl 42s", got.Addrs, got.TTL, want)
	}
}

func TestLookupWithOneFamilyOnly(t *testing.T) {
	srv := dnstest.Start(t, nil)
	srv.Set("v6.example.com", 5, addr6)
	r := Resolver{Servers: []string{srv.Addr}}
	got, err := r.Lookup(context.Background(), "v6.example.com")
	if err != nil || !slices.Equal(got.Addrs, []netip.Addr{addr6}) {
		t.Fatalf("got %v, %v", got.Addrs, err)
	}
}

func TestLookupOfAMissingNameFails(t *testing.T) {
	srv := dnstest.Start(t, nil)
	r := Resolver{Servers: []string{srv.Addr}}
	if _, err := r.Lookup(context.Background(), "missing.example.com"); err == nil {
		t.Fatal("want an error for a name that does not exist")
	}
}

func TestLookupMovesOnFromAServerThatDoesNotAnswer(t *testing.T) {
	dead := dnstest.Start(t, nil)
	dead.SetDown(true)
	live := dnstest.Start(t, nil)
	live.Set("a.example.com", 5, addr1)
	r := Resolver{Servers: []string{dead.Addr, live.Addr}, Timeout: 100 * time.Millisecond}
	got, err := r.Lookup(context.Background(), "a.example.com")
	if err != nil || !slices.Equal(got.Addrs, []netip.Addr{addr1}) {
		t.Fatalf("got %v, %v", got.Addrs, err)
	}
}

func TestLookupFailsWhenNoServerAnswers(t *testing.T) {
	dead := dnstest.Start(t, nil)
	dead.SetDown(true)
	r := Resolver{Servers: []string{dead.Addr}, Timeout: 100 * time.Millisecond}
	start := time.Now()
	_, err := r.Lookup(context.Background(), "a.example.com")
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Fatalf("got %v, want a timeout", err)
	}
	if time.Since(start) > time.Second {
		t.Fatalf("lookup took %s with a 100ms timeout", time.Since(start))
	}
}

func TestCollectFollowsTheCNAMEChainAndIgnoresOtherOwners(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	got, ok := collect("www.example.com", []dns.RR{
		rr("lb.example.net. 60 IN A 203.0.113.1"),
		rr("www.example.com. 30 IN CNAME edge.example.com."),
		rr("edge.example.com. 300 IN CNAME lb.example.net."),
		rr("attacker.example.org. 1 IN A 203.0.113.66"),
	})
	if !ok || !slices.Equal(got.Addrs, []netip.Addr{addr1}) || got.TTL != 30*time.Second {
		t.Fatalf("got %v ttl %s ok %v; want [203.0.113.1] with the chain's smallest TTL 30s", got.Addrs, got.TTL, ok)
	}
}

// A mapped AAAA answer is the IPv4 address it embeds, so the rules and the guard see
// 127.0.0.1, not a spelling they might not recognise.
func TestLookupUnmapsIPv4MappedAnswers(t *testing.T) {
	srv := dnstest.Start(t, nil)
	srv.Set("mapped.example.com", 5, netip.MustParseAddr("::ffff:127.0.0.1"), addr6)
	r := Resolver{Servers: []string{srv.Addr}}
	got, err := r.Lookup(context.Background(), "mapped.example.com")
	if want := []netip.Addr{netip.MustParseAddr("127.0.0.1"), addr6}; err != nil || !slices.Equal(got.Addrs, want) {
		t.Fatalf("got %v, %v; want %v", got.Addrs, err, want)
	}
}
