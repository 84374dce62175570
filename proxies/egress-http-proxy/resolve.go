package main

import (
	"time"

	"github.com/egress-router/egress-router/internal/httpproxy"
	"github.com/egress-router/egress-router/internal/resolver"
)

// newResolver resolves destination names with the shared resolver (its own DNS client,
// so glibc's lenient parsing never applies), through servers ("host:port") when given,
// else those of /etc/resolv.conf, each query bounded by timeout; answers are kept for
// their TTL (answerCache).
func newResolver(servers []string, timeout time.Duration) httpproxy.Resolver {
	r := &resolver.Resolver{Servers: servers, Timeout: timeout}
	return newAnswerCache(r.Lookup).resolve
}
