// Command egress-router is the CNI plugin: it gives a router pod a macvlan interface
// with the reserved source IP and, in redirect mode, the NAT that sends connections on.
package main

import (
	"runtime"

	"github.com/containernetworking/cni/pkg/skel"
	cniversion "github.com/containernetworking/cni/pkg/version"

	"github.com/egress-router/egress-router/pkg/version"
)

// Namespaces are per thread: a goroutine that enters the pod namespace must not be
// moved to another thread, nor another goroutine be run on this one.
func init() { runtime.LockOSThread() }

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, Status: cmdStatus, GC: cmdGC},
		cniversion.PluginSupports("0.3.1", "0.4.0", "1.0.0", "1.1.0"),
		"egress-router "+version.Version)
}
