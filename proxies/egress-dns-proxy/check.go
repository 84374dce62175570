package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/guard"
	"github.com/egress-router/egress-router/internal/resolver"
)

// checkLookupTimeout bounds -check's lookups of all names together.
const checkLookupTimeout = 5 * time.Second

// printTable writes -check's forwarding table: local port, host, remote port and, for
// names, what they resolve to now (addresses the guard refuses are marked). DNS
// failures are shown, not fatal: the proxy starts and retries without DNS too.
func printTable(w io.Writer, cfg *config.Config, res *resolver.Resolver) {
	ctx, cancel := context.WithTimeout(context.Background(), checkLookupTimeout)
	defer cancel()
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "LOCAL PORT\tHOST\tREMOTE PORT\tADDRESSES")
	for _, r := range cfg.DNSProxy.Rules {
		addrs := r.Host.String()
		if r.Host.Name != "" {
			addrs = resolved(ctx, res, r.Host.Name)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\n", r.Port, r.Host, r.RemotePort, addrs)
	}
	tw.Flush()
}

func resolved(ctx context.Context, res *resolver.Resolver, name string) string {
	answer, err := res.Lookup(ctx, name)
	if err != nil {
		return "(not resolved now: " + err.Error() + ")"
	}
	out := make([]string, len(answer.Addrs))
	for i, a := range answer.Addrs {
		out[i] = a.String()
		if err := guard.Check(a); err != nil {
			out[i] += " (refused: " + err.Error() + ")"
		}
	}
	return strings.Join(out, ", ") + fmt.Sprintf(" (ttl %s)", answer.TTL)
}
