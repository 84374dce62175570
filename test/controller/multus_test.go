package controller_test

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/egress-router/egress-router/api/v1"
	"github.com/egress-router/egress-router/internal/controller"
	"github.com/egress-router/egress-router/internal/render"
	"github.com/egress-router/egress-router/test/apiserver"
)

// On a cluster without Multus, a router is Degraded with a reason that says so, and no
// Deployment is created (its pod would start without net1); once Multus' CRD is
// installed the controller carries on by itself.
func TestWithoutMultusTheRouterWaitsForIt(t *testing.T) {
	env, err := apiserver.Start(routerCRD)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Stop() })
	c := newClient(t, env.Config)
	ns := newNamespace(t, c)
	startController(t, env.Config, ns, &controller.Reconciler{MultusRetry: 200 * time.Millisecond})
	if err := c.Create(context.Background(), routerOf(ns, "egress", *redirectSpec.DeepCopy())); err != nil {
		t.Fatal(err)
	}
	r := waitCondition(t, c, ns, "egress", v1.ConditionDegraded, metav1.ConditionTrue, controller.ReasonMultusMissing)
	if msg := meta.FindStatusCondition(r.Status.Conditions, v1.ConditionDegraded).Message; !strings.Contains(msg, "install Multus") {
		t.Errorf("Degraded message %q does not tell the admin to install Multus", msg)
	}
	var d appsv1.Deployment
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: render.Name("egress")}, &d); !apierrors.IsNotFound(err) {
		t.Errorf("a Deployment exists without its network (%v)", err)
	}

	if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: []string{multusCRD}, ErrorIfPathMissing: true}); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, c, ns, "egress", v1.ConditionDegraded, metav1.ConditionFalse, controller.ReasonApplied)
	waitCondition(t, c, ns, "egress", v1.ConditionProgressing, metav1.ConditionTrue, controller.ReasonRollingOut)
}
