package main

import (
	"context"
	"fmt"
	"io"

	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/httpproxy"
)

// rulesOf is what the proxy takes from a configuration.
func rulesOf(c *config.Config) httpproxy.Rules {
	return httpproxy.Rules{Policy: c.HTTPProxy, Sources: c.IP.Sources()}
}

// printRules prints the effective rule table: order, allow/deny, kind, normalised value.
func printRules(w io.Writer, c *config.Config) {
	for i, r := range c.HTTPProxy.Rules {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", i+1, allowDeny(r.Deny), r.Kind, r)
	}
}

func allowDeny(deny bool) string {
	if deny {
		return "deny"
	}
	return "allow"
}

func printExplanation(ctx context.Context, w io.Writer, c *config.Config, resolve httpproxy.Resolver, hostport string) error {
	e, err := httpproxy.Explain(ctx, rulesOf(c), resolve, hostport)
	if err != nil {
		return err
	}
	if e.Refused != nil {
		fmt.Fprintf(w, "%s\tdeny\t%s (decided by the name; not resolved)\n", e.Target, e.Refused.Reason())
	}
	for _, a := range e.Addrs {
		fmt.Fprintf(w, "%s\tdial %s\t%s\t%s\n", e.Target, a.Addr, allowDeny(!a.Decision.Allow), a.Decision.Reason())
	}
	return nil
}
