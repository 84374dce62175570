package main

import (
	"github.com/egress-router/egress-router/pkg/httpproxy"
	"github.com/egress-router/egress-router/pkg/resolver"
)

// newResolver resolves destination names with the shared resolver (its own DNS client,
// so glibc's lenient parsing never applies), through server when one is given, else
// the servers of /etc/resolv.conf; answers are kept for their TTL (answerCache).
func newResolver(server string) httpproxy.Resolver {
	r := &resolver.Resolver{}
	if server != "" {
		r.Servers = []string{server}
	}
	return newAnswerCache(r.Lookup).resolve
}
