package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/yaml"

	v1 "github.com/egress-router/egress-router/api/v1"
	egressrender "github.com/egress-router/egress-router/internal/render"
	"github.com/egress-router/egress-router/test/topology"
)

// The controller's kustomization installs everything a router needs besides Multus,
// in one apply: the CRD, the node installer, and the controller with its account, the
// RBAC the reconciler's markers generate, leader election and probes; it renders the
// proxies from the images the per-mode kustomizations deploy.
func TestControllerManifests(t *testing.T) {
	b := render(t, filepath.Join(manifestsDir, "controller"))
	checkObjects(t, b)
	if len(b.crds) != 1 || b.crds[0].Name != "egressrouters.egress-router.io" {
		t.Fatalf("CRDs %d, want egressrouters.egress-router.io", len(b.crds))
	}
	if len(b.daemonSets) != 1 {
		t.Errorf("DaemonSets %d, want the node installer's", len(b.daemonSets))
	}
	idx := slices.IndexFunc(b.deployments, func(d appsv1.Deployment) bool { return d.Name == "egress-router-controller" })
	if idx < 0 {
		t.Fatal("no Deployment egress-router-controller")
	}
	dep := b.deployments[idx]
	checkSelector(t, dep.Spec.Selector, dep.Spec.Template)
	spec := dep.Spec.Template.Spec
	checkPodSpec(t, spec)
	account := spec.ServiceAccountName
	if !slices.ContainsFunc(b.serviceAccounts, func(s corev1.ServiceAccount) bool { return s.Name == account }) {
		t.Errorf("serviceAccountName %q is not among the manifests", account)
	}
	ctr := spec.Containers[0]
	if flagValue(t, ctr.Args, "leader-elect") != "true" {
		t.Error("two replicas without -leader-elect=true would reconcile at once")
	}
	if ctr.ReadinessProbe == nil || ctr.LivenessProbe == nil {
		t.Error("the controller needs a readiness and a liveness probe (checkPodSpec checks their ports)")
	}

	// The agent's image is pushed beside the proxies'.
	if got, want := flagValue(t, ctr.Args, "agent-image"), strings.Replace(flagValue(t, ctr.Args, "http-proxy-image"), "egress-http-proxy", "egress-router-agent", 1); got != want {
		t.Errorf("-agent-image=%s, want %s beside the proxies", got, want)
	}

	// The proxies' images are those the per-mode kustomizations deploy.
	for mode, flag := range map[string]string{"http-proxy": "http-proxy-image", "dns-proxy": "dns-proxy-image"} {
		want := render(t, filepath.Join(manifestsDir, mode)).deployments[0].Spec.Template.Spec.Containers[0].Image
		if got := flagValue(t, ctr.Args, flag); got != want {
			t.Errorf("-%s=%s, but deploy/kubernetes/%s deploys %s", flag, got, mode, want)
		}
	}

	// The account is bound to the generated ClusterRole and to leader election.
	boundTo := func(subjects []rbacv1.Subject) bool {
		return slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool {
			return s.Kind == "ServiceAccount" && s.Name == account && s.Namespace == routerNamespace
		})
	}
	if !slices.ContainsFunc(b.clusterBindings, func(rb rbacv1.ClusterRoleBinding) bool {
		return rb.RoleRef.Kind == "ClusterRole" && rb.RoleRef.Name == "egress-router-controller" && boundTo(rb.Subjects)
	}) || len(b.clusterRoles) != 1 || b.clusterRoles[0].Name != "egress-router-controller" {
		t.Error("the account is not bound to the ClusterRole egress-router-controller")
	}
	if !slices.ContainsFunc(b.roleBindings, func(rb rbacv1.RoleBinding) bool {
		return rb.RoleRef.Kind == "Role" && boundTo(rb.Subjects) && slices.ContainsFunc(b.roles, func(r rbacv1.Role) bool {
			return r.Name == rb.RoleRef.Name && slices.ContainsFunc(r.Rules, func(p rbacv1.PolicyRule) bool { return slices.Contains(p.Resources, "leases") })
		})
	}) {
		t.Error("the account may not hold a Lease for leader election")
	}

	// The binary accepts the args (-version parses them all, then exits).
	bin := filepath.Join(topology.Build(t, module+"/controllers/egress-router-controller"), "egress-router-controller")
	if out, err := exec.Command(bin, append(slices.Clone(ctr.Args), "-version")...).CombinedOutput(); err != nil {
		t.Errorf("egress-router-controller %s -version: %v\n%s", strings.Join(ctr.Args, " "), err, out)
	}
}

// Every EgressRouter example beside the controller's kustomization decodes strictly
// and renders; the highly available one renders its agent, Lease RBAC and budget.
func TestControllerExampleManifests(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(manifestsDir, "controller", "examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no example under controller/examples (%v)", err)
	}
	highlyAvailable := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var router v1.EgressRouter
		if err := yaml.UnmarshalStrict(data, &router); err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if router.APIVersion != v1.GroupVersion.String() || router.Kind != "EgressRouter" {
			t.Errorf("%s: %s %s, want an EgressRouter of %s", file, router.APIVersion, router.Kind, v1.GroupVersion)
		}
		objects, err := egressrender.Render(&router, egressrender.DefaultImages())
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if !egressrender.HighlyAvailable(&router) {
			continue
		}
		highlyAvailable++
		containers := objects.Deployment.Spec.Template.Spec.Containers
		if objects.Role == nil || objects.RoleBinding == nil || objects.DisruptionBudget == nil ||
			!slices.ContainsFunc(containers, func(c coreac.ContainerApplyConfiguration) bool { return *c.Name == "agent" }) {
			t.Errorf("%s: replicas %d renders no agent, Lease RBAC or budget", file, *router.Spec.Replicas)
		}
	}
	if highlyAvailable == 0 {
		t.Error("no example of a highly available router (spec.replicas > 1)")
	}
}
