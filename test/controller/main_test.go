// Package controller_test runs egress-router-controller against a real API server
// (etcd and kube-apiserver started by controller-runtime's envtest, from
// scripts/envtest-assets.sh, see test/apiserver) and drives the configurations it renders through the
// plugin and the proxies in the namespace topology.
package controller_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/egress-router/egress-router/test/apiserver"
	"github.com/egress-router/egress-router/test/topology"
)

// The CRDs: the controller's own, as deployed, and Multus' NetworkAttachmentDefinition.
var (
	routerCRD = filepath.Join("..", "..", "deploy", "kubernetes", "controller", "crd")
	multusCRD = filepath.Join("testdata", "multus")
)

// apiServer is the API server every test shares, with both CRDs installed.
var apiServer *apiserver.Server

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	defer topology.RemoveBuilds()
	flag.Parse()
	if testing.Short() {
		// `make unit`: no API server (its first build takes minutes), no namespaces.
		fmt.Println("test/controller needs an API server: not run with -short")
		return 0
	}
	var err error
	if apiServer, err = apiserver.Start(routerCRD, multusCRD); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer apiServer.Stop()
	return m.Run()
}

// adminConfig is the shared API server's admin configuration.
func adminConfig() *rest.Config { return rest.CopyConfig(apiServer.Config) }
