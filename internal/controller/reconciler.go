// Package controller reconciles EgressRouters: it renders each router's objects
// (internal/render), applies them with server-side apply under one field manager, owned by
// the router so deleting it deletes them, and reports in status.conditions what it
// found. It is level-based: every call starts from the router and what the API server
// holds, and remembers nothing.
package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	v1 "github.com/egress-router/egress-router/api/v1"
	"github.com/egress-router/egress-router/internal/render"
)

// Reconciler makes each EgressRouter's objects what its spec says.
type Reconciler struct {
	Client client.Client
	Images render.Images
	// MultusRetry is how soon a router is tried again while the API server does not
	// serve NetworkAttachmentDefinitions (Multus not installed yet); 30s when zero.
	MultusRetry time.Duration
}

// +kubebuilder:rbac:groups=egress-router.io,resources=egressrouters,verbs=get;list;watch
// +kubebuilder:rbac:groups=egress-router.io,resources=egressrouters/status,verbs=update
// blockOwnerDeletion needs update on the owner's finalizers where the
// OwnerReferencesPermissionEnforcement admission plugin runs (OpenShift).
// +kubebuilder:rbac:groups=egress-router.io,resources=egressrouters/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=configmaps;services;serviceaccounts,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=k8s.cni.cncf.io,resources=network-attachment-definitions,verbs=get;list;watch;create;patch
// A highly available router's Role, RoleBinding and PodDisruptionBudget are deleted
// when it goes back to one replica.
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete
// The API server lets the controller grant only what it holds itself (RBAC's escalation
// check), so it holds what the routers' Role grants their agents.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update
// +kubebuilder:rbac:groups="";events.k8s.io,resources=events,verbs=create;patch

// Reconcile renders and applies one router's objects and writes its status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var router v1.EgressRouter
	if err := r.Client.Get(ctx, req.NamespacedName, &router); err != nil {
		// Gone: its objects go with it, through their owner references.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !router.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	before := router.Status.DeepCopy()
	outcome := r.apply(ctx, &router)
	deployment := outcome.deployment
	if deployment == nil {
		// Nothing applied: what runs is what the cache last saw.
		deployment = &appsv1.Deployment{}
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: router.Namespace, Name: render.Name(router.Name)}, deployment)
		if apierrors.IsNotFound(err) {
			deployment = nil
		} else if err != nil {
			return ctrl.Result{}, fmt.Errorf("read the Deployment of %s: %w", req.NamespacedName, err)
		}
	}
	setConditions(&router, outcome, deployment)
	// Only a change is written: an identical update would still wake the watchers.
	if !equality.Semantic.DeepEqual(before, &router.Status) {
		if err := r.Client.Status().Update(ctx, &router); err != nil {
			return ctrl.Result{}, fmt.Errorf("write the status of %s: %w", req.NamespacedName, err)
		}
	}
	if outcome.err != nil {
		return ctrl.Result{}, outcome.err
	}
	return ctrl.Result{RequeueAfter: outcome.retry}, nil
}

// outcome is what applying the router's objects came to.
type outcome struct {
	applied    bool               // every object applied
	deployment *appsv1.Deployment // as the API server answered the apply
	reason     string             // why not, as a condition reason
	message    string
	retry      time.Duration // try again after this long, without an error
	err        error         // a transient failure: retried with backoff
}

// Condition reasons.
const (
	ReasonInvalidSpec            = "InvalidSpec"
	ReasonMultusMissing          = "NetworkAttachmentDefinitionUnsupported"
	ReasonApplyFailed            = "ApplyFailed"
	ReasonApplied                = "Applied"
	ReasonDeploymentAvailable    = "DeploymentAvailable"
	ReasonDeploymentNotAvailable = "DeploymentNotAvailable"
	ReasonDeploymentMissing      = "DeploymentMissing"
	ReasonRollingOut             = "RollingOut"
	ReasonRolledOut              = "RolledOut"
)

// apply renders the router and applies its objects in order. An invalid spec applies
// nothing, so what ran before keeps running.
func (r *Reconciler) apply(ctx context.Context, router *v1.EgressRouter) outcome {
	objects, err := render.Render(router, r.Images)
	var invalid *render.InvalidError
	if errors.As(err, &invalid) {
		return outcome{reason: ReasonInvalidSpec, message: "the spec is invalid, nothing was changed: " + invalid.Error()}
	}
	if err != nil {
		return outcome{reason: ReasonApplyFailed, message: err.Error(), err: err}
	}
	for _, s := range objects.InOrder() {
		var obj runtime.ApplyConfiguration
		switch o := s.Object.(type) {
		case *unstructured.Unstructured: // the NetworkAttachmentDefinition
			obj = client.ApplyConfigurationFromUnstructured(o)
		case runtime.ApplyConfiguration:
			obj = o
		}
		err := r.Client.Apply(ctx, obj, client.FieldOwner(render.FieldManager), client.ForceOwnership)
		switch {
		case err == nil:
		case s.Kind == "NetworkAttachmentDefinition" && meta.IsNoMatchError(err):
			// Without the network the pod would start without net1: stop before
			// the Deployment, and look again later for Multus.
			retry := r.MultusRetry
			if retry == 0 {
				retry = 30 * time.Second
			}
			log.FromContext(ctx).Info("NetworkAttachmentDefinitions are not served; is Multus installed?", "retryAfter", retry)
			return outcome{reason: ReasonMultusMissing, retry: retry, message: fmt.Sprintf(
				"the API server does not serve %s (%s): install Multus, whose CRD defines it; the Deployment is not created until then",
				render.NetworkGVK.Kind, render.NetworkGVK.GroupVersion())}
		default:
			return outcome{reason: ReasonApplyFailed, message: fmt.Sprintf("apply the %s: %v", s.Kind, err), err: err}
		}
	}
	if objects.Role == nil {
		if err := r.deleteHighAvailability(ctx, router); err != nil {
			return outcome{reason: ReasonApplyFailed, message: err.Error(), err: err}
		}
	}
	// The apply's answer is the Deployment as it now is (its new generation
	// included), where the cache may still hold the one before this edit.
	var deployment appsv1.Deployment
	if err := convert(objects.Deployment, &deployment); err != nil {
		return outcome{reason: ReasonApplyFailed, message: err.Error(), err: err}
	}
	return outcome{applied: true, deployment: &deployment, reason: ReasonApplied, message: "every object is applied"}
}

// deleteHighAvailability deletes what a router rendered while it had more than one
// replica. Applying a smaller set of objects does not remove the others (server-side
// apply only forgets fields within an object), so they are deleted here, after the
// Deployment without the agent is applied: the agents stop using the Role with their
// pods. Only objects the router controls are deleted, and only that very object (its
// UID), never one created in the meantime under the same name.
func (r *Reconciler) deleteHighAvailability(ctx context.Context, router *v1.EgressRouter) error {
	key := client.ObjectKey{Namespace: router.Namespace, Name: render.Name(router.Name)}
	for _, obj := range []client.Object{&policyv1.PodDisruptionBudget{}, &rbacv1.RoleBinding{}, &rbacv1.Role{}} {
		if err := r.Client.Get(ctx, key, obj); apierrors.IsNotFound(err) {
			continue
		} else if err != nil {
			return fmt.Errorf("read the %T %s: %w", obj, key.Name, err)
		}
		if !metav1.IsControlledBy(obj, router) {
			continue
		}
		uid := obj.GetUID()
		err := r.Client.Delete(ctx, obj, client.Preconditions{UID: &uid})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete the %T %s of a router with one replica: %w", obj, key.Name, err)
		}
	}
	return nil
}

// convert copies an apply configuration holding the API server's answer into the
// object type: the two share their JSON form.
func convert(from any, to any) error {
	data, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, to)
}

// SetupWithManager registers the reconciler, watching the routers and the objects they
// own. NetworkAttachmentDefinitions are watched when the API server serves them at
// start; otherwise a router is tried again every MultusRetry until it does.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named("egressrouter").
		// Routers are independent, and a reconcile mostly waits on the API server.
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: 4}).
		// Spec changes only: the controller's own status writes must not wake it.
		For(&v1.EgressRouter{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&corev1.Service{}).
		Owns(&appsv1.Deployment{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Owns(&policyv1.PodDisruptionBudget{})
	if _, err := mgr.GetRESTMapper().RESTMapping(render.NetworkGVK.GroupKind(), render.NetworkGVK.Version); err == nil {
		network := &unstructured.Unstructured{}
		network.SetGroupVersionKind(render.NetworkGVK)
		b = b.Owns(network)
	} else if !meta.IsNoMatchError(err) {
		return fmt.Errorf("look up %s: %w", render.NetworkGVK.Kind, err)
	} else {
		mgr.GetLogger().Info("NetworkAttachmentDefinitions are not served, so not watched; is Multus installed?")
	}
	return b.Complete(r)
}

// CacheByObject limits the manager's cache of the kinds a router owns to the objects
// the controller renders (their managed-by label), so a cluster's other ConfigMaps,
// Services and Deployments never take its memory. NetworkAttachmentDefinitions are
// left out: naming a kind here makes the manager fail to start where it is not served,
// and a cluster holds few of them.
func CacheByObject() map[client.Object]cache.ByObject {
	rendered := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{render.ManagedByLabel: render.FieldManager})}
	return map[client.Object]cache.ByObject{
		&corev1.ConfigMap{}:             rendered,
		&corev1.ServiceAccount{}:        rendered,
		&corev1.Service{}:               rendered,
		&appsv1.Deployment{}:            rendered,
		&rbacv1.Role{}:                  rendered,
		&rbacv1.RoleBinding{}:           rendered,
		&policyv1.PodDisruptionBudget{}: rendered,
	}
}
