// Package ha_test runs egress-router-agent against a real API server (etcd and
// kube-apiserver, test/apiserver) in the namespace topology: two router pods whose
// net1 sit on two nodes of one segment with the gateway, one agent each, and a client
// that keeps connecting through whichever pod is ready. It forces failovers and pins
// what the README's "High availability" promises.
package ha_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/egress-router/egress-router/test/apiserver"
	"github.com/egress-router/egress-router/test/topology"
)

// apiServer is the API server every test shares.
var apiServer *apiserver.Server

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("test/ha needs an API server and network namespaces: not run with -short")
		return
	}
	var err error
	if apiServer, err = apiserver.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := topology.Run(m)
	apiServer.Stop()
	os.Exit(code)
}
