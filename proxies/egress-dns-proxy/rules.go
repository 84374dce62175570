package main

import (
	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/forwarder"
)

// rulesOf is what the forwarder takes from a configuration.
func rulesOf(c *config.Config) forwarder.Rules {
	return forwarder.Rules{Lines: c.DNSProxy.Rules, Sources: c.IP.Sources()}
}
