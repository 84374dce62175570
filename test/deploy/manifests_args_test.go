package deploy

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/test/topology"
)

// TestProxyArgsAreAcceptedByTheProxies runs each proxy with the args its Deployment
// gives it plus -check, its -config pointing at the rendered ConfigMap's content: a
// flag renamed in the code, or a configuration the proxy refuses, fails here rather
// than in a cluster's CrashLoopBackOff.
func TestProxyArgsAreAcceptedByTheProxies(t *testing.T) {
	for _, mode := range []config.Mode{config.HTTPProxy, config.DNSProxy} {
		t.Run(string(mode), func(t *testing.T) {
			b := render(t, filepath.Join(manifestsDir, string(mode)))
			if len(b.deployments) != 1 {
				t.Fatalf("want one Deployment, got %d", len(b.deployments))
			}
			spec := b.deployments[0].Spec.Template.Spec
			pkg := module + "/proxies/egress-" + string(mode)
			bin := filepath.Join(topology.Build(t, pkg), filepath.Base(pkg))
			for _, c := range spec.Containers {
				mounted := flagValue(t, c.Args, "config")
				_, vol := mountOf(t, spec, path.Dir(mounted))
				file := filepath.Join(t.TempDir(), configKey)
				if err := os.WriteFile(file, []byte(configMap(t, b, vol.ConfigMap.Name).Data[configKey]), 0o644); err != nil {
					t.Fatal(err)
				}
				args := []string{"-check"}
				for _, a := range c.Args {
					args = append(args, strings.Replace(a, "-config="+mounted, "-config="+file, 1))
				}
				if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
					t.Errorf("container %s: %s %s: %v\n%s", c.Name, filepath.Base(bin), strings.Join(args, " "), err, out)
				}
			}
		})
	}
}
