package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/egress-router/egress-router/api/v1"
	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/controller"
	"github.com/egress-router/egress-router/internal/render"
)

// A router of each mode gets its five objects, owned by it, with the content the
// mode needs; its status is Progressing until the Deployment reports its pod
// available, then Available.
func TestEachModeGetsItsObjectsAndFollowsTheDeployment(t *testing.T) {
	c := newClient(t, adminConfig())
	for _, tc := range []struct {
		name      string
		spec      v1.EgressRouterSpec
		mode      config.Mode
		container string
		ports     []string // the Service's ports: name/number/protocol
	}{
		{"redirect", redirectSpec, config.Redirect, "pause", []string{"tcp-80/80/TCP", "tcp-8080/8080/TCP", "udp-53/53/UDP"}},
		{"http-proxy", httpProxySpec, config.HTTPProxy, "proxy", []string{"http-proxy/8080/TCP"}},
		{"dns-proxy", dnsProxySpec, config.DNSProxy, "proxy", []string{"tcp-80/80/TCP", "tcp-8443/8443/TCP"}},
		// Every port goes to the fallback: a headless Service, without ports.
		{"redirect, fallback only", v1.EgressRouterSpec{Redirect: &v1.RedirectConfig{FallbackIP: "203.0.113.27"}}, config.Redirect, "pause", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t, c)
			startController(t, adminConfig(), ns, &controller.Reconciler{})
			router := routerOf(ns, "egress", *tc.spec.DeepCopy())
			if err := c.Create(context.Background(), router); err != nil {
				t.Fatal(err)
			}
			waitCondition(t, c, ns, "egress", v1.ConditionProgressing, metav1.ConditionTrue, controller.ReasonRollingOut)
			r := waitCondition(t, c, ns, "egress", v1.ConditionAvailable, metav1.ConditionFalse, controller.ReasonDeploymentNotAvailable)
			waitCondition(t, c, ns, "egress", v1.ConditionDegraded, metav1.ConditionFalse, controller.ReasonApplied)

			name := render.Name("egress")
			objects := checkOwnedObjects(t, c, r, name)
			cfg, err := config.Load([]byte(networkConfig(t, objects.network)))
			if err != nil || cfg.Mode != tc.mode || cfg.Name != name || cfg.Type != "egress-router" {
				t.Fatalf("network config: mode %v, name %v (%v); want %s, %s", cfg.Mode, cfg.Name, err, tc.mode, name)
			}
			if got := objects.configMap.Data[render.ConfigKey]; got != networkConfig(t, objects.network) {
				t.Errorf("the ConfigMap's %s differs from the network's spec.config:\n%s", render.ConfigKey, got)
			}
			checkDeployment(t, objects.deployment, name, tc.container)
			var ports []string
			for _, p := range objects.service.Spec.Ports {
				ports = append(ports, p.Name+"/"+strconv.Itoa(int(p.Port))+"/"+string(p.Protocol))
				if p.TargetPort.StrVal != p.Name {
					t.Errorf("Service port %s targets %v, want the container port of that name", p.Name, p.TargetPort)
				}
			}
			if !slices.Equal(ports, tc.ports) {
				t.Errorf("Service ports %v, want %v", ports, tc.ports)
			}
			if headless := objects.service.Spec.ClusterIP == corev1.ClusterIPNone; headless != (len(tc.ports) == 0) {
				t.Errorf("Service clusterIP %q with ports %v: want headless exactly when there is no port", objects.service.Spec.ClusterIP, tc.ports)
			}
			if sa := objects.serviceAccount; sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
				t.Error("the ServiceAccount mounts a token, but the router never talks to the API server")
			}

			markAvailable(t, c, objects.deployment)
			waitCondition(t, c, ns, "egress", v1.ConditionAvailable, metav1.ConditionTrue, controller.ReasonDeploymentAvailable)
			waitCondition(t, c, ns, "egress", v1.ConditionProgressing, metav1.ConditionFalse, controller.ReasonRolledOut)
		})
	}
}

// ownedObjects are one router's objects as the API server holds them.
type ownedObjects struct {
	configMap      *corev1.ConfigMap
	serviceAccount *corev1.ServiceAccount
	network        *unstructured.Unstructured
	service        *corev1.Service
	deployment     *appsv1.Deployment
}

// checkOwnedObjects reads the router's five objects and checks each names the router
// as its controlling owner, blocking the owner's deletion until it is gone: that is
// what makes the garbage collector delete them with the router.
func checkOwnedObjects(t *testing.T, c client.Client, r *v1.EgressRouter, name string) ownedObjects {
	t.Helper()
	o := ownedObjects{&corev1.ConfigMap{}, &corev1.ServiceAccount{}, nil, &corev1.Service{}, &appsv1.Deployment{}}
	eventually(t, 10*time.Second, "the Deployment", func() error {
		return c.Get(context.Background(), client.ObjectKey{Namespace: r.Namespace, Name: name}, o.deployment)
	})
	get(t, c, r.Namespace, name, o.configMap)
	get(t, c, r.Namespace, name, o.serviceAccount)
	get(t, c, r.Namespace, name, o.service)
	o.network = network(t, c, r.Namespace, name)
	for _, obj := range []client.Object{o.configMap, o.serviceAccount, o.network, o.service, o.deployment} {
		checkOwner(t, obj, r.UID)
	}
	return o
}

func checkOwner(t *testing.T, obj client.Object, owner types.UID) {
	t.Helper()
	refs := obj.GetOwnerReferences()
	if len(refs) != 1 {
		t.Fatalf("%T %s: owner references %+v, want the router only", obj, obj.GetName(), refs)
	}
	ref := refs[0]
	if ref.UID != owner || ref.Kind != "EgressRouter" || ref.APIVersion != v1.GroupVersion.String() ||
		ref.Controller == nil || !*ref.Controller || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("%T %s: owner reference %+v, want the router (UID %s) as controller, blocking its deletion", obj, obj.GetName(), ref, owner)
	}
}

// checkDeployment checks what a router's pod needs whatever its mode.
func checkDeployment(t *testing.T, d *appsv1.Deployment, name, container string) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("replicas %v, strategy %q; want 1 pod, Recreate: never two pods with one reserved IP", d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	tpl := d.Spec.Template
	var networks []map[string]string
	if err := json.Unmarshal([]byte(tpl.Annotations[render.NetworksAnnotation]), &networks); err != nil ||
		len(networks) != 1 || networks[0]["name"] != name || networks[0]["interface"] != "net1" {
		t.Errorf("annotation %s = %q, want network %s as net1 (%v)", render.NetworksAnnotation, tpl.Annotations[render.NetworksAnnotation], name, err)
	}
	if tpl.Annotations[render.ConfigHashAnnotation] == "" {
		t.Errorf("no %s annotation: a changed configuration would not recreate the pod", render.ConfigHashAnnotation)
	}
	spec := tpl.Spec
	if spec.ServiceAccountName != name || spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		t.Errorf("pod: account %q, security context %+v; want %s, non-root", spec.ServiceAccountName, spec.SecurityContext, name)
	}
	if len(spec.Containers) != 1 || spec.Containers[0].Name != container {
		t.Fatalf("containers %+v, want one named %s", spec.Containers, container)
	}
	ctr := spec.Containers[0]
	if sc := ctr.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container security context %+v, want no escalation, read-only root, no capabilities", sc)
	}
	if len(ctr.VolumeMounts) != 1 || ctr.VolumeMounts[0].MountPath != render.ConfigDir || len(spec.Volumes) != 1 || spec.Volumes[0].ConfigMap == nil || spec.Volumes[0].ConfigMap.Name != name {
		t.Errorf("mounts %+v, volumes %+v; want ConfigMap %s at %s", ctr.VolumeMounts, spec.Volumes, name, render.ConfigDir)
	}
	if container != "proxy" {
		return
	}
	for _, probe := range []*corev1.Probe{ctr.ReadinessProbe, ctr.LivenessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Port.StrVal != "metrics" {
			t.Errorf("probe %+v, want an HTTP GET on the metrics port", probe)
		}
	}
	if !slices.Contains(ctr.Args, "-config="+render.ConfigDir+"/"+render.ConfigKey) {
		t.Errorf("args %q do not read the mounted configuration", ctr.Args)
	}
}

// An OpenShift EgressRouter manifest, its apiVersion changed and nothing else, renders
// a router with all it says: the master and mode of the macvlan, every rule, the
// fallback and the gateway (the Cluster Network Operator drops the first two).
func TestOpenShiftManifestWorksWithOnlyItsAPIVersionChanged(t *testing.T) {
	c := newClient(t, adminConfig())
	ns := newNamespace(t, c)
	startController(t, adminConfig(), ns, &controller.Reconciler{})
	raw, err := os.ReadFile("testdata/openshift-egressrouter.yaml")
	if err != nil {
		t.Fatal(err)
	}
	manifest := strings.Replace(string(raw), "apiVersion: network.operator.openshift.io/v1", "apiVersion: egress-router.io/v1", 1)
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetNamespace(ns)
	if err := c.Create(context.Background(), u); err != nil {
		t.Fatalf("create the OpenShift-shaped EgressRouter: %v", err)
	}
	waitCondition(t, c, ns, u.GetName(), v1.ConditionDegraded, metav1.ConditionFalse, controller.ReasonApplied)
	cfg, err := config.Load([]byte(networkConfig(t, network(t, c, ns, render.Name(u.GetName())))))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(cfg.IP.Redirect.Lines(), ", "), "80 udp 203.0.113.53, 8080 tcp 203.0.113.26 80, 8443 tcp 203.0.113.26 443, 203.0.113.27"; got != want {
		t.Errorf("redirect lines %q, want %q", got, want)
	}
	if cfg.Interface.Master != "ens4" || cfg.Interface.Mode != "private" {
		t.Errorf("macvlan master %q mode %q, want ens4, private", cfg.Interface.Master, cfg.Interface.Mode)
	}
	if len(cfg.IP.Gateways) != 1 || cfg.IP.Gateways[0].String() != "192.0.2.1" || len(cfg.IP.Addresses) != 1 || cfg.IP.Addresses[0].String() != "192.0.2.99/24" {
		t.Errorf("addresses %v gateways %v, want 192.0.2.99/24 via 192.0.2.1", cfg.IP.Addresses, cfg.IP.Gateways)
	}
}

// The API server refuses, with the schema's message, what can be checked without the
// configuration package: enums, ranges, addresses, and each mode's section.
func TestSchemaRefusesWhatItCanCheck(t *testing.T) {
	c := newClient(t, adminConfig())
	ns := newNamespace(t, c)
	for _, tc := range []struct {
		name string
		edit func(*v1.EgressRouterSpec)
		want string
	}{
		{"redirect section in another mode", func(s *v1.EgressRouterSpec) { s.Mode = v1.ModeHTTPProxy }, "redirect is required with mode Redirect, and allowed only then"},
		{"mode without its section", func(s *v1.EgressRouterSpec) { s.Redirect = nil }, "redirect is required with mode Redirect"},
		{"unknown mode", func(s *v1.EgressRouterSpec) { s.Mode = "Tunnel" }, `Unsupported value: "Tunnel"`},
		{"port 0", func(s *v1.EgressRouterSpec) { s.Redirect.RedirectRules[0].Port = 0 }, "should be greater than or equal to 1"},
		{"target port out of range", func(s *v1.EgressRouterSpec) { s.Redirect.RedirectRules[0].TargetPort = 70000 }, "should be less than or equal to 65535"},
		{"unknown protocol", func(s *v1.EgressRouterSpec) { s.Redirect.RedirectRules[0].Protocol = "ICMP" }, `Unsupported value: "ICMP"`},
		{"destination not an address", func(s *v1.EgressRouterSpec) { s.Redirect.RedirectRules[0].DestinationIP = "db.example.com" }, "must be an IP address"},
		{"reserved address not an address", func(s *v1.EgressRouterSpec) { s.Addresses[0].IP = "192.0.2.999/24" }, "must be an IP address or an address with a subnet length"},
		{"no address", func(s *v1.EgressRouterSpec) { s.Addresses = []v1.EgressRouterAddress{} }, "should have at least 1 items"},
		{"unknown macvlan mode", func(s *v1.EgressRouterSpec) { s.NetworkInterface.Macvlan.Mode = "Shared" }, `Unsupported value: "Shared"`},
		{"no rule and no fallback", func(s *v1.EgressRouterSpec) { s.Redirect.RedirectRules = nil }, "give at least one redirect rule or a fallbackIP"},
		{"a port and protocol twice", func(s *v1.EgressRouterSpec) {
			s.Redirect.RedirectRules = append(s.Redirect.RedirectRules, v1.L4RedirectRule{DestinationIP: "203.0.113.9", Port: 80, Protocol: "TCP"})
		}, "Duplicate value"},
		{"no replicas", func(s *v1.EgressRouterSpec) { s.Replicas = ptr(int32(0)) }, "should be greater than or equal to 1"},
		{"more replicas than standbys are worth", func(s *v1.EgressRouterSpec) { s.Replicas = ptr(int32(6)) }, "should be less than or equal to 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := redirectSpec.DeepCopy()
			spec.Addresses = []v1.EgressRouterAddress{{IP: "192.0.2.99/24", Gateway: "192.0.2.1"}}
			tc.edit(spec)
			err := c.Create(context.Background(), routerOf(ns, "refused", *spec))
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("create: %v; want Invalid with %q", err, tc.want)
			}
		})
	}
}

// A spec the schema accepts but the configuration package refuses gives Degraded with the plugin's message naming the spec's field;
// nothing is applied, so the router that ran keeps running as it was.
func TestInvalidSpecIsDegradedAndKeepsWhatRuns(t *testing.T) {
	c := newClient(t, adminConfig())
	ns := newNamespace(t, c)
	startController(t, adminConfig(), ns, &controller.Reconciler{})
	router := routerOf(ns, "egress", *httpProxySpec.DeepCopy())
	if err := c.Create(context.Background(), router); err != nil {
		t.Fatal(err)
	}
	name := render.Name("egress")
	waitCondition(t, c, ns, "egress", v1.ConditionDegraded, metav1.ConditionFalse, controller.ReasonApplied)
	before := checkOwnedObjects(t, c, router, name)
	markAvailable(t, c, before.deployment)
	waitCondition(t, c, ns, "egress", v1.ConditionAvailable, metav1.ConditionTrue, controller.ReasonDeploymentAvailable)

	for _, tc := range []struct {
		name string
		edit func(*v1.EgressRouterSpec)
		want string
	}{
		{"a line the grammar refuses", func(s *v1.EgressRouterSpec) { s.HTTPProxy.Destinations = []string{"*", "203.0.113.0/24"} },
			`spec.httpProxy.destinations: line 1 "*": "*" (allow everything not denied above) must be the last line`},
		{"two gateways of one family", func(s *v1.EgressRouterSpec) {
			s.Addresses = append(s.Addresses, v1.EgressRouterAddress{IP: "192.0.2.98/24", Gateway: "192.0.2.2"})
		}, "spec.addresses[].gateway: 192.0.2.2: only one IPv4 gateway is allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r v1.EgressRouter
			get(t, c, ns, "egress", &r)
			r.Spec = *httpProxySpec.DeepCopy()
			r.Spec.Addresses = []v1.EgressRouterAddress{{IP: "192.0.2.99/24", Gateway: "192.0.2.1"}}
			tc.edit(&r.Spec)
			if err := c.Update(context.Background(), &r); err != nil {
				t.Fatal(err)
			}
			got := waitCondition(t, c, ns, "egress", v1.ConditionDegraded, metav1.ConditionTrue, controller.ReasonInvalidSpec)
			degraded := meta.FindStatusCondition(got.Status.Conditions, v1.ConditionDegraded)
			if !strings.Contains(degraded.Message, tc.want) {
				t.Errorf("Degraded message %q, want it to contain %q", degraded.Message, tc.want)
			}
			// What ran before is as it was, and status says it still runs.
			waitCondition(t, c, ns, "egress", v1.ConditionAvailable, metav1.ConditionTrue, controller.ReasonDeploymentAvailable)
			after := checkOwnedObjects(t, c, router, name)
			for _, pair := range [][2]client.Object{
				{before.configMap, after.configMap}, {before.network, after.network}, {before.service, after.service},
				{before.deployment, after.deployment}, {before.serviceAccount, after.serviceAccount},
			} {
				if pair[0].GetResourceVersion() != pair[1].GetResourceVersion() {
					t.Errorf("%T %s changed (resourceVersion %s -> %s) though the spec is invalid", pair[0], name, pair[0].GetResourceVersion(), pair[1].GetResourceVersion())
				}
			}
			before.deployment = after.deployment
		})
	}
}

// An edit reaches the network, the ConfigMap, the Service and the pod template, whose
// changed hash annotation makes the Deployment recreate the pod (the plugin reads the
// network only when a pod starts); status follows the new rollout.
func TestEditUpdatesNetworkConfigMapAndPodTemplate(t *testing.T) {
	c := newClient(t, adminConfig())
	ns := newNamespace(t, c)
	startController(t, adminConfig(), ns, &controller.Reconciler{})
	router := routerOf(ns, "egress", *dnsProxySpec.DeepCopy())
	if err := c.Create(context.Background(), router); err != nil {
		t.Fatal(err)
	}
	name := render.Name("egress")
	waitCondition(t, c, ns, "egress", v1.ConditionProgressing, metav1.ConditionTrue, controller.ReasonRollingOut)
	before := checkOwnedObjects(t, c, router, name)
	markAvailable(t, c, before.deployment)
	waitCondition(t, c, ns, "egress", v1.ConditionProgressing, metav1.ConditionFalse, controller.ReasonRolledOut)

	const added = "9443 203.0.113.27 443"
	var r v1.EgressRouter
	get(t, c, ns, "egress", &r)
	r.Spec.DNSProxy.Destinations = append(r.Spec.DNSProxy.Destinations, added)
	if err := c.Update(context.Background(), &r); err != nil {
		t.Fatal(err)
	}
	// The first status written for the edit already says the new generation is not
	// rolled out (until the test says so), never the previous rollout's RolledOut.
	eventually(t, 10*time.Second, "the status of the edit", func() error {
		get(t, c, ns, "egress", &r)
		if r.Status.ObservedGeneration != r.Generation {
			return fmt.Errorf("status for generation %d, the spec is at %d", r.Status.ObservedGeneration, r.Generation)
		}
		return nil
	})
	if p := meta.FindStatusCondition(r.Status.Conditions, v1.ConditionProgressing); p.Status != metav1.ConditionTrue || p.Reason != controller.ReasonRollingOut {
		t.Errorf("right after the edit: Progressing %s (%s), want True (RollingOut)", p.Status, p.Reason)
	}
	after := checkOwnedObjects(t, c, router, name)
	if conf := networkConfig(t, after.network); !strings.Contains(conf, added) {
		t.Errorf("the network's config lacks the new line:\n%s", conf)
	}
	if conf := after.configMap.Data[render.ConfigKey]; conf != networkConfig(t, after.network) {
		t.Errorf("the ConfigMap differs from the network:\n%s", conf)
	}
	oldHash, newHash := before.deployment.Spec.Template.Annotations[render.ConfigHashAnnotation], after.deployment.Spec.Template.Annotations[render.ConfigHashAnnotation]
	if oldHash == newHash || after.deployment.Generation == before.deployment.Generation {
		t.Errorf("pod template hash %s -> %s, generation %d -> %d: the pod would not be recreated", oldHash, newHash, before.deployment.Generation, after.deployment.Generation)
	}
	if !slices.ContainsFunc(after.service.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == 9443 }) {
		t.Errorf("Service ports %+v lack 9443", after.service.Spec.Ports)
	}
	if !slices.ContainsFunc(after.deployment.Spec.Template.Spec.Containers[0].Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == 9443 }) {
		t.Error("the container does not declare 9443")
	}
	markAvailable(t, c, after.deployment)
	waitCondition(t, c, ns, "egress", v1.ConditionProgressing, metav1.ConditionFalse, controller.ReasonRolledOut)
}

// Deleting a router leaves nothing: every object carrying the controller's label is
// one of the router's five, owned by it as controller with blockOwnerDeletion, so the
// garbage collector deletes them with it; and the controller re-creates none of them.
// (kube-apiserver alone runs no garbage collector, so the test checks the references
// the collector follows rather than watching it work.)
func TestDeleteLeavesNothingBehind(t *testing.T) {
	c := newClient(t, adminConfig())
	ns := newNamespace(t, c)
	startController(t, adminConfig(), ns, &controller.Reconciler{})
	router := routerOf(ns, "egress", *redirectSpec.DeepCopy())
	if err := c.Create(context.Background(), router); err != nil {
		t.Fatal(err)
	}
	name := render.Name("egress")
	waitCondition(t, c, ns, "egress", v1.ConditionDegraded, metav1.ConditionFalse, controller.ReasonApplied)
	owned := checkOwnedObjects(t, c, router, name)
	labelled := listRendered(t, c, ns)
	if len(labelled) != 5 {
		t.Errorf("objects with the controller's label: %v, want the router's five", labelled)
	}
	if err := c.Delete(context.Background(), router); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the router to be gone", func() error {
		var r v1.EgressRouter
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(router), &r); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
	// Give the controller the time to (wrongly) act on the deletion.
	time.Sleep(time.Second)
	for _, obj := range []client.Object{owned.configMap, owned.serviceAccount, owned.network, owned.service, owned.deployment} {
		now := obj.DeepCopyObject().(client.Object)
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), now); err != nil {
			t.Fatal(err)
		}
		if now.GetResourceVersion() != obj.GetResourceVersion() {
			t.Errorf("%T %s was written after the router was deleted", obj, obj.GetName())
		}
		checkOwner(t, now, router.UID)
	}
}

// listRendered lists every object in namespace labelled as the controller's.
func listRendered(t *testing.T, c client.Client, namespace string) []string {
	t.Helper()
	sel := client.MatchingLabels{render.ManagedByLabel: render.FieldManager}
	var names []string
	networks := &unstructured.UnstructuredList{}
	networks.SetGroupVersionKind(render.NetworkGVK.GroupVersion().WithKind(render.NetworkGVK.Kind + "List"))
	for _, l := range []client.ObjectList{&corev1.ConfigMapList{}, &corev1.ServiceAccountList{}, &corev1.ServiceList{}, &appsv1.DeploymentList{}, networks} {
		if err := c.List(context.Background(), l, client.InNamespace(namespace), sel); err != nil {
			t.Fatal(err)
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range items {
			names = append(names, fmt.Sprintf("%T %s", l, o.(client.Object).GetName()))
		}
	}
	return names
}
