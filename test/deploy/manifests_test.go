package deploy

import (
	"encoding/json"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/nodepolicy"
)

// manifestsDir holds one kustomization per directory.
const manifestsDir = "../../deploy/kubernetes"

// routerNamespace is where every kustomization puts its objects.
const routerNamespace = "egress-router"

// multusNetworks is the pod annotation asking Multus for extra attachments.
const multusNetworks = "k8s.v1.cni.cncf.io/networks"

// configKey is the ConfigMap key, and so the mounted file name, of the configuration.
const configKey = "config.json"

// kustomizations is every kustomization under manifestsDir, with the mode of the egress
// router it deploys ("" for the node installer).
var kustomizations = map[string]config.Mode{
	"node-installer":           "",
	"node-installer-openshift": "",
	"controller":               "",
	"redirect":                 config.Redirect,
	"http-proxy":               config.HTTPProxy,
	"dns-proxy":                config.DNSProxy,
}

// TestEveryKustomizationIsChecked keeps a new kustomization from escaping the checks.
func TestEveryKustomizationIsChecked(t *testing.T) {
	err := filepath.WalkDir(manifestsDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "kustomization.yaml" {
			return err
		}
		dir, _ := filepath.Rel(manifestsDir, filepath.Dir(p))
		if _, ok := kustomizations[filepath.ToSlash(dir)]; !ok {
			t.Errorf("%s is not in kustomizations, so no test checks it", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRouterManifests(t *testing.T) {
	for dir, mode := range kustomizations {
		if mode == "" {
			continue
		}
		t.Run(dir, func(t *testing.T) {
			b := render(t, filepath.Join(manifestsDir, dir))
			checkObjects(t, b)
			if len(b.networks) != 1 || len(b.deployments) != 1 || len(b.services) != 1 {
				t.Fatalf("want one network, one Deployment and one Service; got %d, %d, %d",
					len(b.networks), len(b.deployments), len(b.services))
			}
			nad, d, svc := b.networks[0], b.deployments[0], b.services[0]
			cfg := checkNetwork(t, nad, mode)
			checkRouterDeployment(t, b, d, nad)
			checkService(t, svc, d.Spec.Template)
			checkListeningPorts(t, d.Spec.Template.Spec, svc, cfg)
		})
	}
}

func TestNodeInstallerManifests(t *testing.T) {
	for dir, hostDir := range map[string]string{
		"node-installer":           "/opt/cni/bin",
		"node-installer-openshift": "/var/lib/cni/bin",
	} {
		t.Run(dir, func(t *testing.T) {
			b := render(t, filepath.Join(manifestsDir, dir))
			checkObjects(t, b)
			if len(b.daemonSets) != 1 {
				t.Fatalf("want one DaemonSet, got %d", len(b.daemonSets))
			}
			ds := b.daemonSets[0]
			checkSelector(t, ds.Spec.Selector, ds.Spec.Template)
			checkPodSpec(t, ds.Spec.Template.Spec)
			spec := ds.Spec.Template.Spec
			if !slices.ContainsFunc(spec.Tolerations, func(tol corev1.Toleration) bool {
				return tol.Key == "" && tol.Operator == corev1.TolerationOpExists && tol.Effect == ""
			}) {
				t.Error("the DaemonSet does not tolerate every taint, so some nodes would lack the plugin")
			}
			if sa := spec.ServiceAccountName; !slices.ContainsFunc(b.serviceAccounts, func(s corev1.ServiceAccount) bool { return s.Name == sa }) {
				t.Errorf("serviceAccountName %q is not among the manifests", sa)
			}
			binDir := flagValue(t, spec.Containers[0].Args, "cni-bin-dir")
			mount, vol := mountOf(t, spec, binDir)
			if vol.HostPath == nil || vol.HostPath.Path != hostDir {
				t.Errorf("-cni-bin-dir %s is volume %s, want the node's %s", binDir, mount.Name, hostDir)
			}
			if mount.ReadOnly {
				t.Errorf("-cni-bin-dir %s is mounted read-only", binDir)
			}
			checkNodePolicyDelivery(t, spec)
		})
	}
}

// checkNodePolicyDelivery: the installer reads the policy from the optional ConfigMap
// the example names and writes it to the directory every plugin reads it from.
func checkNodePolicyDelivery(t *testing.T, spec corev1.PodSpec) {
	t.Helper()
	args := spec.Containers[0].Args
	policyDir := flagValue(t, args, "node-policy-dir")
	if mount, vol := mountOf(t, spec, policyDir); vol.HostPath == nil || vol.HostPath.Path != nodepolicy.Dir || mount.ReadOnly {
		t.Errorf("-node-policy-dir %s is volume %s, want the node's %s, writable", policyDir, mount.Name, nodepolicy.Dir)
	}
	source := flagValue(t, args, "node-policy")
	if path.Base(source) != nodepolicy.FileName {
		t.Errorf("-node-policy %s: want the ConfigMap key %s", source, nodepolicy.FileName)
	}
	example := nodePolicyExample(t)
	_, vol := mountOf(t, spec, path.Dir(source))
	if cm := vol.ConfigMap; cm == nil || cm.Name != example.Name || cm.Optional == nil || !*cm.Optional {
		t.Errorf("-node-policy %s is volume %s, want the optional ConfigMap %s", source, vol.Name, example.Name)
	}
}

// nodePolicyExample is the example ConfigMap beside the node installer's manifests; its
// policy must be valid.
func nodePolicyExample(t *testing.T) corev1.ConfigMap {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(manifestsDir, "node-installer", "node-policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(raw, &cm); err != nil {
		t.Fatalf("node-policy.yaml: %v", err)
	}
	if _, err := nodepolicy.Parse([]byte(cm.Data[nodepolicy.FileName])); err != nil {
		t.Errorf("node-policy.yaml, key %s: %v", nodepolicy.FileName, err)
	}
	return cm
}

// checkObjects checks what every object needs: a valid name, the router namespace,
// valid labels.
func checkObjects(t *testing.T, b *bundle) {
	t.Helper()
	var metas []metav1.ObjectMeta
	for _, d := range b.deployments {
		metas = append(metas, d.ObjectMeta, d.Spec.Template.ObjectMeta)
	}
	for _, d := range b.daemonSets {
		metas = append(metas, d.ObjectMeta, d.Spec.Template.ObjectMeta)
	}
	for _, s := range b.services {
		metas = append(metas, s.ObjectMeta)
		for _, msg := range validation.IsDNS1035Label(s.Name) {
			t.Errorf("Service name %q: %s", s.Name, msg)
		}
	}
	for _, c := range b.configMaps {
		metas = append(metas, c.ObjectMeta)
	}
	for _, s := range b.serviceAccounts {
		metas = append(metas, s.ObjectMeta)
	}
	for _, n := range b.networks {
		metas = append(metas, n.ObjectMeta)
	}
	for _, r := range b.roles {
		metas = append(metas, r.ObjectMeta)
	}
	for _, r := range b.roleBindings {
		metas = append(metas, r.ObjectMeta)
	}
	for _, m := range metas {
		isTemplate := m.Name == ""
		if !isTemplate {
			for _, msg := range validation.IsDNS1123Subdomain(m.Name) {
				t.Errorf("name %q: %s", m.Name, msg)
			}
			if m.Namespace != routerNamespace {
				t.Errorf("%s is in namespace %q, want %q", m.Name, m.Namespace, routerNamespace)
			}
		}
		for k, v := range m.Labels {
			for _, msg := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...) {
				t.Errorf("%s label %s=%s: %s", m.Name, k, v, msg)
			}
		}
	}
	for _, n := range b.namespaces {
		if n.Name != routerNamespace {
			t.Errorf("Namespace %q, want %q", n.Name, routerNamespace)
		}
	}
}

// checkNetwork loads the network's config as the plugin will and returns it.
func checkNetwork(t *testing.T, nad networkAttachmentDefinition, mode config.Mode) *config.Config {
	t.Helper()
	cfg, err := config.Load([]byte(nad.Spec.Config))
	if err != nil {
		t.Fatalf("network %s: spec.config does not load: %v", nad.Name, err)
	}
	if cfg.Mode != mode {
		t.Errorf("network %s: mode %q, want %q", nad.Name, cfg.Mode, mode)
	}
	if cfg.Name != nad.Name {
		t.Errorf("network %s: config name %q differs from the network's name", nad.Name, cfg.Name)
	}
	if cfg.Type != "egress-router" {
		t.Errorf("network %s: type %q, want egress-router", nad.Name, cfg.Type)
	}
	return cfg
}

// checkRouterDeployment checks the router's Deployment: one pod, never two at once,
// attached to the network, mounting exactly the network's configuration.
func checkRouterDeployment(t *testing.T, b *bundle, d appsv1.Deployment, nad networkAttachmentDefinition) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Error("replicas must be 1: one pod holds the reserved IP")
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy %q, want Recreate: a rolling update would run two pods with one IP", d.Spec.Strategy.Type)
	}
	checkSelector(t, d.Spec.Selector, d.Spec.Template)
	spec := d.Spec.Template.Spec
	checkPodSpec(t, spec)
	checkAttachment(t, d.Spec.Template.Annotations[multusNetworks], nad)

	mounted := 0
	for _, v := range spec.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		cm := configMap(t, b, v.ConfigMap.Name)
		if got := cm.Data[configKey]; got != nad.Spec.Config {
			t.Errorf("ConfigMap %s %s differs from network %s spec.config:\n%s\nvs\n%s", cm.Name, configKey, nad.Name, got, nad.Spec.Config)
		}
		mounted++
	}
	if mounted == 0 {
		t.Error("the pod mounts no configuration, so a changed config.json would not recreate it")
	}
	for _, c := range spec.Containers {
		if !slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "-config=") }) {
			continue
		}
		file := flagValue(t, c.Args, "config")
		mount, vol := mountOf(t, spec, path.Dir(file))
		if vol.ConfigMap == nil || path.Base(file) != configKey {
			t.Errorf("container %s: -config=%s is not %s of a mounted ConfigMap (mount %s)", c.Name, file, configKey, mount.Name)
		}
	}
}

// checkAttachment checks the Multus annotation asks for the network as net1.
func checkAttachment(t *testing.T, annotation string, nad networkAttachmentDefinition) {
	t.Helper()
	var selections []struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
		Interface string `json:"interface"`
	}
	dec := json.NewDecoder(strings.NewReader(annotation))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&selections); err != nil {
		t.Fatalf("annotation %s %q: %v", multusNetworks, annotation, err)
	}
	if len(selections) != 1 {
		t.Fatalf("annotation %s asks for %d networks, want 1", multusNetworks, len(selections))
	}
	s := selections[0]
	if s.Name != nad.Name || (s.Namespace != "" && s.Namespace != nad.Namespace) {
		t.Errorf("annotation %s asks for %s/%s, want network %s/%s", multusNetworks, s.Namespace, s.Name, nad.Namespace, nad.Name)
	}
	if s.Interface != "net1" {
		t.Errorf("annotation %s names interface %q, want net1", multusNetworks, s.Interface)
	}
}

func configMap(t *testing.T, b *bundle, name string) corev1.ConfigMap {
	t.Helper()
	for _, cm := range b.configMaps {
		if cm.Name == name {
			return cm
		}
	}
	t.Fatalf("ConfigMap %s is mounted but not among the manifests", name)
	return corev1.ConfigMap{}
}

// checkSelector checks a workload's selector selects its own pods.
func checkSelector(t *testing.T, sel *metav1.LabelSelector, tpl corev1.PodTemplateSpec) {
	t.Helper()
	if sel == nil || len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		t.Fatal("the selector is missing or empty")
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector: %v", err)
	}
	if !s.Matches(labels.Set(tpl.Labels)) {
		t.Errorf("selector %s does not match the template's labels %v", s, tpl.Labels)
	}
}

// checkPodSpec checks the fields the API server requires and the references inside a
// pod: containers with a name and an image, port names, probes and mounts that point
// at something.
func checkPodSpec(t *testing.T, spec corev1.PodSpec) {
	t.Helper()
	if len(spec.Containers) == 0 {
		t.Fatal("the pod has no containers")
	}
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = true
	}
	for _, c := range spec.Containers {
		if c.Name == "" || c.Image == "" {
			t.Errorf("container %q: name and image are required (image %q)", c.Name, c.Image)
		}
		for _, p := range c.Ports {
			if p.ContainerPort < 1 || p.ContainerPort > 65535 {
				t.Errorf("container %s: port %d out of range", c.Name, p.ContainerPort)
			}
			for _, msg := range validation.IsValidPortName(p.Name) {
				t.Errorf("container %s: port name %q: %s", c.Name, p.Name, msg)
			}
		}
		for _, probe := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			if probe == nil || probe.HTTPGet == nil {
				continue
			}
			if _, ok := containerPort(c, probe.HTTPGet.Port.String()); !ok {
				t.Errorf("container %s: probe %s on port %s, which the container does not declare", c.Name, probe.HTTPGet.Path, probe.HTTPGet.Port.String())
			}
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				t.Errorf("container %s mounts volume %s, which the pod does not have", c.Name, m.Name)
			}
		}
	}
}

// containerPort finds a container's port by name or number.
func containerPort(c corev1.Container, nameOrNumber string) (corev1.ContainerPort, bool) {
	for _, p := range c.Ports {
		if p.Name == nameOrNumber || strconv.Itoa(int(p.ContainerPort)) == nameOrNumber {
			return p, true
		}
	}
	return corev1.ContainerPort{}, false
}

// checkService checks the Service selects the router's pods and that each port's
// targetPort is a port of a container, with the same protocol.
func checkService(t *testing.T, svc corev1.Service, tpl corev1.PodTemplateSpec) {
	t.Helper()
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(tpl.Labels)) {
		t.Errorf("Service selector %v does not select the router's pods %v", svc.Spec.Selector, tpl.Labels)
	}
	if len(svc.Spec.Ports) == 0 {
		t.Fatal("the Service has no ports")
	}
	for _, sp := range svc.Spec.Ports {
		target := sp.TargetPort.String()
		if target == "0" || target == "" {
			target = strconv.Itoa(int(sp.Port)) // the API's default
		}
		found := false
		for _, c := range tpl.Spec.Containers {
			if cp, ok := containerPort(c, target); ok {
				found = true
				if protocol(cp.Protocol) != protocol(sp.Protocol) {
					t.Errorf("Service port %s is %s, container port %s is %s", sp.Name, protocol(sp.Protocol), target, protocol(cp.Protocol))
				}
			}
		}
		if !found {
			t.Errorf("Service port %s targets %s, which no container declares", sp.Name, target)
		}
	}
}

// protocol applies the API's default, TCP.
func protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// checkListeningPorts checks every port the configuration makes the pod answer on is
// declared by a container and offered by the Service, so an edit to config.json that
// adds a line cannot be forgotten in the manifests.
func checkListeningPorts(t *testing.T, spec corev1.PodSpec, svc corev1.Service, cfg *config.Config) {
	t.Helper()
	type port struct {
		number   int
		protocol corev1.Protocol
	}
	var want []port
	switch cfg.Mode {
	case config.Redirect:
		for _, r := range cfg.IP.Redirect.Rules {
			want = append(want, port{int(r.Port), corev1.Protocol(strings.ToUpper(string(r.Proto)))})
		}
	case config.DNSProxy:
		for _, r := range cfg.DNSProxy.Rules {
			want = append(want, port{int(r.Port), corev1.ProtocolTCP})
		}
	case config.HTTPProxy:
		listen := flagValue(t, spec.Containers[0].Args, "listen")
		_, p, err := net.SplitHostPort(listen)
		n, convErr := strconv.Atoi(p)
		if err != nil || convErr != nil {
			t.Fatalf("-listen=%s is not host:port", listen)
		}
		want = append(want, port{n, corev1.ProtocolTCP})
	}
	for _, w := range want {
		declared := slices.ContainsFunc(spec.Containers, func(c corev1.Container) bool {
			cp, ok := containerPort(c, strconv.Itoa(w.number))
			return ok && protocol(cp.Protocol) == w.protocol
		})
		if !declared {
			t.Errorf("the configuration listens on %d/%s, which no container declares", w.number, w.protocol)
		}
		offered := slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool {
			return int(sp.Port) == w.number && protocol(sp.Protocol) == w.protocol
		})
		if !offered {
			t.Errorf("the configuration listens on %d/%s, which the Service does not offer", w.number, w.protocol)
		}
	}
}

// flagValue returns the value of -name=value in a container's args: the manifests
// write flags in that one form so they can be read back here.
func flagValue(t *testing.T, args []string, name string) string {
	t.Helper()
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "-"+name+"="); ok {
			return v
		}
	}
	t.Fatalf("args %q have no -%s=VALUE", args, name)
	return ""
}

// mountOf returns the mount at dir and its volume.
func mountOf(t *testing.T, spec corev1.PodSpec, dir string) (corev1.VolumeMount, corev1.Volume) {
	t.Helper()
	for _, c := range spec.Containers {
		for _, m := range c.VolumeMounts {
			if m.MountPath != dir {
				continue
			}
			for _, v := range spec.Volumes {
				if v.Name == m.Name {
					return m, v
				}
			}
		}
	}
	t.Fatalf("nothing is mounted at %s", dir)
	return corev1.VolumeMount{}, corev1.Volume{}
}
