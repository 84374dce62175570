package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/egress-router/egress-router/api/v1"
	"github.com/egress-router/egress-router/internal/controller"
	"github.com/egress-router/egress-router/internal/render"
)

// A router of each mode with two replicas renders high availability: "ha" in the
// configuration, the agent next to the mode's container, the Role and RoleBinding
// of its Lease, one pod per node, a PodDisruptionBudget and RollingUpdate, all owned
// by the router; one ready pod (the active one) makes it Available and rolled out.
func TestTwoReplicasRenderHighAvailabilityInEachMode(t *testing.T) {
	c := newClient(t, adminConfig())
	for _, tc := range []struct {
		name      string
		spec      v1.EgressRouterSpec
		container string
	}{
		{"redirect", redirectSpec, "pause"},
		{"http-proxy", httpProxySpec, "proxy"},
		{"dns-proxy", dnsProxySpec, "proxy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t, c)
			startController(t, adminConfig(), ns, &controller.Reconciler{})
			spec := withReplicas(tc.spec, 2)
			router := routerOf(ns, "egress", spec)
			if err := c.Create(context.Background(), router); err != nil {
				t.Fatal(err)
			}
			r := waitCondition(t, c, ns, "egress", v1.ConditionDegraded, metav1.ConditionFalse, controller.ReasonApplied)
			name := render.Name("egress")
			objects := checkOwnedObjects(t, c, r, name)
			if ha := haOf(t, networkConfig(t, objects.network)); ha == nil || !ha.Enabled {
				t.Errorf(`the network configuration's "ha" is %+v, want {"enabled": true}`, ha)
			}
			checkHighlyAvailableDeployment(t, objects.deployment, ns, name, tc.container)
			for _, obj := range checkLeaseRBACAndBudget(t, c, ns, name) {
				checkOwner(t, obj, r.UID)
			}

			markAvailable(t, c, objects.deployment)
			waitCondition(t, c, ns, "egress", v1.ConditionAvailable, metav1.ConditionTrue, controller.ReasonDeploymentAvailable)
			waitCondition(t, c, ns, "egress", v1.ConditionProgressing, metav1.ConditionFalse, controller.ReasonRolledOut)
		})
	}
}

// Going from two replicas back to one renders the single pod again (Recreate, no
// agent, no anti-affinity, no "ha") and deletes the Role, RoleBinding and
// PodDisruptionBudget, which applying the smaller set of objects alone would leave.
func TestBackToOneReplicaRemovesHighAvailability(t *testing.T) {
	c := newClient(t, adminConfig())
	ns := newNamespace(t, c)
	startController(t, adminConfig(), ns, &controller.Reconciler{})
	spec := withReplicas(httpProxySpec, 2)
	router := routerOf(ns, "egress", spec)
	if err := c.Create(context.Background(), router); err != nil {
		t.Fatal(err)
	}
	name := render.Name("egress")
	waitCondition(t, c, ns, "egress", v1.ConditionDegraded, metav1.ConditionFalse, controller.ReasonApplied)
	checkLeaseRBACAndBudget(t, c, ns, name)

	var r v1.EgressRouter
	get(t, c, ns, "egress", &r)
	r.Spec.Replicas = ptr(int32(1))
	if err := c.Update(context.Background(), &r); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, c, ns, "egress", v1.ConditionDegraded, metav1.ConditionFalse, controller.ReasonApplied)
	for _, obj := range []client.Object{&rbacv1.Role{}, &rbacv1.RoleBinding{}, &policyv1.PodDisruptionBudget{}} {
		eventually(t, 10*time.Second, fmt.Sprintf("the %T to be deleted", obj), func() error {
			if err := c.Get(context.Background(), key(ns, name), obj); !apierrors.IsNotFound(err) {
				return fmt.Errorf("still there (%v)", err)
			}
			return nil
		})
	}
	objects := checkOwnedObjects(t, c, &r, name)
	checkDeployment(t, objects.deployment, name, "proxy")
	if aff := objects.deployment.Spec.Template.Spec.Affinity; aff != nil || len(objects.deployment.Spec.Template.Spec.Volumes) != 1 {
		t.Errorf("one replica keeps affinity %+v, volumes %+v of high availability", aff, objects.deployment.Spec.Template.Spec.Volumes)
	}
	if ha := haOf(t, networkConfig(t, objects.network)); ha != nil {
		t.Errorf(`one replica's configuration keeps "ha": %+v`, ha)
	}
	markAvailable(t, c, objects.deployment)
	waitCondition(t, c, ns, "egress", v1.ConditionProgressing, metav1.ConditionFalse, controller.ReasonRolledOut)
}

// haOf is the "ha" object of a network configuration, nil when absent.
func haOf(t *testing.T, conf string) *struct{ Enabled bool } {
	t.Helper()
	var doc struct {
		HA *struct{ Enabled bool } `json:"ha"`
	}
	if err := json.Unmarshal([]byte(conf), &doc); err != nil {
		t.Fatalf("network configuration: %v", err)
	}
	return doc.HA
}

// checkHighlyAvailableDeployment checks a highly available router's pod template: the
// agent with the arguments, environment, probes and privileges agreed with it, each
// pod on its own node, RollingUpdate.
func checkHighlyAvailableDeployment(t *testing.T, d *appsv1.Deployment, namespace, name, container string) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", d.Spec.Replicas)
	}
	wantStrategy := appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
		MaxSurge: ptr(intstr.FromInt32(1)), MaxUnavailable: ptr(intstr.FromString("100%")),
	}}
	if !equality.Semantic.DeepEqual(d.Spec.Strategy, wantStrategy) {
		t.Errorf("strategy %+v, want RollingUpdate, maxSurge 1, maxUnavailable 100%%", d.Spec.Strategy)
	}
	spec := d.Spec.Template.Spec
	if aff := spec.Affinity; aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Errorf("affinity %+v, want one required pod anti-affinity term", aff)
	} else {
		term := aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0]
		sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
		if err != nil || term.TopologyKey != corev1.LabelHostname || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) ||
			!equality.Semantic.DeepEqual(term.LabelSelector, d.Spec.Selector) {
			t.Errorf("anti-affinity term %+v, want the router's pod selector across %s", term, corev1.LabelHostname)
		}
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("the pod mounts a token into every container; only the agent needs one")
	}
	names := []string{}
	for _, c := range spec.Containers {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{container, "agent"}) {
		t.Fatalf("containers %v, want %s and agent", names, container)
	}
	agent := spec.Containers[1]
	if agent.Image != render.DefaultImages().Agent {
		t.Errorf("agent image %q, want %q", agent.Image, render.DefaultImages().Agent)
	}
	wantArgs := []string{"-config=/etc/egress-router/config.json", "-lease-name=" + name, "-interface=net1", "-metrics-listen=:9091"}
	if !slices.Equal(agent.Args, wantArgs) {
		t.Errorf("agent args %q, want %q", agent.Args, wantArgs)
	}
	wantEnv := []corev1.EnvVar{
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
		{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}},
	}
	if !equality.Semantic.DeepEqual(agent.Env, wantEnv) {
		t.Errorf("agent env %+v, want POD_NAME and POD_NAMESPACE from the downward API", agent.Env)
	}
	sc := agent.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.RunAsNonRoot == nil || *sc.RunAsNonRoot ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) {
		t.Errorf("agent security context %+v, want root with NET_ADMIN and NET_RAW only, no escalation, read-only root", sc)
	}
	if !slices.Contains(agent.Ports, corev1.ContainerPort{Name: "agent-metrics", ContainerPort: render.AgentMetricsPort, Protocol: corev1.ProtocolTCP}) {
		t.Errorf("agent ports %+v, want agent-metrics on %d", agent.Ports, render.AgentMetricsPort)
	}
	if p := agent.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" || p.HTTPGet.Port.StrVal != "agent-metrics" || p.PeriodSeconds != 1 || p.FailureThreshold != 1 {
		t.Errorf("agent readiness probe %+v, want /readyz on agent-metrics every second, failing at once", p)
	}
	if p := agent.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.StrVal != "agent-metrics" {
		t.Errorf("agent liveness probe %+v, want /healthz on agent-metrics", p)
	}
	// The agent, and it alone, reads the configuration and holds API credentials.
	mounts := map[string]string{}
	for _, m := range agent.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	if mounts[render.ConfigDir] != "config" || mounts["/var/run/secrets/kubernetes.io/serviceaccount"] != "api-access" {
		t.Errorf("agent mounts %+v, want the configuration and its API access", agent.VolumeMounts)
	}
	if slices.ContainsFunc(spec.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "api-access" }) {
		t.Errorf("the %s container holds the API token", container)
	}
	i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == "api-access" })
	if i < 0 || spec.Volumes[i].Projected == nil || len(spec.Volumes[i].Projected.Sources) != 3 || spec.Volumes[i].Projected.Sources[0].ServiceAccountToken == nil {
		t.Errorf("volumes %+v, want api-access projecting a ServiceAccount token, the CA and the namespace", spec.Volumes)
	}
}

// checkLeaseRBACAndBudget checks a highly available router's Role (its Lease and
// events, nothing else), the RoleBinding to its pods' account and its
// PodDisruptionBudget, and returns them.
func checkLeaseRBACAndBudget(t *testing.T, c client.Client, namespace, name string) []client.Object {
	t.Helper()
	var (
		role    rbacv1.Role
		binding rbacv1.RoleBinding
		budget  policyv1.PodDisruptionBudget
	)
	eventually(t, 10*time.Second, "the Role", func() error { return c.Get(context.Background(), key(namespace, name), &role) })
	get(t, c, namespace, name, &binding)
	get(t, c, namespace, name, &budget)
	wantRules := []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{name}, Verbs: []string{"get", "update"}},
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
	if !equality.Semantic.DeepEqual(role.Rules, wantRules) {
		t.Errorf("Role rules %+v, want %+v", role.Rules, wantRules)
	}
	wantBinding := rbacv1.RoleBinding{
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: namespace}},
	}
	if !equality.Semantic.DeepEqual(binding.RoleRef, wantBinding.RoleRef) || !equality.Semantic.DeepEqual(binding.Subjects, wantBinding.Subjects) {
		t.Errorf("RoleBinding %+v -> %+v, want the router's ServiceAccount bound to its Role", binding.Subjects, binding.RoleRef)
	}
	if s := budget.Spec; s.MinAvailable == nil || *s.MinAvailable != intstr.FromInt32(0) || s.MaxUnavailable != nil ||
		s.UnhealthyPodEvictionPolicy == nil || *s.UnhealthyPodEvictionPolicy != policyv1.IfHealthyBudget ||
		s.Selector == nil || s.Selector.MatchLabels["app.kubernetes.io/instance"] != name {
		t.Errorf("PodDisruptionBudget %+v, want minAvailable 0 of the router's pods, standbys under the budget too", s)
	}
	return []client.Object{&role, &binding, &budget}
}

// The rendered PodDisruptionBudget, against the API server's eviction API: a drain may
// evict the active pod (it hands over on SIGTERM), one pod at a time, and no pod while
// none is active. No controller manager runs here, so the test writes the budget's
// status as Kubernetes' disruption controller computes it (disruptionStatus), and the
// pods' as kubelet would report them; the API server decides each eviction.
func TestDisruptionBudgetLetsADrainEvictTheActivePod(t *testing.T) {
	c := newClient(t, adminConfig())
	ns := newNamespace(t, c)
	startController(t, adminConfig(), ns, &controller.Reconciler{})
	spec := withReplicas(redirectSpec, 3)
	if err := c.Create(context.Background(), routerOf(ns, "egress", spec)); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, c, ns, "egress", v1.ConditionDegraded, metav1.ConditionFalse, controller.ReasonApplied)
	name := render.Name("egress")
	var d appsv1.Deployment
	get(t, c, ns, name, &d)
	pods := map[string]*corev1.Pod{}
	for _, pod := range []string{"active", "standby-a", "standby-b"} {
		pods[pod] = runPod(t, c, ns, pod, d.Spec.Template, pod == "active")
	}
	evict := func(pod string) error {
		return c.SubResource("eviction").Create(context.Background(), pods[pod], &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns}})
	}
	refused := func(pod, why string) {
		t.Helper()
		if err := evict(pod); !apierrors.IsTooManyRequests(err) {
			t.Errorf("evicting %s %s: %v, want refused (429)", pod, why, err)
		}
	}

	disruptionStatus(t, c, ns, name)
	if err := evict("active"); err != nil {
		t.Fatalf("a drain cannot evict the active pod: %v", err)
	}
	refused("standby-a", "right after the active pod (one at a time)")
	disruptionStatus(t, c, ns, name) // the active pod is going: none is active
	refused("standby-a", "while no pod is active")
	setReady(t, c, pods["standby-a"], true) // it took the Lease over
	disruptionStatus(t, c, ns, name)
	if err := evict("standby-b"); err != nil {
		t.Errorf("a drain cannot evict a standby while a pod is active: %v", err)
	}
	refused("standby-a", "right after a standby")
}

// runPod creates a pod of the router's template on a node of its own and reports it
// running, ready or not, as kubelet would.
func runPod(t *testing.T, c client.Client, namespace, name string, template corev1.PodTemplateSpec, ready bool) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: template.ObjectMeta, Spec: template.Spec}
	pod.Name, pod.Namespace, pod.Spec.NodeName = name, namespace, "node-"+name
	if err := c.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	setReady(t, c, pod, ready)
	return pod
}

func setReady(t *testing.T, c client.Client, pod *corev1.Pod, ready bool) {
	t.Helper()
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.Now()}}
	if err := c.Status().Update(context.Background(), pod); err != nil {
		t.Fatalf("pod %s ready=%v: %v", pod.Name, ready, err)
	}
}

// disruptionStatus writes the router's budget's status as the disruption controller
// computes it for an integer minAvailable: healthy = ready pods not being deleted,
// desired = minAvailable, allowed = healthy - desired, at least 0.
func disruptionStatus(t *testing.T, c client.Client, namespace, name string) {
	t.Helper()
	var budget policyv1.PodDisruptionBudget
	get(t, c, namespace, name, &budget)
	var pods corev1.PodList
	selector, err := metav1.LabelSelectorAsSelector(budget.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.List(context.Background(), &pods, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		t.Fatal(err)
	}
	healthy := int32(0)
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
			return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
		}) {
			healthy++
		}
	}
	desired := budget.Spec.MinAvailable.IntVal
	budget.Status = policyv1.PodDisruptionBudgetStatus{
		ObservedGeneration: budget.Generation, CurrentHealthy: healthy, DesiredHealthy: desired,
		DisruptionsAllowed: max(0, healthy-desired), ExpectedPods: int32(len(pods.Items)),
	}
	if err := c.Status().Update(context.Background(), &budget); err != nil {
		t.Fatalf("budget status: %v", err)
	}
}
