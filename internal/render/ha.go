package render

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsac "k8s.io/client-go/applyconfigurations/apps/v1"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"
	metaac "k8s.io/client-go/applyconfigurations/meta/v1"
	policyac "k8s.io/client-go/applyconfigurations/policy/v1"
	rbacac "k8s.io/client-go/applyconfigurations/rbac/v1"
)

// apiAccessDir is where Kubernetes mounts a pod's API credentials, and so where
// rest.InClusterConfig looks for them.
const apiAccessDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// agentContainer runs egress-router-agent with the arguments agreed with it: the
// configuration the proxies read, the router's Lease (named like every object of the
// router) and the interface holding the reserved addresses. Its namespace and identity
// come from POD_NAMESPACE and POD_NAME.
func agentContainer(name string, images Images) *coreac.ContainerApplyConfiguration {
	fromPod := func(env, field string) *coreac.EnvVarApplyConfiguration {
		return coreac.EnvVar().WithName(env).WithValueFrom(coreac.EnvVarSource().
			WithFieldRef(coreac.ObjectFieldSelector().WithAPIVersion("v1").WithFieldPath(field)))
	}
	probe := func(path string) *coreac.ProbeApplyConfiguration {
		return coreac.Probe().WithHTTPGet(coreac.HTTPGetAction().WithPath(path).WithPort(intstr.FromString("agent-metrics")))
	}
	return coreac.Container().
		WithName("agent").
		WithImage(images.Agent).
		WithImagePullPolicy(corev1.PullIfNotPresent).
		WithArgs(
			"-config="+ConfigDir+"/"+ConfigKey,
			"-lease-name="+name,
			"-interface=net1",
			"-metrics-listen=:"+strconv.Itoa(AgentMetricsPort),
		).
		WithEnv(fromPod("POD_NAME", "metadata.name"), fromPod("POD_NAMESPACE", "metadata.namespace")).
		WithPorts(coreac.ContainerPort().WithName("agent-metrics").WithContainerPort(AgentMetricsPort).WithProtocol(corev1.ProtocolTCP)).
		// Ready only while active, checked every second and given up at the first
		// failure: the Service's endpoints follow the Lease holder as closely as the
		// kubelet allows.
		WithReadinessProbe(probe("/readyz").WithPeriodSeconds(1).WithFailureThreshold(1)).
		WithLivenessProbe(probe("/healthz").WithPeriodSeconds(10).WithFailureThreshold(3)).
		// Root with NET_ADMIN (addresses, routes, rules: netlink in the pod's own
		// network namespace) and NET_RAW (gratuitous ARP, unsolicited neighbour
		// advertisements), and nothing else: no other capability, no escalation, a
		// read-only root.
		WithSecurityContext(coreac.SecurityContext().
			WithRunAsUser(0).
			WithRunAsNonRoot(false).
			WithAllowPrivilegeEscalation(false).
			WithReadOnlyRootFilesystem(true).
			WithCapabilities(coreac.Capabilities().WithDrop("ALL").WithAdd("NET_ADMIN", "NET_RAW"))).
		WithVolumeMounts(
			coreac.VolumeMount().WithName("config").WithMountPath(ConfigDir).WithReadOnly(true),
			coreac.VolumeMount().WithName("api-access").WithMountPath(apiAccessDir).WithReadOnly(true),
		).
		WithResources(resources("10m", "32Mi", "128Mi"))
}

// apiAccessVolume holds what the kubelet would mount into every container of a pod
// that automounts its ServiceAccount token (a short-lived token, the cluster's CA,
// the namespace), mounted into the agent alone.
func apiAccessVolume() *coreac.VolumeApplyConfiguration {
	return coreac.Volume().WithName("api-access").WithProjected(coreac.ProjectedVolumeSource().WithSources(
		coreac.VolumeProjection().WithServiceAccountToken(coreac.ServiceAccountTokenProjection().
			WithPath("token").WithExpirationSeconds(3607)),
		coreac.VolumeProjection().WithConfigMap(coreac.ConfigMapProjection().WithName("kube-root-ca.crt").
			WithItems(coreac.KeyToPath().WithKey("ca.crt").WithPath("ca.crt"))),
		coreac.VolumeProjection().WithDownwardAPI(coreac.DownwardAPIProjection().
			WithItems(coreac.DownwardAPIVolumeFile().WithPath("namespace").
				WithFieldRef(coreac.ObjectFieldSelector().WithAPIVersion("v1").WithFieldPath("metadata.namespace")))),
	))
}

// rollingUpdate: safe, as the Lease, not the pod count, decides who holds the addresses
// and the active pod hands over on SIGTERM; maxUnavailable 100%, as only the active pod
// is ever ready (available), so any less waits for ever. Cost: the old pods stop as soon
// as the new one is created, so the router is down for a pod's start, as with Recreate.
func rollingUpdate() *appsac.DeploymentStrategyApplyConfiguration {
	return appsac.DeploymentStrategy().
		WithType(appsv1.RollingUpdateDeploymentStrategyType).
		WithRollingUpdate(appsac.RollingUpdateDeployment().
			WithMaxSurge(intstr.FromInt32(1)).
			WithMaxUnavailable(intstr.FromString("100%")))
}

// leaseRBAC lets the router's pods elect their active one and report it: the Lease
// named after the router (create cannot be limited to a name: the name is not known
// to the authorizer before the object exists), and events. Nothing else.
func leaseRBAC(name, namespace string, labels map[string]string) (*rbacac.RoleApplyConfiguration, *rbacac.RoleBindingApplyConfiguration) {
	role := rbacac.Role(name, namespace).WithLabels(labels).WithRules(
		rbacac.PolicyRule().WithAPIGroups("coordination.k8s.io").WithResources("leases").WithVerbs("create"),
		rbacac.PolicyRule().WithAPIGroups("coordination.k8s.io").WithResources("leases").WithResourceNames(name).WithVerbs("get", "update"),
		rbacac.PolicyRule().WithAPIGroups("", "events.k8s.io").WithResources("events").WithVerbs("create", "patch"),
	)
	binding := rbacac.RoleBinding(name, namespace).WithLabels(labels).
		WithRoleRef(rbacac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("Role").WithName(name)).
		WithSubjects(rbacac.Subject().WithKind("ServiceAccount").WithName(name).WithNamespace(namespace))
	return role, binding
}

// disruptionBudget: budgets count ready pods, and only the active one is: minAvailable
// 0 allows one eviction while a pod is active (a drain evicts it; it hands over in about
// 0.2 s) and none until a pod is active again; IfHealthyBudget puts standbys under that
// count. It cannot keep the last pod: it cannot tell the active pod alone from one with
// standbys (see the README).
func disruptionBudget(name, namespace string, labels, selector map[string]string) *policyac.PodDisruptionBudgetApplyConfiguration {
	return policyac.PodDisruptionBudget(name, namespace).WithLabels(labels).
		WithSpec(policyac.PodDisruptionBudgetSpec().
			WithMinAvailable(intstr.FromInt32(0)).
			WithUnhealthyPodEvictionPolicy(policyv1.IfHealthyBudget).
			WithSelector(metaac.LabelSelector().WithMatchLabels(selector)))
}
