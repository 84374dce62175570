package main

import (
	"errors"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/egress-router/egress-router/internal/link"
)

// errPluginNotAvailable is the spec's code 50 for STATUS (the library names codes up
// to 11 only).
const errPluginNotAvailable = 50

// errDrift is this plugin's code (CNI reserves 1-99) for a CHECK that found the live
// namespace differing from the attachment.
const errDrift = 100

// asCNIError gives a failure its CNI code: 11 where retrying may help (the kernel was
// busy or a dump was interrupted), 4 where the node or pod is not as the call needs
// (no master, the interface name taken, no privilege, no NAT backend), 999 only for
// what is not foreseeable.
func asCNIError(msg string, err error) error {
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		return err
	}
	code := uint(types.ErrInternal)
	switch {
	case errors.Is(err, unix.EBUSY), errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR), errors.Is(err, netlink.ErrDumpInterrupted):
		code = types.ErrTryAgainLater
	case errors.Is(err, link.ErrNoMaster), errors.Is(err, link.ErrExists), errors.Is(err, errNoBackend),
		errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		code = types.ErrInvalidEnvironmentVariables
	}
	return types.NewError(code, msg, err.Error())
}
