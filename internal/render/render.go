// Package render turns an EgressRouter into the objects that make it work: the
// ConfigMap holding its network configuration, the NetworkAttachmentDefinition with
// the same bytes, the Deployment of its pod, the Service clients use and the pod's
// ServiceAccount; and with replicas > 1 the Role and RoleBinding its
// egress-router-agent containers elect the active pod with, and a PodDisruptionBudget.
// The controller applies them; `egress-router-controller render` prints them. Rendering validates the configuration with pkg/config, so a router the
// plugin would refuse is never rendered.
package render

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsac "k8s.io/client-go/applyconfigurations/apps/v1"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"
	metaac "k8s.io/client-go/applyconfigurations/meta/v1"
	policyac "k8s.io/client-go/applyconfigurations/policy/v1"
	rbacac "k8s.io/client-go/applyconfigurations/rbac/v1"

	v1 "github.com/egress-router/egress-router/api/v1"
	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/version"
)

// Objects are the objects of one router, in the order they are applied: what the
// pod needs exists before the Deployment that creates it. Role, RoleBinding and
// DisruptionBudget are nil unless the router is highly available.
type Objects struct {
	ConfigMap        *coreac.ConfigMapApplyConfiguration
	ServiceAccount   *coreac.ServiceAccountApplyConfiguration
	Role             *rbacac.RoleApplyConfiguration
	RoleBinding      *rbacac.RoleBindingApplyConfiguration
	Network          *unstructured.Unstructured // Multus' NetworkAttachmentDefinition
	Service          *coreac.ServiceApplyConfiguration
	DisruptionBudget *policyac.PodDisruptionBudgetApplyConfiguration
	Deployment       *appsac.DeploymentApplyConfiguration
}

// Object is one rendered object: an apply configuration, or the
// NetworkAttachmentDefinition's *unstructured.Unstructured.
type Object struct {
	Kind   string
	Object any
}

// InOrder lists the objects that are rendered, in the order they are applied.
func (o *Objects) InOrder() []Object {
	list := []Object{{"ConfigMap", o.ConfigMap}, {"ServiceAccount", o.ServiceAccount}}
	if o.Role != nil {
		list = append(list, Object{"Role", o.Role}, Object{"RoleBinding", o.RoleBinding})
	}
	list = append(list, Object{"NetworkAttachmentDefinition", o.Network}, Object{"Service", o.Service})
	if o.DisruptionBudget != nil {
		list = append(list, Object{"PodDisruptionBudget", o.DisruptionBudget})
	}
	return append(list, Object{"Deployment", o.Deployment})
}

// NetworkGVK is Multus' NetworkAttachmentDefinition. The type is its metadata and
// spec.config alone, so it is rendered unstructured rather than through Multus'
// client module, which would bring a second generated clientset along.
var NetworkGVK = schema.GroupVersionKind{Group: "k8s.cni.cncf.io", Version: "v1", Kind: "NetworkAttachmentDefinition"}

// Images are the container images of the router pods.
type Images struct {
	HTTPProxy string
	DNSProxy  string
	Pause     string // redirect mode's container, which only keeps the pod alive
	Agent     string // egress-router-agent, in every pod of a highly available router
}

// DefaultImages are the images scripts/images.sh builds for this version, and the
// pause image Kubernetes itself uses.
func DefaultImages() Images {
	const repo = "localhost/egress-router/"
	return Images{
		HTTPProxy: repo + "egress-http-proxy:" + version.Version,
		DNSProxy:  repo + "egress-dns-proxy:" + version.Version,
		Pause:     "registry.k8s.io/pause:3.10",
		Agent:     repo + "egress-router-agent:" + version.Version,
	}
}

// Well-known keys of the rendered objects.
const (
	// ConfigKey is the ConfigMap key, and so the mounted file name, of the configuration.
	ConfigKey = "config.json"
	// ConfigDir is where the pod mounts the ConfigMap.
	ConfigDir = "/etc/egress-router"
	// ConfigHashAnnotation on the pod template changes with the configuration, so a
	// changed router recreates its pod: the plugin reads the network only at pod start.
	ConfigHashAnnotation = "egress-router.io/config-hash"
	// NetworksAnnotation asks Multus for the router's network as net1.
	NetworksAnnotation = "k8s.v1.cni.cncf.io/networks"
	// MetricsPort serves the proxies' metrics, /healthz and /readyz.
	MetricsPort = 9090
	// AgentMetricsPort serves egress-router-agent's metrics, /healthz and /readyz
	// (200 only in the pod holding the Lease).
	AgentMetricsPort = 9091
	// HTTPProxyPort is where egress-http-proxy listens.
	HTTPProxyPort = 8080
	// ManagedByLabel marks every rendered object, with the value FieldManager.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// FieldManager owns every field the controller applies.
	FieldManager = "egress-router-controller"
)

// Render renders the router's objects in its namespace, or returns an *InvalidError
// naming what is wrong with its spec. Owner references are set when the router has a
// UID (it exists in the API server), so deleting it deletes them.
func Render(r *v1.EgressRouter, images Images) (*Objects, error) {
	name := Name(r.Name)
	data, cfg, err := configuration(r, name)
	if err != nil {
		return nil, err
	}
	ports, err := listeningPorts(cfg)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{
		"app.kubernetes.io/name":      "egress-router",
		"app.kubernetes.io/instance":  name,
		"app.kubernetes.io/component": string(cfg.Mode),
		ManagedByLabel:                FieldManager,
	}
	selector := map[string]string{"app.kubernetes.io/name": "egress-router", "app.kubernetes.io/instance": name}
	o := &Objects{
		ConfigMap: coreac.ConfigMap(name, r.Namespace).
			WithLabels(labels).
			WithData(map[string]string{ConfigKey: string(data)}),
		ServiceAccount: coreac.ServiceAccount(name, r.Namespace).
			WithLabels(labels).
			// No token in every container: only a highly available router's agent
			// talks to the API server, with a token mounted for it alone.
			WithAutomountServiceAccountToken(false),
		Network:    network(name, r.Namespace, labels, data),
		Service:    service(name, r.Namespace, labels, selector, ports),
		Deployment: deployment(name, r.Namespace, labels, selector, cfg, data, ports, images, replicas(r)),
	}
	metas := []*metaac.ObjectMetaApplyConfiguration{o.ConfigMap.ObjectMetaApplyConfiguration, o.ServiceAccount.ObjectMetaApplyConfiguration, o.Service.ObjectMetaApplyConfiguration, o.Deployment.ObjectMetaApplyConfiguration}
	if HighlyAvailable(r) {
		if r.Namespace == "" {
			// A RoleBinding names its ServiceAccount subject with the namespace.
			return nil, &InvalidError{Problems: []string{"metadata.namespace: a router with spec.replicas > 1 binds its pods' ServiceAccount to a Role by namespace; give the router one"}}
		}
		o.Role, o.RoleBinding = leaseRBAC(name, r.Namespace, labels)
		o.DisruptionBudget = disruptionBudget(name, r.Namespace, labels, selector)
		metas = append(metas, o.Role.ObjectMetaApplyConfiguration, o.RoleBinding.ObjectMetaApplyConfiguration, o.DisruptionBudget.ObjectMetaApplyConfiguration)
	}
	if r.Namespace == "" {
		// Offline (render -f) without a namespace: the one kubectl applies to.
		for _, m := range metas {
			m.Namespace = nil
		}
	}
	if r.UID != "" {
		owner := metaac.OwnerReference().
			WithAPIVersion(v1.GroupVersion.String()).WithKind("EgressRouter").
			WithName(r.Name).WithUID(r.UID).
			WithController(true).WithBlockOwnerDeletion(true)
		for _, m := range metas {
			m.WithOwnerReferences(owner)
		}
		o.Network.SetOwnerReferences(ownerReferences(owner))
	}
	return o, nil
}

func ownerReferences(o *metaac.OwnerReferenceApplyConfiguration) []metav1.OwnerReference {
	return []metav1.OwnerReference{{
		APIVersion: *o.APIVersion, Kind: *o.Kind, Name: *o.Name, UID: *o.UID,
		Controller: o.Controller, BlockOwnerDeletion: o.BlockOwnerDeletion,
	}}
}

func network(name, namespace string, labels map[string]string, data []byte) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"config": string(data)}}}
	u.SetGroupVersionKind(NetworkGVK)
	u.SetName(name)
	u.SetNamespace(namespace)
	u.SetLabels(labels)
	return u
}

// port is one port the pod answers clients on.
type port struct {
	name     string
	number   int32
	protocol corev1.Protocol
}

// listeningPorts are the ports the configuration makes the pod answer on, each named
// for the Service.
func listeningPorts(cfg *config.Config) ([]port, error) {
	var ports []port
	switch cfg.Mode {
	case config.Redirect:
		for _, r := range cfg.IP.Redirect.Rules {
			ports = append(ports, namedPort(r.Port, corev1.Protocol(strings.ToUpper(string(r.Proto)))))
		}
	case config.HTTPProxy:
		ports = append(ports, port{"http-proxy", HTTPProxyPort, corev1.ProtocolTCP})
	case config.DNSProxy:
		for _, r := range cfg.DNSProxy.Rules {
			if r.Port == MetricsPort {
				return nil, &InvalidError{Problems: []string{fmt.Sprintf("spec.dnsProxy.destinations: port %d is the proxy's metrics port; choose another", MetricsPort)}}
			}
			ports = append(ports, namedPort(r.Port, corev1.ProtocolTCP))
		}
	}
	return ports, nil
}

// namedPort names a port after its protocol and number ("tcp-80"): unique per pod, and
// a valid port name (at most 15 characters, with a letter).
func namedPort(number uint16, protocol corev1.Protocol) port {
	return port{strings.ToLower(string(protocol)) + "-" + strconv.Itoa(int(number)), int32(number), protocol}
}

func service(name, namespace string, labels, selector map[string]string, ports []port) *coreac.ServiceApplyConfiguration {
	spec := coreac.ServiceSpec().WithSelector(selector)
	if len(ports) == 0 {
		// A redirect router with only a fallback forwards every port, which a
		// Service's port list cannot say: a headless Service names the pod's address
		// itself, on any port.
		spec.WithClusterIP(corev1.ClusterIPNone)
	}
	for _, p := range ports {
		spec.WithPorts(coreac.ServicePort().
			WithName(p.name).WithPort(p.number).WithProtocol(p.protocol).
			WithTargetPort(intstr.FromString(p.name)))
	}
	return coreac.Service(name, namespace).WithLabels(labels).WithSpec(spec)
}

func deployment(name, namespace string, labels, selector map[string]string, cfg *config.Config, data []byte, ports []port, images Images, replicas int32) *appsac.DeploymentApplyConfiguration {
	sum := sha256.Sum256(data)
	pod := coreac.PodSpec().
		WithServiceAccountName(name).
		// Only the agent talks to the API server, and it gets its token through its
		// own volume (agentContainer): the proxy never sees one.
		WithAutomountServiceAccountToken(false).
		WithSecurityContext(podSecurity(cfg, ports)).
		WithContainers(container(cfg, ports, images)).
		WithVolumes(coreac.Volume().WithName("config").
			WithConfigMap(coreac.ConfigMapVolumeSource().WithName(name)))
	// One pod only, and never two at once: the reserved addresses may live on one
	// interface only, so the old pod is gone before the new one starts.
	strategy := appsac.DeploymentStrategy().WithType(appsv1.RecreateDeploymentStrategyType)
	if replicas > 1 {
		pod.WithContainers(agentContainer(name, images)).
			WithVolumes(apiAccessVolume()).
			// Each pod on its own node: a standby on the active pod's node would
			// fail with it.
			WithAffinity(coreac.Affinity().WithPodAntiAffinity(coreac.PodAntiAffinity().
				WithRequiredDuringSchedulingIgnoredDuringExecution(coreac.PodAffinityTerm().
					WithTopologyKey(corev1.LabelHostname).
					WithLabelSelector(metaac.LabelSelector().WithMatchLabels(selector)))))
		strategy = rollingUpdate()
	}
	template := coreac.PodTemplateSpec().
		WithLabels(labels).
		WithAnnotations(map[string]string{
			NetworksAnnotation:   fmt.Sprintf(`[{"name": %q, "interface": "net1"}]`, name),
			ConfigHashAnnotation: hex.EncodeToString(sum[:16]),
		}).
		WithSpec(pod)
	return appsac.Deployment(name, namespace).
		WithLabels(labels).
		WithSpec(appsac.DeploymentSpec().
			WithReplicas(replicas).
			WithStrategy(strategy).
			WithSelector(metaac.LabelSelector().WithMatchLabels(selector)).
			WithTemplate(template))
}

func podSecurity(cfg *config.Config, ports []port) *coreac.PodSecurityContextApplyConfiguration {
	sc := coreac.PodSecurityContext().
		WithRunAsNonRoot(true).
		WithSeccompProfile(coreac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))
	if cfg.Mode != config.DNSProxy {
		return sc
	}
	for _, p := range ports {
		if p.number < 1024 {
			// A namespaced, "safe" sysctl lets the non-root proxy bind a low port
			// without any capability.
			return sc.WithSysctls(coreac.Sysctl().WithName("net.ipv4.ip_unprivileged_port_start").WithValue("0"))
		}
	}
	return sc
}

func container(cfg *config.Config, ports []port, images Images) *coreac.ContainerApplyConfiguration {
	c := coreac.Container().
		WithImagePullPolicy(corev1.PullIfNotPresent).
		WithSecurityContext(coreac.SecurityContext().
			WithAllowPrivilegeEscalation(false).
			WithReadOnlyRootFilesystem(true).
			WithCapabilities(coreac.Capabilities().WithDrop("ALL"))).
		// The directory, not a subPath: a directory mount also sees an edit of the
		// ConfigMap, which the proxies reload without a restart.
		WithVolumeMounts(coreac.VolumeMount().WithName("config").WithMountPath(ConfigDir).WithReadOnly(true))
	for _, p := range ports {
		c.WithPorts(coreac.ContainerPort().WithName(p.name).WithContainerPort(p.number).WithProtocol(p.protocol))
	}
	if cfg.Mode == config.Redirect {
		// The kernel does the work (the plugin's NAT in the pod's namespace); the
		// container only keeps the pod, and so its network namespace, alive. Its
		// ports are informational, as every containerPort is.
		return c.WithName("pause").WithImage(images.Pause).
			WithResources(resources("1m", "8Mi", "16Mi"))
	}
	image, args := images.DNSProxy, []string{"-config=" + ConfigDir + "/" + ConfigKey}
	if cfg.Mode == config.HTTPProxy {
		image = images.HTTPProxy
		args = append(args, "-listen=:"+strconv.Itoa(HTTPProxyPort))
	}
	args = append(args, "-metrics-listen=:"+strconv.Itoa(MetricsPort))
	probe := func(path string) *coreac.ProbeApplyConfiguration {
		return coreac.Probe().WithHTTPGet(coreac.HTTPGetAction().WithPath(path).WithPort(intstr.FromString("metrics")))
	}
	return c.WithName("proxy").WithImage(image).WithArgs(args...).
		WithPorts(coreac.ContainerPort().WithName("metrics").WithContainerPort(MetricsPort).WithProtocol(corev1.ProtocolTCP)).
		// Ready once the proxy relays; health and readiness are served off the
		// traffic ports.
		WithReadinessProbe(probe("/readyz").WithPeriodSeconds(5)).
		WithLivenessProbe(probe("/healthz").WithPeriodSeconds(10).WithFailureThreshold(3)).
		WithResources(resources("100m", "64Mi", "512Mi"))
}

func resources(cpu, memory, memoryLimit string) *coreac.ResourceRequirementsApplyConfiguration {
	return coreac.ResourceRequirements().
		WithRequests(corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}).
		WithLimits(corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(memoryLimit)})
}
