package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/egress-router/egress-router/api/v1"
	"github.com/egress-router/egress-router/internal/controller"
	"github.com/egress-router/egress-router/internal/render"
)

// scheme knows the built-in kinds and EgressRouter.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := v1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

// newClient is a direct (uncached) client of the API server at cfg.
func newClient(t testing.TB, cfg *rest.Config) client.Client {
	t.Helper()
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newNamespace creates a namespace for one test. The API server alone never finishes
// deleting a namespace (that is kube-controller-manager's job), so it is left behind;
// each test's namespace has a name of its own.
func newNamespace(t testing.TB, c client.Client) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "er-test-"}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// startController runs the controller in this process against cfg, watching only
// namespace, until the test ends.
func startController(t testing.TB, cfg *rest.Config, namespace string, r *controller.Reconciler) {
	t.Helper()
	byObject := controller.CacheByObject()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Cache:   cache.Options{DefaultNamespaces: map[string]cache.Config{namespace: {}}, ByObject: byObject},
		Metrics: metricsserver.Options{BindAddress: "0"},
		// Each test runs its own manager in this one process.
		Controller: ctrlconfig.Controller{SkipNameValidation: ptr(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Client = mgr.GetClient()
	if r.Images == (render.Images{}) {
		r.Images = render.DefaultImages()
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller: %v", err)
		}
	})
}

// routerOf builds an EgressRouter in namespace with the topology's addressing.
func routerOf(namespace, name string, spec v1.EgressRouterSpec) *v1.EgressRouter {
	if spec.Addresses == nil {
		spec.Addresses = []v1.EgressRouterAddress{{IP: "192.0.2.99/24", Gateway: "192.0.2.1"}}
	}
	return &v1.EgressRouter{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: spec}
}

// The three modes' specs, as the traffic tests serve them.
var (
	redirectSpec = v1.EgressRouterSpec{
		Mode: v1.ModeRedirect,
		Redirect: &v1.RedirectConfig{RedirectRules: []v1.L4RedirectRule{
			{DestinationIP: "203.0.113.25", Port: 80, Protocol: "TCP"},
			{DestinationIP: "203.0.113.26", Port: 8080, Protocol: "TCP", TargetPort: 80},
			{DestinationIP: "203.0.113.53", Port: 53, Protocol: "UDP"},
		}},
	}
	httpProxySpec = v1.EgressRouterSpec{
		Mode:      v1.ModeHTTPProxy,
		HTTPProxy: &v1.HTTPProxyConfig{Destinations: []string{"!203.0.113.66", "203.0.113.0/24"}},
	}
	dnsProxySpec = v1.EgressRouterSpec{
		Mode:     v1.ModeDNSProxy,
		DNSProxy: &v1.DNSProxyConfig{Destinations: []string{"80 203.0.113.25", "8443 203.0.113.26 80"}},
	}
)

// eventually polls cond every 50ms for up to within and fails the test with what and
// cond's last error if it never holds.
func eventually(t testing.TB, within time.Duration, what string, cond func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = cond(); err == nil {
			return
		}
	}
	t.Fatalf("timed out after %v waiting for %s: %v", within, what, err)
}

// get reads an object, failing the test if it cannot.
func get(t testing.TB, c client.Client, namespace, name string, obj client.Object) {
	t.Helper()
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, obj); err != nil {
		t.Fatalf("get %T %s/%s: %v", obj, namespace, name, err)
	}
}

// network reads a router's NetworkAttachmentDefinition.
func network(t testing.TB, c client.Client, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(render.NetworkGVK)
	get(t, c, namespace, name, u)
	return u
}

// networkConfig is a NetworkAttachmentDefinition's spec.config.
func networkConfig(t testing.TB, u *unstructured.Unstructured) string {
	t.Helper()
	conf, _, err := unstructured.NestedString(u.Object, "spec", "config")
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

// waitCondition waits until the router's status reports the condition with status
// and reason for its current generation, and returns the router.
func waitCondition(t testing.TB, c client.Client, namespace, name, condition string, status metav1.ConditionStatus, reason string) *v1.EgressRouter {
	t.Helper()
	var r v1.EgressRouter
	eventually(t, 10*time.Second, condition+"="+string(status)+" ("+reason+")", func() error {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &r); err != nil {
			return err
		}
		got := meta.FindStatusCondition(r.Status.Conditions, condition)
		if got == nil || got.Status != status || got.Reason != reason || got.ObservedGeneration != r.Generation || r.Status.ObservedGeneration != r.Generation {
			return fmt.Errorf("conditions %+v at generation %d", r.Status.Conditions, r.Generation)
		}
		return nil
	})
	return &r
}

// markAvailable does what kubelet and the Deployment controller would once the
// router's pods run: it reports the Deployment's current template rolled out with one
// pod available (of several, only the active one is ever ready), through the status
// subresource.
func markAvailable(t testing.TB, c client.Client, d *appsv1.Deployment) {
	t.Helper()
	n := *d.Spec.Replicas
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: 1, AvailableReplicas: 1, UnavailableReplicas: n - 1,
		Conditions: []appsv1.DeploymentCondition{{
			Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable",
			Message: "Deployment has minimum availability.", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}},
	}
	if err := c.Status().Update(context.Background(), d); err != nil {
		t.Fatalf("mark Deployment %s available: %v", d.Name, err)
	}
}

func ptr[T any](v T) *T { return &v }

// withReplicas is a copy of spec with n replicas (n > 1: an active/standby router).
func withReplicas(spec v1.EgressRouterSpec, n int32) v1.EgressRouterSpec {
	spec = *spec.DeepCopy()
	spec.Replicas = &n
	return spec
}

func key(namespace, name string) client.ObjectKey {
	return client.ObjectKey{Namespace: namespace, Name: name}
}
