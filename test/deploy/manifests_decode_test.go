package deploy

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// networkAttachmentDefinition is Multus' k8s.cni.cncf.io/v1 type, whose whole schema is
// spec.config. Declared here rather than imported: the upstream client module would
// bring client-go along for two fields.
type networkAttachmentDefinition struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Config string `json:"config"`
	} `json:"spec"`
}

// bundle is one rendered kustomization, every object decoded into its API type.
type bundle struct {
	deployments     []appsv1.Deployment
	daemonSets      []appsv1.DaemonSet
	services        []corev1.Service
	configMaps      []corev1.ConfigMap
	namespaces      []corev1.Namespace
	serviceAccounts []corev1.ServiceAccount
	networks        []networkAttachmentDefinition
	crds            []apiextensionsv1.CustomResourceDefinition
	clusterRoles    []rbacv1.ClusterRole
	clusterBindings []rbacv1.ClusterRoleBinding
	roles           []rbacv1.Role
	roleBindings    []rbacv1.RoleBinding
}

// apiVersions is every kind the manifests may hold, with its one accepted apiVersion.
// A kind not listed fails the test, so nothing reaches a cluster undecoded.
var apiVersions = map[string]string{
	"Deployment":                  "apps/v1",
	"DaemonSet":                   "apps/v1",
	"Service":                     "v1",
	"ConfigMap":                   "v1",
	"Namespace":                   "v1",
	"ServiceAccount":              "v1",
	"NetworkAttachmentDefinition": "k8s.cni.cncf.io/v1",
	"CustomResourceDefinition":    "apiextensions.k8s.io/v1",
	"ClusterRole":                 "rbac.authorization.k8s.io/v1",
	"ClusterRoleBinding":          "rbac.authorization.k8s.io/v1",
	"Role":                        "rbac.authorization.k8s.io/v1",
	"RoleBinding":                 "rbac.authorization.k8s.io/v1",
}

// render builds the kustomization in dir in process, as `kubectl apply -k` would, and
// decodes each object strictly: a field the API type does not have is an error.
func render(t *testing.T, dir string) *bundle {
	t.Helper()
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	b := &bundle{}
	for _, r := range resources.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %s/%s as YAML: %v", dir, r.GetKind(), r.GetName(), err)
		}
		if err := b.add(r.GetKind(), doc); err != nil {
			t.Errorf("%s: %s/%s: %v", dir, r.GetKind(), r.GetName(), err)
		}
	}
	return b
}

func (b *bundle) add(kind string, doc []byte) error {
	var meta metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return err
	}
	want, known := apiVersions[kind]
	if !known {
		return fmt.Errorf("kind %s is not one the manifests are checked for", kind)
	}
	if meta.APIVersion != want {
		return fmt.Errorf("apiVersion %q, want %q", meta.APIVersion, want)
	}
	switch kind {
	case "Deployment":
		return decodeInto(doc, &b.deployments)
	case "DaemonSet":
		return decodeInto(doc, &b.daemonSets)
	case "Service":
		return decodeInto(doc, &b.services)
	case "ConfigMap":
		return decodeInto(doc, &b.configMaps)
	case "Namespace":
		return decodeInto(doc, &b.namespaces)
	case "ServiceAccount":
		return decodeInto(doc, &b.serviceAccounts)
	case "NetworkAttachmentDefinition":
		return decodeInto(doc, &b.networks)
	case "CustomResourceDefinition":
		return decodeInto(doc, &b.crds)
	case "ClusterRole":
		return decodeInto(doc, &b.clusterRoles)
	case "ClusterRoleBinding":
		return decodeInto(doc, &b.clusterBindings)
	case "Role":
		return decodeInto(doc, &b.roles)
	case "RoleBinding":
		return decodeInto(doc, &b.roleBindings)
	}
	return fmt.Errorf("kind %s has an apiVersion but no decoder", kind)
}

// decodeInto decodes doc strictly (unknown or duplicate fields are errors) and appends
// it to list.
func decodeInto[T any](doc []byte, list *[]T) error {
	var v T
	if err := yaml.UnmarshalStrict(doc, &v); err != nil {
		return fmt.Errorf("strict decoding: %w", err)
	}
	*list = append(*list, v)
	return nil
}
