package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/test/topology"
	"github.com/egress-router/egress-router/test/wait"
)

// podIPs are the router containers' cluster addresses (the topology's pods use .20 up),
// one per mode: a runtime does not announce a recycled address, and the client's stale
// neighbour entry would delay the next mode by seconds.
var podIPs = map[config.Mode]string{config.Redirect: "10.128.0.50", config.HTTPProxy: "10.128.0.51", config.DNSProxy: "10.128.0.52"}

// TestPodmanRunsTheManifests deploys each mode's manifests as faithfully as podman can:
// the NetworkAttachmentDefinition's config as a CNI network (interface net1) next to a
// cluster network (eth0), the Deployment's container with its args, mounted
// configuration, sysctls and security settings, from the images scripts/images.sh
// builds. A client on the cluster reaches the destinations through the router and the
// destination sees the reserved IP; removing the container runs DEL and leaves nothing.
func TestPodmanRunsTheManifests(t *testing.T) {
	if testing.Short() {
		t.Skip("an end-to-end run through podman, not a unit test")
	}
	topology.RequireRoot(t)
	tp := topology.New(t)
	for _, s := range []struct {
		network string
		port    int
	}{{"tcp", 80}, {"tcp", 443}, {"udp", 53}} {
		topology.ServeSource(t, tp.Dest, s.network, s.port)
	}
	serveHTTPSource(t, tp.Dest, 8081)

	binDir := imageBinaries(t)
	// The plugin folders podman searches: the router plugin, and the reference plugins
	// that play the cluster network.
	pluginDir := t.TempDir()
	if err := os.Link(filepath.Join(binDir, "egress-router"), filepath.Join(pluginDir, "egress-router")); err != nil {
		t.Fatal(err)
	}
	pm := newPodman(t, tp.Node, pluginDir, "/usr/lib/cni")
	repo := fmt.Sprintf("egress-router-e2e-%d", os.Getpid())
	pm.buildImages(binDir, repo)
	t.Run("node-installer", func(t *testing.T) { runInstaller(t, pm, repo, filepath.Join(binDir, "egress-router")) })
	// One mode after another: they share the reserved IP, so each run also proves the
	// previous container's removal released it.
	for _, mode := range []config.Mode{config.Redirect, config.HTTPProxy, config.DNSProxy} {
		t.Run(string(mode), func(t *testing.T) {
			r := startRouter(t, pm, tp, mode, repo)
			checks[mode](t, tp, podIPs[mode])
			r.remove(t)
		})
	}
}

// checks is what a client on the cluster must see of each mode's manifests
// (config.json in deploy/kubernetes/<mode>).
var checks = map[config.Mode]func(t *testing.T, tp *topology.Topology, podIP string){
	config.Redirect: func(t *testing.T, tp *topology.Topology, podIP string) {
		requireSource(t, tp, "tcp", podIP+":80")   // 80 tcp 203.0.113.25
		requireSource(t, tp, "tcp", podIP+":8080") // 8080 tcp 203.0.113.26 80
		requireSource(t, tp, "udp", podIP+":53")   // 53 udp 203.0.113.53
	},
	config.HTTPProxy: func(t *testing.T, tp *topology.Topology, podIP string) {
		proxy := podIP + ":8080"
		if got := viaHTTPProxy(t, tp.Client, proxy, "GET http://203.0.113.25:8081/ HTTP/1.1\r\nHost: 203.0.113.25:8081\r\nConnection: close\r\n\r\n", 200); got != topology.Reserved.Addr().String() {
			t.Errorf("GET through the proxy: the destination saw %q, want the reserved IP", got)
		}
		if got := viaHTTPProxy(t, tp.Client, proxy, "CONNECT 203.0.113.25:443 HTTP/1.1\r\nHost: 203.0.113.25:443\r\n\r\n", 200); got != topology.Reserved.Addr().String() {
			t.Errorf("CONNECT through the proxy: the destination saw %q, want the reserved IP", got)
		}
		viaHTTPProxy(t, tp.Client, proxy, "CONNECT 203.0.113.66:443 HTTP/1.1\r\nHost: 203.0.113.66:443\r\n\r\n", 403) // !203.0.113.66
	},
	config.DNSProxy: func(t *testing.T, tp *topology.Topology, podIP string) {
		requireSource(t, tp, "tcp", podIP+":80")   // 80 203.0.113.25
		requireSource(t, tp, "tcp", podIP+":8443") // 8443 203.0.113.26 443
	},
}

// runInstaller runs the node installer image with the DaemonSet's args and its CNI bin
// directory mount (a temporary directory as the node's), requires the plugin installed
// byte for byte, the container idle, and a clean exit on SIGTERM.
func runInstaller(t *testing.T, pm *podman, repo, plugin string) {
	b := render(t, filepath.Join(manifestsDir, "node-installer"))
	spec := b.daemonSets[0].Spec.Template.Spec
	c := spec.Containers[0]
	nodeBinDir := t.TempDir()
	name := fmt.Sprintf("egress-router-node-installer-%d", os.Getpid())
	args := []string{"run", "--detach", "--pull=never", "--name", name, "--network=none"}
	args = append(args, securityArgs(spec, c)...)
	args = append(args, "--volume", nodeBinDir+":"+c.VolumeMounts[0].MountPath)
	args = append(append(args, "localhost/"+repo+"/egress-router-node-installer:e2e"), c.Args...)
	t.Cleanup(func() { pm.command("rm", "--force", "--time=0", name).Run() })
	id := pm.run(args...)

	want, err := os.ReadFile(plugin)
	if err != nil {
		t.Fatal(err)
	}
	installed := filepath.Join(nodeBinDir, "egress-router")
	if !wait.Until(10*time.Second, func() bool { got, err := os.ReadFile(installed); return err == nil && bytes.Equal(got, want) }) {
		logs, _ := pm.command("logs", id).CombinedOutput()
		t.Fatalf("the plugin was not installed within 10s; container logs:\n%s", logs)
	}
	if state := pm.run("inspect", "--format", "{{.State.Status}}", id); state != "running" {
		t.Errorf("after installing, the container is %s, want running (idle)", state)
	}
	pm.run("stop", "--time=5", id) // SIGTERM, then SIGKILL after 5s
	if code := pm.run("inspect", "--format", "{{.State.ExitCode}}", id); code != "0" {
		t.Errorf("exit code after SIGTERM %s, want 0", code)
	}
	pm.run("rm", id)
}
