package nat

import (
	"fmt"

	"github.com/containernetworking/plugins/pkg/utils/sysctl"
)

// The input guard turns conntrack on in the pod namespace, which then tracks every
// connection through the pod: a proxied one twice (cluster side and node-network
// side). The kernel keeps a closed connection's entry for 120 s (TIME_WAIT), so at N
// new connections a second the pod holds about 240·N entries, and at a few thousand a
// second its count reaches nf_conntrack_max (a node-wide limit each namespace's count
// is held to) and new connections are dropped. At 10 s it is 20·N. Forgetting a
// closed connection early costs the guard nothing: a late FIN or RST of it is INVALID
// and reaches the pod's TCP stack, which answers from its own TIME_WAIT as it would
// without conntrack; a late ACK or data segment is NEW and dropped, as an unsolicited
// one is; neither opens anything.
const (
	timeWaitKey     = "net/netfilter/nf_conntrack_tcp_timeout_time_wait"
	timeWaitDefault = "120"
	timeWait        = "10"
)

// ShortenTimeWait sets the pod namespace's conntrack TIME_WAIT to 10 s when it holds
// the kernel's default, and returns a function that puts the default back (for a
// failed ADD). Another value is someone's choice and stays: a pod's
// securityContext.sysctls, which CRI-O applies before CNI ADD (containerd applies them
// after, and they win there). Call it in the pod namespace after the guard is
// applied, which loads conntrack and with it the setting. The plan asks for it in
// the proxy modes only (plan.Netfilter).
func ShortenTimeWait() (restore func(), err error) {
	v, err := sysctl.Sysctl(timeWaitKey)
	if err != nil {
		return func() {}, fmt.Errorf("read sysctl %s: %w", timeWaitKey, err)
	}
	if v != timeWaitDefault {
		return func() {}, nil
	}
	if _, err := sysctl.Sysctl(timeWaitKey, timeWait); err != nil {
		return func() {}, fmt.Errorf("set sysctl %s=%s: %w", timeWaitKey, timeWait, err)
	}
	return func() { _, _ = sysctl.Sysctl(timeWaitKey, timeWaitDefault) }, nil
}
