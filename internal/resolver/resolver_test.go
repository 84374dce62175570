package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/egress-router/egress-router/internal/resolver/dnstest"
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
	got, err := collect("www.example.com", []dns.RR{
		rr("lb.example.net. 60 IN A 203.0.113.1"),
		rr("www.example.com. 30 IN CNAME edge.example.com."),
		rr("edge.example.com. 300 IN CNAME lb.example.net."),
		rr("attacker.example.org. 1 IN A 203.0.113.66"),
	})
	if err != nil || !slices.Equal(got.Addrs, []netip.Addr{addr1}) || got.TTL != 30*time.Second {
		t.Fatalf("got %v ttl %s, %v; want [203.0.113.1] with the chain's smallest TTL 30s", got.Addrs, got.TTL, err)
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

// chainServer is a DNS server on UDP and TCP answering name with a chain of links
// CNAMEs listed backwards (dnstest.SetChain).
func chainServer(t testing.TB, name string, links int) *Resolver {
	srv := dnstest.StartWithTCP(t)
	srv.SetChain(name, links, addr1)
	return &Resolver{Servers: []string{srv.Addr}}
}

// A chain of up to 16 CNAMEs is followed whatever the order of its records, with the
// smallest TTL on the way.
func TestLookupFollowsACNAMEChainOf16LinksInAnyOrder(t *testing.T) {
	r := chainServer(t, "www.example.com", 16)
	got, err := r.Lookup(context.Background(), "www.example.com")
	if err != nil || !slices.Equal(got.Addrs, []netip.Addr{addr1}) || got.TTL != 100*time.Second {
		t.Fatalf("got %v ttl %s, %v; want [%s] with the first link's TTL 100s", got.Addrs, got.TTL, err, addr1)
	}
}

// A longer chain fails the resolution with an error that says so, however long it is:
// a reversed 2,600-link chain fills one 60 KB TCP answer, and following it by passes
// over every record cost a quarter of a second of CPU per resolution.
func TestLookupRefusesACNAMEChainLongerThan16Links(t *testing.T) {
	for _, links := range []int{17, 2600} {
		t.Run(fmt.Sprint(links), func(t *testing.T) {
			r := chainServer(t, "long.example.com", links)
			got, err := r.Lookup(context.Background(), "long.example.com")
			if err == nil || !strings.Contains(err.Error(), "CNAME chain longer than 16 links") {
				t.Fatalf("got %v, %v; want the chain refused", got.Addrs, err)
			}
		})
	}
}

// BenchmarkLookupOfALongReversedCNAMEChain reports the CPU one resolution of a
// reversed 2,600-link chain costs this process (client and test server together:
// the server packs the 60 KB answer, the client unpacks it and walks it).
func BenchmarkLookupOfALongReversedCNAMEChain(b *testing.B) {
	r := chainServer(b, "long.example.com", 2600)
	ctx := context.Background()
	before := cpuTime(b)
	for b.Loop() {
		r.Lookup(ctx, "long.example.com")
	}
	b.ReportMetric(float64((cpuTime(b)-before).Microseconds())/float64(b.N), "cpu-µs/op")
}

func cpuTime(b *testing.B) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		b.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
