package dnsproxy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/egress-router/egress-router/test/proxyproc"
	"github.com/egress-router/egress-router/test/topology"
)

// The TCP proxies the DNS proxy is measured against, configured as their users would
// configure them for the same job: each listens on the benchmark's ports (shifted by
// its setup, listenPort) in the router pod and relays to its destination address from
// the reserved source.

// startHAProxy runs Debian's HAProxy in TCP mode as the given setup.
func startHAProxy(b *testing.B, tp *topology.Topology, setup int) *proxyproc.Process {
	var conf strings.Builder
	conf.WriteString("global\n  maxconn 9000\n\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1h\n  timeout server 1h\n")
	for _, p := range []int{iperfPort, acceptPort, echoPort} {
		fmt.Fprintf(&conf, "\nlisten line%d\n  bind :%d\n  server s %s:%d source %s\n", p, listenPort(setup, p), destination(setup), p, topology.Reserved.Addr())
	}
	file := writeConf(b, "haproxy.cfg", conf.String())
	return waitListening(b, tp, setup, (&proxyproc.Process{}).Run(b, tp.Pod.NS, "haproxy", "-db", "-f", file))
}

// startNginx runs Debian's nginx with its stream module as the given setup: its own
// prefix, pid file and logs in a temporary directory (not the system's service),
// workers as many as cores, in the foreground so the test owns it.
func startNginx(b *testing.B, tp *topology.Topology, setup int) *proxyproc.Process {
	dir := b.TempDir()
	var conf strings.Builder
	fmt.Fprintf(&conf, `load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes auto;
worker_rlimit_nofile 20000;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events {
  worker_connections 10000;
}
stream {
`, dir)
	for _, p := range []int{iperfPort, acceptPort, echoPort} {
		fmt.Fprintf(&conf, "  server {\n    listen %d;\n    proxy_pass %s:%d;\n    proxy_bind %s;\n  }\n", listenPort(setup, p), destination(setup), p, topology.Reserved.Addr())
	}
	conf.WriteString("}\n")
	file := writeConf(b, "nginx.conf", conf.String())
	b.Cleanup(func() {
		if b.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			b.Logf("nginx error.log:\n%s", log)
		}
	})
	// SIGTERM: the master stops its workers, which a SIGKILL of the master would orphan.
	p := &proxyproc.Process{StopSignal: syscall.SIGTERM}
	return waitListening(b, tp, setup, p.Run(b, tp.Pod.NS, "nginx", "-p", dir, "-c", file, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;"))
}

func writeConf(b *testing.B, name, conf string) string {
	file := filepath.Join(b.TempDir(), name)
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	return file
}

// waitListening waits until setup's greeting port relays to its destination.
func waitListening(b *testing.B, tp *topology.Topology, setup int, p *proxyproc.Process) *proxyproc.Process {
	p.WaitUntil(b, 10*time.Second, "the peer to relay", func() bool {
		_, err := topology.AskSource(tp.Client, "tcp", fmt.Sprintf("%s:%d", tp.Pod.Addr.Addr(), listenPort(setup, acceptPort)))
		return err == nil
	})
	return p
}
