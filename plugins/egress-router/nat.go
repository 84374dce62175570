package main

import (
	"errors"
	"fmt"

	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/nat"
)

var errNoBackend = errors.New("no NAT backend works here")

// availableBackend is nat.New (which checks the backend works in the caller's
// namespace; the pod's has the same kernel) with its failure marked as the
// environment's.
func availableBackend(choice config.Backend) (nat.Backend, error) {
	b, err := nat.New(string(choice))
	if err != nil {
		return nil, fmt.Errorf("%w: backend %s: %w", errNoBackend, choice, err)
	}
	return b, nil
}
