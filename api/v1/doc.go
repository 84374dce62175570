// Package v1 is the egress-router.io/v1 API: the EgressRouter resource, one object that
// a controller turns into a working egress router (its network attachment, workload,
// Service and account). Its spec is a field-for-field superset of OpenShift's
// network.operator.openshift.io/v1 EgressRouter, so an OpenShift manifest works here
// with only its apiVersion changed. Other programs may import these types.
//
// +kubebuilder:object:generate=true
// +groupName=egress-router.io
package v1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

// GroupVersion is the API group and version of the types in this package.
var GroupVersion = schema.GroupVersion{Group: "egress-router.io", Version: "v1"}

var (
	// SchemeBuilder registers the types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}
	// AddToScheme adds the types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func init() {
	SchemeBuilder.Register(&EgressRouter{}, &EgressRouterList{})
}
