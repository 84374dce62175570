package deploy

import (
	"encoding/json"
	"fmt"
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

	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/test/topology"
	"github.com/egress-router/egress-router/test/wait"
)

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
	if wait.Until(20*time.Second, func() bool {
		resp, err := httpExchange(n, addr, "GET "+urlPath+" HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n")
		last = fmt.Sprint(resp.status, " ", err)
		return err == nil && resp.status == http.StatusOK
	}) {
		return
	}
	logs, _ := r.pm.command("logs", r.id).CombinedOutput()
	t.Fatalf("%s%s not ready within 20s (last: %s); container logs:\n%s", addr, urlPath, last, logs)
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
