package main

import (
	"context"
	"net"
	"net/netip"

	"github.com/egress-router/egress-router/pkg/httpproxy"
)

// newResolver resolves with Go's own resolver (never glibc's lenient parser), through
// server when one is given.
func newResolver(server string) httpproxy.Resolver {
	r := &net.Resolver{PreferGo: true}
	if server != "" {
		r.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		}
	}
	return func(ctx context.Context, host string) ([]netip.Addr, error) {
		return r.LookupNetIP(ctx, "ip", host)
	}
}
