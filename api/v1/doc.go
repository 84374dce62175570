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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of the types in this package.
var GroupVersion = schema.GroupVersion{Group: "egress-router.io", Version: "v1"}

var (
	// SchemeBuilder registers the types with a runtime.Scheme. Only apimachinery is
	// needed, so importing the types brings no controller framework along.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &EgressRouter{}, &EgressRouterList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
