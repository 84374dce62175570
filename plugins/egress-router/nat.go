package main

import (
	"errors"
	"fmt"

	"github.com/egress-router/egress-router/pkg/config"
	"github.com/egress-router/egress-router/pkg/nat"
)

var errNoBackend = errors.New("no NAT backend works here")

// natState is one attachment's netfilter state: the input guard in every mode, and
// redirect mode's NAT and forward filter.
type natState struct {
	backend nat.Backend
	att     nat.Attachment
	rules   nat.Ruleset
}

// planNAT returns the attachment's NAT state with a backend that works in the
// caller's namespace (the pod's has the same kernel).
func planNAT(cfg *config.Config, containerID, ifName string) (*natState, error) {
	s, err := natOf(cfg.Backend, containerID, ifName)
	if err != nil {
		return nil, err
	}
	s.rules = nat.Ruleset{Egress: ifName}
	if cfg.Mode == config.Redirect {
		// Elsewhere ip.destinations is accepted but unused: the proxies carry the lists.
		s.rules.Redirect = cfg.IP.Redirect
	}
	s.rules.Sources = cfg.IP.Sources().PerFamily()
	return s, nil
}

// natOf is the attachment's NAT state without its rules: enough to remove it, which
// finds the state by the attachment's tag.
func natOf(choice config.Backend, containerID, ifName string) (*natState, error) {
	b, err := availableBackend(choice)
	if err != nil {
		return nil, err
	}
	return &natState{backend: b, att: nat.Attachment{ContainerID: containerID, IfName: ifName}}, nil
}

// availableBackend is nat.New (which checks the backend works) with its failure
// marked as the environment's.
func availableBackend(choice config.Backend) (nat.Backend, error) {
	b, err := nat.New(choice)
	if err != nil {
		return nil, fmt.Errorf("%w: backend %s: %w", errNoBackend, choice, err)
	}
	return b, nil
}

func (s *natState) apply() error {
	if err := s.backend.Apply(s.att, s.rules); err != nil {
		return fmt.Errorf("%s: %w", s.backend.Name(), err)
	}
	return nil
}

func (s *natState) check() error {
	if err := s.backend.Check(s.att, s.rules); err != nil {
		return fmt.Errorf("%s rules: %w", s.backend.Name(), err)
	}
	return nil
}

func (s *natState) remove() error {
	if err := s.backend.Remove(s.att); err != nil {
		return fmt.Errorf("%s: remove rules: %w", s.backend.Name(), err)
	}
	return nil
}
