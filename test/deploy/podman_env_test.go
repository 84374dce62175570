package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/egress-router/egress-router/test/topology"
)

// podman is a podman 4 (CNI backend) private to one test: its containers.conf, image
// store, state, locks and CNI network configurations live in a temporary directory,
// named through CONTAINERS_CONF and CONTAINERS_STORAGE_CONF. Only what these tools
// cannot move stays global: libcni's result cache (/var/lib/cni/results, emptied by
// DEL) and buildah's blob-info cache (/var/lib/containers/cache). It runs in the
// topology's node namespace, where the plugins it calls find the node's links (the
// macvlan master, the cluster bridge).
type podman struct {
	t       *testing.T
	node    ns.NetNS
	confDir string   // CNI network_config_dir
	env     []string // the environment of podman and buildah
}

// newPodman writes the private configuration. pluginDirs are CNI plugin folders.
func newPodman(t *testing.T, node ns.NetNS, pluginDirs ...string) *podman {
	t.Helper()
	for _, tool := range []string{"podman", "buildah", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run scripts/install-deps.sh images (make test does)", tool)
		}
	}
	dir := t.TempDir()
	p := &podman{t: t, node: node, confDir: filepath.Join(dir, "cni-conf")}
	for _, d := range []string{p.confDir, filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	quoted := make([]string, len(pluginDirs))
	for i, d := range pluginDirs {
		quoted[i] = fmt.Sprintf("%q", d)
	}
	// The settings machine.md found necessary: runc (crun fails on this cgroup
	// layout), ulimits under root's hard limits, the CNI backend. Locks in files and
	// cgroupfs, so neither a shared memory segment nor systemd is involved.
	containersConf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = %[1]q
lock_type = "file"
tmp_dir = %[2]q

[network]
network_backend = "cni"
cni_plugin_dirs = [%[3]s]
network_config_dir = %[4]q
`, filepath.Join(dir, "events.log"), filepath.Join(dir, "tmp"), strings.Join(quoted, ", "), p.confDir)
	storageConf := fmt.Sprintf(`[storage]
driver = "vfs"
graphroot = %q
runroot = %q
`, filepath.Join(dir, "storage"), filepath.Join(dir, "run"))
	for name, content := range map[string]string{"containers.conf": containersConf, "storage.conf": storageConf} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p.env = append(os.Environ(),
		"CONTAINERS_CONF="+filepath.Join(dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF="+filepath.Join(dir, "storage.conf"))
	return p
}

// command prepares podman args... in the node namespace. nsenter rather than `ip netns
// exec`, which remounts /sys and hides the cgroups podman needs.
func (p *podman) command(args ...string) *exec.Cmd {
	cmd := exec.Command("nsenter", append([]string{"--net=" + p.node.Path(), "--", "podman"}, args...)...)
	cmd.Env = p.env
	return cmd
}

// run runs podman args... and returns its trimmed standard output; failure is fatal.
func (p *podman) run(args ...string) string {
	p.t.Helper()
	cmd := p.command(args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		p.t.Fatalf("podman %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// addNetwork writes a CNI network configuration list podman offers as network name.
func (p *podman) addNetwork(name string, conflist []byte) {
	p.t.Helper()
	if err := os.WriteFile(filepath.Join(p.confDir, name+".conflist"), conflist, 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// module is the import path every package of the project starts with.
const module = "github.com/egress-router/egress-router"

// imageBinaries builds, as the Makefile does, the binaries scripts/images.sh puts into
// images, and the pause program, into one directory under their Makefile names.
func imageBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, pkg := range map[string]string{
		"egress-router":            topology.RouterPlugin,
		"egress-router-installer":  module + "/deploy/installer",
		"egress-http-proxy":        module + "/proxies/egress-http-proxy",
		"egress-dns-proxy":         module + "/proxies/egress-dns-proxy",
		"egress-router-controller": module + "/controllers/egress-router-controller",
		"egress-router-agent":      module + "/agents/egress-router-agent",
		"pause":                    module + "/test/pause",
	} {
		built := filepath.Join(topology.Build(t, pkg), path.Base(pkg))
		if err := os.Link(built, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// buildImages builds the project's images with scripts/images.sh from the binaries in
// binDir (imageBinaries), and the pause image, into the private store. Images are
// named localhost/<repo>/<name>:e2e and removed, by name, when the test ends.
func (p *podman) buildImages(binDir, repo string) {
	p.t.Helper()
	script := exec.Command("../../scripts/images.sh")
	script.Env = append(p.env, "BIN_DIR="+binDir, "IMAGE_REPO=localhost/"+repo, "IMAGE_TAG=e2e")
	if out, err := script.CombinedOutput(); err != nil {
		p.t.Fatalf("scripts/images.sh: %v\n%s", err, out)
	}
	context := p.t.TempDir()
	if err := os.Link(filepath.Join(binDir, "pause"), filepath.Join(context, "pause")); err != nil {
		p.t.Fatal(err)
	}
	containerfile := "FROM scratch\nCOPY pause /pause\nUSER 65534:65534\nENTRYPOINT [\"/pause\"]\n"
	if err := os.WriteFile(filepath.Join(context, "Containerfile"), []byte(containerfile), 0o600); err != nil {
		p.t.Fatal(err)
	}
	build := exec.Command("buildah", "build", "--pull=never", "--quiet", "-t", "localhost/"+repo+"/pause:e2e", context)
	build.Env = p.env
	if out, err := build.CombinedOutput(); err != nil {
		p.t.Fatalf("buildah build pause: %v\n%s", err, out)
	}
	p.t.Cleanup(func() {
		for _, n := range []string{"pause", "egress-router-node-installer", "egress-http-proxy", "egress-dns-proxy", "egress-router-controller"} {
			if out, err := p.command("rmi", "--force", "localhost/"+repo+"/"+n+":e2e").CombinedOutput(); err != nil {
				p.t.Logf("podman rmi %s: %v\n%s", n, err, out)
			}
		}
	})
}
