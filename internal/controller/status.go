package controller

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/egress-router/egress-router/api/v1"
)

// setConditions writes Available, Progressing and Degraded from the outcome of
// applying the spec and the router's Deployment (nil when there is none). Available
// follows the Deployment whatever the outcome: an invalid edit leaves the previous
// pod running, and status says so.
func setConditions(r *v1.EgressRouter, o outcome, d *appsv1.Deployment) {
	gen := r.Generation
	r.Status.ObservedGeneration = gen
	set := func(t string, ok bool, reason, message string) {
		status := metav1.ConditionFalse
		if ok {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&r.Status.Conditions, metav1.Condition{
			Type: t, Status: status, Reason: reason, Message: message, ObservedGeneration: gen,
		})
	}

	if o.applied {
		set(v1.ConditionDegraded, false, o.reason, o.message)
	} else {
		set(v1.ConditionDegraded, true, o.reason, o.message)
	}

	available, availableMessage := deploymentAvailable(d)
	switch {
	case d == nil:
		set(v1.ConditionAvailable, false, ReasonDeploymentMissing, "the router has no Deployment yet")
	case available:
		set(v1.ConditionAvailable, true, ReasonDeploymentAvailable, availableMessage)
	default:
		set(v1.ConditionAvailable, false, ReasonDeploymentNotAvailable, availableMessage)
	}

	switch {
	case !o.applied:
		set(v1.ConditionProgressing, false, o.reason, "not rolling out: "+o.message)
	case d == nil || !rolledOut(d):
		set(v1.ConditionProgressing, true, ReasonRollingOut, "waiting for the Deployment to roll out the current spec and become available")
	default:
		set(v1.ConditionProgressing, false, ReasonRolledOut, "the Deployment runs the current spec")
	}
}

// deploymentAvailable reads the Deployment controller's verdict: available with at
// least one ready pod. With replicas > 1 that one is the active pod, the only one ever
// ready (the standbys' agents fail their readiness), and it is the whole router.
func deploymentAvailable(d *appsv1.Deployment) (bool, string) {
	if d == nil {
		return false, ""
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			if c.Status == corev1.ConditionTrue && d.Status.AvailableReplicas > 0 {
				return true, fmt.Sprintf("Deployment %s has %d available pod(s)", d.Name, d.Status.AvailableReplicas)
			}
			return false, fmt.Sprintf("Deployment %s is not available: %s", d.Name, c.Message)
		}
	}
	return false, fmt.Sprintf("Deployment %s has no available pod yet", d.Name)
}

// rolledOut reports whether the Deployment controller has seen the latest template,
// every pod runs it and one of them is available: the active one, where there are
// standbys, which never become ready.
func rolledOut(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	ok, _ := deploymentAvailable(d)
	return ok && s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.Replicas == want
}
