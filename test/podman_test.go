package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"

	"github.com/egress-router/egress-router/pkg/config"
	"github.com/egress-router/egress-router/test/topology"
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
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if got, err := os.ReadFile(installed); err == nil && bytes.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			logs, _ := pm.command("logs", id).CombinedOutput()
			t.Fatalf("the plugin was not installed within 10s; container logs:\n%s", logs)
		}
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

// router is a running router container.
type router struct {
	pm      *podman
	name    string
	id      string
	network string   // the egress-router network's name
	netns   string   // the container's network namespace, as podman made it
	links   []string // the node namespace's links before the container started
}

// startRouter renders deploy/kubernetes/<mode> and runs its router Deployment's
// container in podman, and waits until the router serves.
func startRouter(t *testing.T, pm *podman, tp *topology.Topology, mode config.Mode, repo string) *router {
	t.Helper()
	b := render(t, filepath.Join(manifestsDir, string(mode)))
	nad, spec := b.networks[0], b.deployments[0].Spec.Template.Spec
	pm.addNetwork(nad.Name, conflist(t, nad.Spec.Config))
	// The cluster network, played by the reference bridge plugin on the topology's
	// bridge; static IPAM keeps no state behind.
	cluster := "cluster-" + string(mode)
	pm.addNetwork(cluster, []byte(fmt.Sprintf(`{"cniVersion": "1.0.0", "name": %q, "plugins": [{
		"type": "bridge", "bridge": "cluster", "isGateway": false, "ipMasq": false,
		"ipam": {"type": "static", "addresses": [{"address": "%s/24", "gateway": "%s"}], "routes": [{"dst": "0.0.0.0/0"}]}}]}`,
		cluster, podIPs[mode], topology.ClusterGateway.Addr())))
	r := &router{pm: pm, name: fmt.Sprintf("%s-%d", nad.Name, os.Getpid()), network: nad.Name, links: linkNames(t, tp.Node)}

	c := spec.Containers[0]
	args := []string{"run", "--detach", "--pull=never", "--name", r.name,
		"--network", cluster + ":interface_name=eth0", "--network", nad.Name + ":interface_name=net1"}
	args = append(args, securityArgs(spec, c)...)
	for _, m := range c.VolumeMounts {
		args = append(args, "--volume", configDir(t, b, spec, m)+":"+m.MountPath+":ro")
	}
	image := strings.SplitN(path.Base(c.Image), ":", 2)[0] // registry.k8s.io/pause:3.10 -> pause
	args = append(append(args, "localhost/"+repo+"/"+image+":e2e"), c.Args...)
	t.Cleanup(func() { pm.command("rm", "--force", "--time=0", r.name).Run() }) // after a failure; by name
	r.id = pm.run(args...)
	r.netns = pm.run("inspect", "--format", "{{.NetworkSettings.SandboxKey}}", r.id)
	if c.ReadinessProbe != nil {
		waitReady(t, tp.Client, fmt.Sprintf("%s:%d", podIPs[mode], containerPortNumber(t, c, c.ReadinessProbe.HTTPGet.Port.String())), c.ReadinessProbe.HTTPGet.Path, r)
	}
	return r
}

// remove removes the container as a runtime would when its pod is deleted, and checks
// the plugin's DEL left nothing: the container's namespace is gone, the node has the
// links it had before, the runtime's CNI cache holds nothing of the container.
func (r *router) remove(t *testing.T) {
	t.Helper()
	// libcni caches each ADD's result and drops it only once DEL succeeds.
	cache := filepath.Join(podmanCNICache, r.network+"-"+r.id+"-net1")
	if _, err := os.Stat(cache); err != nil {
		t.Errorf("no cached ADD result for the egress network before removal: %v", err)
	}
	r.pm.run("rm", "--force", "--time=2", r.id)
	if _, err := os.Stat(cache); err == nil {
		t.Errorf("%s is still cached after removal: DEL did not succeed", cache)
	}
	if _, err := os.Stat(r.netns); err == nil {
		t.Errorf("the container's network namespace %s is still there", r.netns)
	}
	if got := linkNames(t, r.pm.node); !slices.Equal(got, r.links) {
		t.Errorf("node links after removal %v, want %v as before", got, r.links)
	}
}

// podmanCNICache is where podman 4's CNI backend has libcni cache results; it offers
// no setting to move it.
const podmanCNICache = "/var/lib/cni/results"

// conflist wraps a NetworkAttachmentDefinition's config, as Multus would hand it to the
// plugin, into the list podman reads.
func conflist(t *testing.T, nadConfig string) []byte {
	t.Helper()
	var plugin map[string]any
	if err := json.Unmarshal([]byte(nadConfig), &plugin); err != nil {
		t.Fatal(err)
	}
	list, err := json.Marshal(map[string]any{"cniVersion": plugin["cniVersion"], "name": plugin["name"], "plugins": []any{plugin}})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// securityArgs translates what the manifests ask of the pod's security into podman's
// flags, so the images are tried as a cluster would run them.
func securityArgs(spec corev1.PodSpec, c corev1.Container) []string {
	var args []string
	if sc := spec.SecurityContext; sc != nil {
		for _, s := range sc.Sysctls {
			args = append(args, "--sysctl", s.Name+"="+s.Value)
		}
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
			args = append(args, "--read-only", "--read-only-tmpfs=false")
		}
		if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			args = append(args, "--security-opt=no-new-privileges")
		}
		if sc.Capabilities != nil && slices.Contains(sc.Capabilities.Drop, "ALL") {
			args = append(args, "--cap-drop=all")
		}
	}
	return args
}

// configDir writes the ConfigMap behind mount m to a directory, as the kubelet would.
func configDir(t *testing.T, b *bundle, spec corev1.PodSpec, m corev1.VolumeMount) string {
	t.Helper()
	i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
	if i < 0 || spec.Volumes[i].ConfigMap == nil {
		t.Fatalf("mount %s is not a ConfigMap volume", m.Name)
	}
	dir := t.TempDir()
	for key, value := range configMap(t, b, spec.Volumes[i].ConfigMap.Name).Data {
		if err := os.WriteFile(filepath.Join(dir, key), []byte(value), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The proxies run as a non-root user: the mounted directory must be searchable.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func containerPortNumber(t *testing.T, c corev1.Container, nameOrNumber string) int32 {
	t.Helper()
	p, ok := containerPort(c, nameOrNumber)
	if !ok {
		t.Fatalf("container %s has no port %s", c.Name, nameOrNumber)
	}
	return p.ContainerPort
}

// waitReady polls the readiness endpoint from namespace n, as the kubelet's probe
// would, for up to 20 seconds.
func waitReady(t *testing.T, n ns.NetNS, addr, urlPath string, r *router) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := httpExchange(n, addr, "GET "+urlPath+" HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n")
		if err == nil && resp.status == http.StatusOK {
			return
		}
		last = fmt.Sprint(resp.status, " ", err)
	}
	logs, _ := r.pm.command("logs", r.id).CombinedOutput()
	t.Fatalf("%s%s not ready within 20s (last: %s); container logs:\n%s", addr, urlPath, last, logs)
}

// requireSource asks the destination server, through the router at addr, which source
// it sees, and requires the reserved IP.
func requireSource(t *testing.T, tp *topology.Topology, network, addr string) {
	t.Helper()
	got, err := topology.AskSource(tp.Client, network, addr)
	if err != nil {
		t.Errorf("%s %s through the router: %v", network, addr, err)
		return
	}
	if want := topology.Reserved.Addr().String(); got != want {
		t.Errorf("%s %s through the router: the destination saw %s, want %s", network, addr, got, want)
	}
}

// viaHTTPProxy sends one request to the proxy from namespace n, requires the status,
// and returns what follows the response head (a body, or a tunnel's data) trimmed.
func viaHTTPProxy(t *testing.T, n ns.NetNS, proxy, request string, status int) string {
	t.Helper()
	resp, err := httpExchange(n, proxy, request)
	if err != nil {
		t.Fatalf("%q through %s: %v", request, proxy, err)
	}
	if resp.status != status {
		t.Errorf("%q through %s: status %d, want %d", request, proxy, resp.status, status)
	}
	return strings.TrimSpace(resp.rest)
}

type httpResult struct {
	status int
	rest   string
}

// httpExchange writes a raw request on a connection opened from namespace n and reads
// the response status and everything after the head until the peer closes. Raw,
// because an http.Client dials from goroutines outside the namespace.
func httpExchange(n ns.NetNS, addr, request string) (httpResult, error) {
	var conn net.Conn
	if err := n.Do(func(ns.NetNS) (err error) {
		conn, err = net.DialTimeout("tcp", addr, 3*time.Second)
		return err
	}); err != nil {
		return httpResult{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		return httpResult{}, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return httpResult{}, fmt.Errorf("read response: %w", err)
	}
	var rest []byte
	if strings.HasPrefix(request, "CONNECT") && resp.StatusCode == http.StatusOK {
		rest, err = io.ReadAll(br) // the tunnel: bytes from the destination
	} else {
		rest, err = io.ReadAll(resp.Body)
	}
	return httpResult{resp.StatusCode, string(rest)}, err
}

// serveHTTPSource serves HTTP on port in namespace n, answering each request with the
// source address it came from.
func serveHTTPSource(t *testing.T, n ns.NetNS, port int) {
	t.Helper()
	var ln net.Listener
	if err := n.Do(func(ns.NetNS) (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintln(w, host)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// linkNames lists the links of namespace n, sorted.
func linkNames(t *testing.T, n ns.NetNS) []string {
	t.Helper()
	var names []string
	if err := n.Do(func(ns.NetNS) error {
		links, err := netlink.LinkList()
		for _, l := range links {
			names = append(names, l.Attrs().Name)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}
