package controller_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	v1 "github.com/egress-router/egress-router/api/v1"
	"github.com/egress-router/egress-router/internal/controller"
	"github.com/egress-router/egress-router/internal/render"
	"github.com/egress-router/egress-router/test/proxyproc"
	"github.com/egress-router/egress-router/test/topology"
)

// controllerPkg is the controller binary's import path.
const controllerPkg = "github.com/egress-router/egress-router/controllers/egress-router-controller"

// The built binary, with a kubeconfig for its ServiceAccount and nothing but the RBAC
// of deploy/kubernetes/controller: it takes its Lease, serves health and metrics,
// reconciles a highly available router (creating its Role passes RBAC's escalation
// check: the controller holds what the Role grants), and on SIGTERM exits at once,
// releasing the Lease for the next replica.
func TestControllerBinaryWithTheManifestsRBAC(t *testing.T) {
	c := newClient(t, adminConfig())
	ns := newNamespace(t, c)
	account := installRBAC(t, c)
	user, err := apiServer.AddUser(envtest.User{Name: account}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// RBAC is enforced: the account may not read what it does not need.
	if err := newClient(t, user.Config()).List(context.Background(), &corev1.SecretList{}); !apierrors.IsForbidden(err) {
		t.Fatalf("the controller's account listing Secrets: %v, want Forbidden", err)
	}
	kubeconfigData, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := writeFile(t, "kubeconfig", kubeconfigData)
	bin := topology.Build(t, controllerPkg) + "/egress-router-controller"
	health, metrics := freeLoopbackAddr(t), freeLoopbackAddr(t)
	const leaseNamespace = "egress-router"
	p := (&proxyproc.Process{}).Run(t, nil, bin, "-kubeconfig="+kubeconfig, "-leader-election-namespace="+leaseNamespace,
		"-health-probe-bind-address="+health, "-metrics-bind-address="+metrics)

	for _, path := range []string{health + "/healthz", health + "/readyz"} {
		eventually(t, 20*time.Second, path, func() error {
			if err := p.Exited(); err != nil {
				t.Fatal(err)
			}
			_, err := httpGet(path)
			return err
		})
	}
	var lease coordinationv1.Lease
	eventually(t, 20*time.Second, "the controller to hold its Lease", func() error {
		if err := c.Get(context.Background(), key(leaseNamespace, "egress-router-controller.egress-router.io"), &lease); err != nil {
			return err
		}
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
			return fmt.Errorf("no holder")
		}
		return nil
	})

	spec := withReplicas(httpProxySpec, 2)
	if err := c.Create(context.Background(), routerOf(ns, "egress", spec)); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, c, ns, "egress", v1.ConditionProgressing, metav1.ConditionTrue, controller.ReasonRollingOut)
	checkLeaseRBACAndBudget(t, c, ns, render.Name("egress"))
	body, err := httpGet(metrics + "/metrics")
	if err != nil || !strings.Contains(body, `controller_runtime_reconcile_total{controller="egressrouter",result="success"}`) {
		t.Errorf("metrics: %v; want the reconcile counter of the egressrouter controller", err)
	}

	p.Signal(t, syscall.SIGTERM)
	if err := p.WaitExit(t, 15*time.Second, "SIGTERM"); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if err := c.Get(context.Background(), key(leaseNamespace, "egress-router-controller.egress-router.io"), &lease); err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("the Lease is still held by %q after a clean stop; the next replica would wait for it to expire", *h)
	}
}

// httpGet fetches http://addrPath and returns the body of a 200 answer.
func httpGet(addrPath string) (string, error) {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + addrPath)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", addrPath, resp.Status)
	}
	return string(body), err
}

// installRBAC creates the namespace, account and RBAC objects of the controller's
// kustomization, and returns the account's user name.
func installRBAC(t *testing.T, c client.Client) string {
	t.Helper()
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join("..", "..", "deploy", "kubernetes", "controller"))
	if err != nil {
		t.Fatal(err)
	}
	account := ""
	for _, r := range resources.Resources() {
		switch r.GetKind() {
		case "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
		default:
			continue
		}
		m, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: m}
		if err := c.Create(context.Background(), u); err != nil {
			t.Fatalf("create %s %s: %v", r.GetKind(), r.GetName(), err)
		}
		if r.GetKind() == "ServiceAccount" && r.GetName() == "egress-router-controller" {
			// The user name RBAC matches a ServiceAccount subject by.
			account = "system:serviceaccount:" + r.GetNamespace() + ":" + r.GetName()
		}
	}
	if account == "" {
		t.Fatal("the kustomization has no ServiceAccount egress-router-controller")
	}
	return account
}
