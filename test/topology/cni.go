package topology

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
)

// CNI drives plugins through libcni the way a container runtime on the topology's
// node would: from the node namespace (where the master link is), with the plugin
// binaries of Dirs, and a result cache of its own (never the shared /var/lib/cni).
type CNI struct {
	node   ns.NetNS
	Dirs   []string
	config *libcni.CNIConfig
}

// CNI returns a libcni runtime for plugins in dirs, its cache in a temporary directory.
func (tp *Topology) CNI(t testing.TB, dirs ...string) *CNI {
	return &CNI{node: tp.Node, Dirs: dirs, config: libcni.NewCNIConfigWithCacheDir(dirs, t.TempDir(), nil)}
}

// On is the same runtime on another node (AddNode), sharing the result cache.
func (c *CNI) On(node ns.NetNS) *CNI {
	on := *c
	on.node = node
	return &on
}

// Attachment is one network on one pod: the network configuration (a single plugin's
// or a list) and the runtime's side of the call.
type Attachment struct {
	list *libcni.NetworkConfigList
	rt   *libcni.RuntimeConf
}

// Attach describes attaching the network conf to pod as ifName; nothing runs yet.
func (c *CNI) Attach(t testing.TB, pod *Pod, conf []byte, ifName string) *Attachment {
	t.Helper()
	list, err := libcni.ConfListFromBytes(conf)
	if err != nil || len(list.Plugins) == 0 {
		// A single plugin's configuration: libcni deprecates the form, but it is what a
		// NetworkAttachmentDefinition holds (the CNO renders it), and Multus and cnitool
		// wrap it in a list just like this.
		single, err := libcni.ConfFromBytes(conf) //lint:ignore SA1019 the NAD form, see above
		if err != nil {
			t.Fatalf("network configuration: %v", err)
		}
		//lint:ignore SA1019 the NAD form, see above
		if list, err = libcni.ConfListFromConf(single); err != nil {
			t.Fatalf("network configuration: %v", err)
		}
	}
	return &Attachment{list: list, rt: &libcni.RuntimeConf{
		ContainerID: "ctr-" + filepath.Base(pod.NS.Path()), NetNS: pod.NS.Path(), IfName: ifName,
	}}
}

// Add runs ADD in the node namespace and returns the result.
func (c *CNI) Add(a *Attachment) (types.Result, error) {
	var r types.Result
	err := c.node.Do(func(ns.NetNS) (err error) {
		r, err = c.config.AddNetworkList(context.Background(), a.list, a.rt)
		return err
	})
	return r, err
}

// Check runs CHECK with the cached result of ADD as prevResult.
func (c *CNI) Check(a *Attachment) error {
	return c.node.Do(func(ns.NetNS) error { return c.config.CheckNetworkList(context.Background(), a.list, a.rt) })
}

// Del runs DEL with the cached result of ADD, if any.
func (c *CNI) Del(a *Attachment) error {
	return c.node.Do(func(ns.NetNS) error { return c.config.DelNetworkList(context.Background(), a.list, a.rt) })
}

// Status runs STATUS for the attachment's network.
func (c *CNI) Status(a *Attachment) error {
	return c.node.Do(func(ns.NetNS) error { return c.config.GetStatusNetworkList(context.Background(), a.list) })
}

// Build builds the main packages pkgs (import paths) as the Makefile does, once per
// test process, and returns the directory holding the binaries (each named after its
// package's last element): ready to be a CNI plugin dir. RemoveBuilds deletes them.
func Build(t testing.TB, pkgs ...string) string {
	t.Helper()
	return build(t, "", pkgs)
}

// BuildAt is Build from the repository's tree at revision rev (a commit, a branch)
// rather than the working tree's: what a benchmark runs beside today's build to
// measure a change side by side (ratio.Baseline).
func BuildAt(t testing.TB, rev string, pkgs ...string) string {
	t.Helper()
	return build(t, rev, pkgs)
}

// build builds pkgs from the working tree (rev "") or from rev's tree, unpacked with
// git archive beside the binaries: the same module, at another commit.
func build(t testing.TB, rev string, pkgs []string) string {
	t.Helper()
	key := rev + ":" + strings.Join(pkgs, " ")
	once, _ := builds.LoadOrStore(key, sync.OnceValues(func() (string, error) {
		root, err := buildRoot()
		if err != nil {
			return "", err
		}
		dir, err := os.MkdirTemp(root, "")
		if err != nil {
			return "", err
		}
		src := ""
		if rev != "" {
			if src, err = checkout(root, rev); err != nil {
				return "", err
			}
		}
		// An output ending in a separator is a directory: each binary goes in it.
		cmd := exec.Command("go", append([]string{"build", "-tags", "netgo", "-o", dir + string(filepath.Separator)}, pkgs...)...)
		cmd.Dir, cmd.Env = src, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%v\n%s", err, out)
		}
		return dir, nil
	}))
	dir, err := once.(func() (string, error))()
	if err != nil {
		t.Fatalf("build %s: %v", key, err)
	}
	return dir
}

// checkout unpacks the repository's tree at rev into a new directory under root.
func checkout(root, rev string) (string, error) {
	dir, err := os.MkdirTemp(root, "src-")
	if err != nil {
		return "", err
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", fmt.Errorf("the repository's top directory: %v", err)
	}
	// From a package's directory (where tests run), git archive would take only its
	// subtree.
	archive := exec.Command("git", "archive", "--format=tar", rev)
	archive.Dir = strings.TrimSpace(string(top))
	unpack := exec.Command("tar", "-x", "-C", dir)
	var errs strings.Builder
	archive.Stderr, unpack.Stderr = &errs, &errs
	if unpack.Stdin, err = archive.StdoutPipe(); err != nil {
		return "", err
	}
	if err := unpack.Start(); err != nil {
		return "", err
	}
	if err := archive.Run(); err != nil {
		unpack.Wait()
		return "", fmt.Errorf("git archive %s: %v\n%s", rev, err, errs.String())
	}
	if err := unpack.Wait(); err != nil {
		return "", fmt.Errorf("unpack git archive %s: %v\n%s", rev, err, errs.String())
	}
	return dir, nil
}

var (
	builds    sync.Map // revision and import paths -> func() (dir string, err error)
	buildRoot = sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "egress-router-test-build") })
)

// RemoveBuilds deletes what Build built; a TestMain calls it after m.Run.
func RemoveBuilds() {
	if root, err := buildRoot(); err == nil {
		os.RemoveAll(root)
	}
}

// Cnitool is the import path of cnitool, at the version go.mod's tool directive pins.
const Cnitool = "github.com/containernetworking/cni/cnitool"

// RouterPlugin is the egress-router plugin's import path.
const RouterPlugin = "github.com/egress-router/egress-router/plugins/egress-router"

// String names the attachment in test messages.
func (a *Attachment) String() string {
	return fmt.Sprintf("%s %s in %s", a.list.Name, a.rt.IfName, a.rt.NetNS)
}
