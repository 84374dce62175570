package controller_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/egress-router/egress-router/api/v1"
	"github.com/egress-router/egress-router/pkg/controller"
	"github.com/egress-router/egress-router/test/topology"
)

// controllerPkg is the controller binary's import path.
const controllerPkg = "github.com/egress-router/egress-router/controllers/egress-router-controller"

// The built binary, given a kubeconfig as an admin would run it outside the cluster:
// it takes its Lease, serves health and metrics, reconciles a router, and on SIGTERM
// exits at once, releasing the Lease for the next replica.
func TestControllerBinaryWithAKubeconfig(t *testing.T) {
	c := newClient(t, adminConfig())
	ns := newNamespace(t, c)
	bin := topology.Build(t, controllerPkg) + "/egress-router-controller"
	kubeconfig := writeFile(t, "kubeconfig", apiServer.KubeConfig)
	health, metrics := freeLoopbackAddr(t), freeLoopbackAddr(t)
	p := startProcess(t, nil, bin, "-kubeconfig="+kubeconfig, "-leader-election-namespace="+ns,
		"-health-probe-bind-address="+health, "-metrics-bind-address="+metrics)

	for _, path := range []string{health + "/healthz", health + "/readyz"} {
		eventually(t, 20*time.Second, path, func() error {
			if err := p.running(); err != nil {
				t.Fatal(err)
			}
			_, err := httpGet(path)
			return err
		})
	}
	var lease coordinationv1.Lease
	eventually(t, 20*time.Second, "the controller to hold its Lease", func() error {
		if err := c.Get(context.Background(), key(ns, "egress-router-controller.egress-router.io"), &lease); err != nil {
			return err
		}
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
			return fmt.Errorf("no holder")
		}
		return nil
	})

	if err := c.Create(context.Background(), routerOf(ns, "egress", *httpProxySpec.DeepCopy())); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, c, ns, "egress", v1.ConditionProgressing, metav1.ConditionTrue, controller.ReasonRollingOut)
	body, err := httpGet(metrics + "/metrics")
	if err != nil || !strings.Contains(body, `controller_runtime_reconcile_total{controller="egressrouter",result="success"}`) {
		t.Errorf("metrics: %v; want the reconcile counter of the egressrouter controller", err)
	}

	if err := p.stop(t, 15*time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if err := c.Get(context.Background(), key(ns, "egress-router-controller.egress-router.io"), &lease); err != nil {
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
