package controller_test

import (
	"bytes"
	"context"
	"os/exec"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	v1 "github.com/egress-router/egress-router/api/v1"
	"github.com/egress-router/egress-router/internal/controller"
	"github.com/egress-router/egress-router/internal/render"
	"github.com/egress-router/egress-router/test/topology"
)

// `egress-router-controller render -f` prints what the controller applies: the same
// configuration bytes, the same pod template and the same Service ports, for a router
// of each mode and a highly available one in one file; and the same Role and
// PodDisruptionBudget for the latter.
func TestRenderPrintsWhatTheControllerApplies(t *testing.T) {
	c := newClient(t, adminConfig())
	ns := newNamespace(t, c)
	startController(t, adminConfig(), ns, &controller.Reconciler{})
	var file bytes.Buffer
	ha := withReplicas(redirectSpec, 3)
	names := map[string]v1.EgressRouterSpec{"redirect": redirectSpec, "http": httpProxySpec, "dns": dnsProxySpec, "ha": ha}
	for name, spec := range names {
		r := routerOf(ns, name, *spec.DeepCopy())
		r.TypeMeta = metav1.TypeMeta{APIVersion: v1.GroupVersion.String(), Kind: "EgressRouter"}
		doc, err := yaml.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		file.WriteString("---\n# " + name + "\n")
		file.Write(doc)
		if err := c.Create(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	bin := topology.Build(t, controllerPkg) + "/egress-router-controller"
	out, err := exec.Command(bin, "render", "-f", writeFile(t, "routers.yaml", file.Bytes())).Output()
	if err != nil {
		t.Fatalf("render -f: %v", err)
	}
	printed := map[string][]byte{} // kind/name -> document
	for _, doc := range bytes.Split(out, []byte("---\n")) {
		var meta metav1.PartialObjectMetadata
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		printed[meta.Kind+"/"+meta.Name] = doc
	}
	if len(printed) != 5*len(names)+3 {
		t.Errorf("render -f printed %d objects, want 5 for each of %d routers and 3 more for the highly available one", len(printed), len(names))
	}
	for name := range names {
		r := &v1.EgressRouter{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		get(t, c, ns, name, r)
		applied := checkOwnedObjects(t, c, r, render.Name(name))
		var cm corev1.ConfigMap
		var d appsv1.Deployment
		var svc corev1.Service
		decodePrinted(t, printed, "ConfigMap/"+render.Name(name), &cm)
		decodePrinted(t, printed, "Deployment/"+render.Name(name), &d)
		decodePrinted(t, printed, "Service/"+render.Name(name), &svc)
		if cm.Data[render.ConfigKey] != applied.configMap.Data[render.ConfigKey] {
			t.Errorf("%s: printed configuration differs from the applied one:\n%s\nvs\n%s", name, cm.Data[render.ConfigKey], applied.configMap.Data[render.ConfigKey])
		}
		if !equality.Semantic.DeepEqual(d.Spec.Template.Annotations, applied.deployment.Spec.Template.Annotations) ||
			!slices.EqualFunc(d.Spec.Template.Spec.Containers, applied.deployment.Spec.Template.Spec.Containers, func(a, b corev1.Container) bool {
				return a.Image == b.Image && slices.Equal(a.Args, b.Args) && slices.Equal(a.Ports, b.Ports) &&
					equality.Semantic.DeepEqual(a.Env, b.Env) && equality.Semantic.DeepEqual(a.SecurityContext, b.SecurityContext)
			}) || !equality.Semantic.DeepEqual(d.Spec.Strategy, applied.deployment.Spec.Strategy) ||
			!equality.Semantic.DeepEqual(d.Spec.Template.Spec.Affinity, applied.deployment.Spec.Template.Spec.Affinity) {
			t.Errorf("%s: printed pod template differs from the applied one", name)
		}
		if !equality.Semantic.DeepEqual(svc.Spec.Ports, applied.service.Spec.Ports) {
			t.Errorf("%s: printed Service ports %v, applied %v", name, svc.Spec.Ports, applied.service.Spec.Ports)
		}
	}
	var role rbacv1.Role
	var budget policyv1.PodDisruptionBudget
	decodePrinted(t, printed, "Role/"+render.Name("ha"), &role)
	decodePrinted(t, printed, "RoleBinding/"+render.Name("ha"), &rbacv1.RoleBinding{})
	decodePrinted(t, printed, "PodDisruptionBudget/"+render.Name("ha"), &budget)
	for _, obj := range checkLeaseRBACAndBudget(t, c, ns, render.Name("ha")) {
		switch applied := obj.(type) {
		case *rbacv1.Role:
			if !equality.Semantic.DeepEqual(role.Rules, applied.Rules) {
				t.Errorf("printed Role rules %+v, applied %+v", role.Rules, applied.Rules)
			}
		case *policyv1.PodDisruptionBudget:
			if !equality.Semantic.DeepEqual(budget.Spec, applied.Spec) {
				t.Errorf("printed PodDisruptionBudget %+v, applied %+v", budget.Spec, applied.Spec)
			}
		}
	}
}

func decodePrinted(t *testing.T, printed map[string][]byte, key string, into any) {
	t.Helper()
	doc, ok := printed[key]
	if !ok {
		t.Fatalf("render -f did not print %s", key)
	}
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
}
