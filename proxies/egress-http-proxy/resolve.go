package main

import (
	"context"
	"net/netip"

	"github.com/egress-router/egress-router/pkg/httpproxy"
	"github.com/egress-router/egress-router/pkg/resolver"
)

// newResolver resolves destination names with the shared resolver (its own DNS client,
// so glibc's lenient parsing never applies), through server when one is given, else
// the servers of /etc/resolv.conf.
func newResolver(server string) httpproxy.Resolver {
	r := &resolver.Resolver{}
	if server != "" {
		r.Servers = []string{server}
	}
	return func(ctx context.Context, host string) ([]netip.Addr, error) {
		answer, err := r.Lookup(ctx, host)
		return answer.Addrs, err
	}
}
