// Command egress-router is the CNI plugin: it gives a router pod a macvlan interface
// with the reserved source IP and, in redirect mode, the NAT that sends connections on.
package main

import (
	"os"
	"runtime"
	"runtime/debug"

	"github.com/containernetworking/cni/pkg/skel"
	cniversion "github.com/containernetworking/cni/pkg/version"

	"github.com/egress-router/egress-router/internal/version"
)

// Namespaces are per thread: a goroutine that enters the pod namespace must not be
// moved to another thread, nor another goroutine be run on this one.
func init() { runtime.LockOSThread() }

// The plugin lives for milliseconds and its garbage dies with it: collecting it only
// slowed a thousand-line ADD by a fifth. The memory limit still makes the collector
// run if a pathological config ever needs it. GOGC or GOMEMLIMIT, when set, win.
func init() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(-1)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(64 << 20)
	}
}

func main() {
	if os.Getenv("CNI_COMMAND") == "DEL" {
		os.Exit(runDel(os.Getenv, os.Stdin)) // see runDel: DEL takes any configuration
	}
	skel.PluginMainFuncs(skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, Status: cmdStatus, GC: cmdGC},
		cniversion.PluginSupports("0.3.1", "0.4.0", "1.0.0", "1.1.0"),
		"egress-router "+version.Version)
}
