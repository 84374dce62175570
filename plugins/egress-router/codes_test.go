package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/egress-router/egress-router/internal/link"
)

func TestFailuresGetTheirCNICode(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want uint
	}{
		{"kernel busy, wrapped as netlink returns it", fmt.Errorf("add route: %w", unix.EBUSY), types.ErrTryAgainLater},
		{"try again", fmt.Errorf("apply: %w", unix.EAGAIN), types.ErrTryAgainLater},
		{"interrupted dump", fmt.Errorf("list links: %w", netlink.ErrDumpInterrupted), types.ErrTryAgainLater},
		{"no master", fmt.Errorf("find master: %w", link.ErrNoMaster), types.ErrInvalidEnvironmentVariables},
		{"name taken", fmt.Errorf("rename: %w", link.ErrExists), types.ErrInvalidEnvironmentVariables},
		{"no NAT backend", fmt.Errorf("%w: backend auto: none", errNoBackend), types.ErrInvalidEnvironmentVariables},
		{"no privilege", fmt.Errorf("create link: %w", unix.EPERM), types.ErrInvalidEnvironmentVariables},
		{"an error already coded keeps its code", types.NewError(types.ErrInvalidNetworkConfig, "bad", ""), types.ErrInvalidNetworkConfig},
		{"the unforeseen", errors.New("something else"), types.ErrInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *types.Error
			if !errors.As(asCNIError("egress-router ADD", tc.err), &got) || got.Code != tc.want {
				t.Fatalf("code %v, want %d", got, tc.want)
			}
		})
	}
}
