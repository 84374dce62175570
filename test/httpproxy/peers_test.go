package httpproxy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/egress-router/egress-router/test/proxyproc"
	"github.com/egress-router/egress-router/test/topology"
)

// The HTTP proxies egress-http-proxy is measured against, configured as their users
// would configure them for the same job, in the router pod.

// startSquid runs Squid in the router pod with a configuration equivalent to the
// proxy's: the same allowed range, CONNECT to the same ports, the reserved source
// address, no caching, no access log. It is a child process stopped by PID.
func startSquid(b *testing.B, r *httpRouter, port int, connectPorts ...int) *proxyproc.Process {
	b.Helper()
	dir, err := os.MkdirTemp("", "squid-bench")
	if err != nil {
		b.Fatal(err)
	}
	os.Chmod(dir, 0o777) // squid drops to the "proxy" user
	b.Cleanup(func() { os.RemoveAll(dir) })
	ports := "443"
	for _, p := range connectPorts {
		ports += " " + strconv.Itoa(p)
	}
	conf := fmt.Sprintf(`http_port %d
acl dest dst 203.0.113.0/24
acl connect_ports port %s
acl CONNECT method CONNECT
http_access deny CONNECT !connect_ports
http_access allow dest
http_access deny all
tcp_outgoing_address %s
cache deny all
cache_mem 8 MB
access_log none
cache_log %s/cache.log
pid_filename %s/squid.pid
coredump_dir %s
max_filedescriptors 16384
shutdown_lifetime 0 seconds
forwarded_for delete
via off
`, port, ports, topology.Reserved.Addr(), dir, dir, dir)
	confFile := filepath.Join(dir, "squid.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	// The shell raises the open-files limit for Squid (Go restores its children's).
	b.Cleanup(func() {
		if b.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "cache.log"))
			b.Logf("squid cache.log:\n%s", log)
		}
	})
	p := (&proxyproc.Process{}).Run(b, r.tp.Pod.NS, "sh", "-c", "ulimit -n 20000 && exec squid -N -f "+confFile)
	p.WaitUntil(b, 15*time.Second, "squid to listen", func() bool {
		c, err := r.dialFromClient(context.Background(), "tcp", fmt.Sprintf("%s:%d", r.tp.Pod.Addr.Addr(), port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return p
}

// smokescreenModule is the module that pins Smokescreen's version (tool directive), a
// module of its own so that the project's go.mod does not carry Smokescreen's
// dependencies; relative to this package's directory, where go test runs.
const smokescreenModule = "../tools/smokescreen"

// startSmokescreen builds Smokescreen at the version smokescreenModule pins into a
// temporary directory and runs it in the router pod on port, allowing the
// destinations' range and denying every other address, as its --allow-range and
// --deny-range are meant to be used. Smokescreen cannot bind a source address, so the
// pod gets a route to that range via the gateway on net1 with the reserved address as
// its preferred source, which is how its connections leave from the reserved address;
// the other proxies bind it and so use the plugin's source rule as before. Its log,
// a JSON line per request that no flag turns off, goes to a file.
func startSmokescreen(b *testing.B, r *httpRouter, port int) *proxyproc.Process {
	b.Helper()
	module, err := filepath.Abs(smokescreenModule)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "smokescreen")
	build := exec.Command("go", "build", "-C", module, "-o", bin, "github.com/stripe/smokescreen")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build Smokescreen: %v\n%s", err, out)
	}
	r.tp.Exec(b, r.tp.Pod.NS, "ip", "route", "add", topology.DestNet.String(), "via", topology.Gateway.Addr().String(),
		"dev", "net1", "src", topology.Reserved.Addr().String()).Run(b)
	log := filepath.Join(dir, "smokescreen.log")
	b.Cleanup(func() {
		if b.Failed() {
			out, _ := exec.Command("tail", "-c", "4000", log).Output()
			b.Logf("smokescreen log (end):\n%s", out)
		}
	})
	return (&proxyproc.Process{}).Run(b, r.tp.Pod.NS, "sh", "-c", fmt.Sprintf("exec %s --listen-port %d --allow-range %s --deny-range 0.0.0.0/0 --deny-range ::/0 >%s 2>&1",
		bin, port, topology.DestNet, log))
}
