package main

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/egress-router/egress-router/internal/resolver"
	"github.com/egress-router/egress-router/internal/resolver/dnstest"
)

// A name asked for again within its TTL is answered without a query; a TTL of zero
// and a failed lookup are not kept.
func TestResolverKeepsAnswersForTheirTTL(t *testing.T) {
	dns := dnstest.Start(t, nil)
	addr := netip.MustParseAddr("192.0.2.10")
	dns.Set("kept.example.com", 60, addr)
	dns.Set("unkept.example.com", 0, addr)
	resolve := newResolver([]string{dns.Addr}, time.Second)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		kept bool
	}{{"kept.example.com", true}, {"unkept.example.com", false}} {
		if _, err := resolve(ctx, tc.name); err != nil {
			t.Fatal(err)
		}
		first := dns.Queries(tc.name)
		got, err := resolve(ctx, tc.name)
		if err != nil || len(got) != 1 || got[0] != addr {
			t.Fatalf("%s again: %v %v", tc.name, got, err)
		}
		if again := dns.Queries(tc.name) > first; again == tc.kept {
			t.Errorf("%s: queried again %v, want %v", tc.name, again, !tc.kept)
		}
	}
	if _, err := resolve(ctx, "later.example.com"); err == nil {
		t.Fatal("a name with no records resolved")
	}
	dns.Set("later.example.com", 60, addr)
	if got, err := resolve(ctx, "later.example.com"); err != nil || len(got) != 1 {
		t.Fatalf("after the name appeared: %v %v; want the failure not kept", got, err)
	}
}

// However long the TTL, an answer is reused for maxCacheTTL at most; the cache holds
// maxCacheEntries answers at most.
func TestAnswerCacheIsBounded(t *testing.T) {
	lookups := 0
	c := newAnswerCache(func(_ context.Context, name string) (resolver.Answer, error) {
		lookups++
		return resolver.Answer{Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.10")}, TTL: 24 * time.Hour}, nil
	})
	now := time.Unix(1e9, 0)
	c.now = func() time.Time { return now }
	ctx := context.Background()
	c.resolve(ctx, "a.example.com")
	now = now.Add(maxCacheTTL - time.Second)
	c.resolve(ctx, "a.example.com")
	if lookups != 1 {
		t.Fatalf("%d lookups within the ceiling, want 1", lookups)
	}
	now = now.Add(2 * time.Second)
	c.resolve(ctx, "a.example.com")
	if lookups != 2 {
		t.Fatalf("%d lookups past the ceiling, want 2", lookups)
	}
	for i := range maxCacheEntries + 100 {
		c.resolve(ctx, fmt.Sprintf("n%d.example.com", i))
	}
	if n := len(c.answers); n > maxCacheEntries {
		t.Fatalf("%d answers kept, cap %d", n, maxCacheEntries)
	}
}
