package controller_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	v1 "github.com/egress-router/egress-router/api/v1"
	"github.com/egress-router/egress-router/internal/controller"
	"github.com/egress-router/egress-router/internal/render"
	"github.com/egress-router/egress-router/test/proxyproc"
	"github.com/egress-router/egress-router/test/topology"
)

// What the controller renders works: the network's configuration, attached through
// libcni in the namespace topology as Multus would attach it, and in the proxy modes
// the proxy started with the rendered container's arguments, carry a client's traffic
// to destinations that accept only the reserved address.
func TestRenderedRouterForwardsFromTheReservedAddress(t *testing.T) {
	topology.RequireRoot(t)
	plugins := topology.Build(t, topology.RouterPlugin)
	c := newClient(t, adminConfig())
	reserved := topology.Reserved.Addr().String()
	for _, tc := range []struct {
		name  string
		spec  v1.EgressRouterSpec
		proxy string // the proxy's package, "" in redirect mode
		check func(t *testing.T, tp *topology.Topology, pod string)
	}{
		{"redirect", redirectSpec, "", func(t *testing.T, tp *topology.Topology, pod string) {
			topology.ServeSource(t, tp.Dest, "tcp", 80)
			topology.ServeSource(t, tp.Dest, "udp", 53)
			for _, to := range []struct{ network, port string }{{"tcp", "80"}, {"tcp", "8080"}, {"udp", "53"}} {
				if got, err := topology.AskSource(tp.Client, to.network, net.JoinHostPort(pod, to.port)); err != nil || got != reserved {
					t.Errorf("%s %s through the router: the destination saw %q (%v), want %s", to.network, to.port, got, err, reserved)
				}
			}
		}},
		{"http-proxy", httpProxySpec, "proxies/egress-http-proxy", func(t *testing.T, tp *topology.Topology, pod string) {
			serveHTTPSource(t, tp)
			for url, want := range map[string]string{"http://203.0.113.25/": reserved, "http://203.0.113.66/": "403"} {
				if got, err := getThroughProxy(tp.Client, net.JoinHostPort(pod, "8080"), url); err != nil || !strings.HasPrefix(got, want) {
					t.Errorf("GET %s through the proxy: %q (%v), want %s", url, got, err, want)
				}
			}
		}},
		{"dns-proxy", dnsProxySpec, "proxies/egress-dns-proxy", func(t *testing.T, tp *topology.Topology, pod string) {
			topology.ServeSource(t, tp.Dest, "tcp", 80)
			for _, port := range []string{"80", "8443"} {
				if got, err := topology.AskSource(tp.Client, "tcp", net.JoinHostPort(pod, port)); err != nil || got != reserved {
					t.Errorf("tcp %s through the proxy: the destination saw %q (%v), want %s", port, got, err, reserved)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t, c)
			startController(t, adminConfig(), ns, &controller.Reconciler{})
			spec := tc.spec.DeepCopy()
			spec.NetworkInterface.Macvlan.Master = topology.Master
			router := routerOf(ns, "egress", *spec)
			if err := c.Create(context.Background(), router); err != nil {
				t.Fatal(err)
			}
			objects := checkOwnedObjects(t, c, router, render.Name("egress"))

			tp := topology.New(t)
			cni := tp.CNI(t, plugins)
			a := cni.Attach(t, tp.Pod, []byte(networkConfig(t, objects.network)), "net1")
			if _, err := cni.Add(a); err != nil {
				t.Fatalf("ADD of the rendered network: %v", err)
			}
			t.Cleanup(func() {
				if err := cni.Del(a); err != nil {
					t.Errorf("DEL: %v", err)
				}
			})
			if tc.proxy != "" {
				ctr := objects.deployment.Spec.Template.Spec.Containers[0]
				mounted := "-config=" + render.ConfigDir + "/" + render.ConfigKey
				conf := writeFile(t, render.ConfigKey, []byte(objects.configMap.Data[render.ConfigKey]))
				bin := topology.Build(t, "github.com/egress-router/egress-router/"+tc.proxy)
				p := (&proxyproc.Process{}).Run(t, tp.Pod.NS, bin+"/"+tc.proxy[strings.LastIndex(tc.proxy, "/")+1:], replaceArg(t, ctr.Args, mounted, "-config="+conf)...)
				// The rendered readiness probe: /readyz on the metrics port.
				ready := fmt.Sprintf("http://127.0.0.1:%d%s", render.MetricsPort, ctr.ReadinessProbe.HTTPGet.Path)
				eventually(t, 10*time.Second, ready, func() error {
					if err := p.Exited(); err != nil {
						t.Fatal(err)
					}
					_, err := getIn(tp.Pod.NS, "", ready)
					return err
				})
			}
			tc.check(t, tp, tp.Pod.Addr.Addr().String())
		})
	}
}

// serveHTTPSource answers HTTP requests on port 80 of the destination namespace with
// the source address the request came from.
func serveHTTPSource(t *testing.T, tp *topology.Topology) {
	ln := topology.Listen(t, tp.Dest, "tcp", ":80")
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintln(w, host)
	}))
}

// getThroughProxy fetches url from namespace n through the HTTP proxy at proxy and
// returns the body's first line, or the status code when it is not 200.
func getThroughProxy(n ns.NetNS, proxy, url string) (string, error) {
	return getIn(n, proxy, url)
}

// getIn fetches url with sockets made in namespace n, through proxy unless it is "",
// and returns the body, or the status code when it is not 200.
func getIn(n ns.NetNS, proxy, target string) (string, error) {
	transport := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = n.Do(func(ns.NetNS) error {
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}}
	if proxy != "" {
		transport.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: proxy})
	}
	client := http.Client{Timeout: 5 * time.Second, Transport: transport}
	resp, err := client.Get(target)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprint(resp.StatusCode), nil
	}
	body, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(body)), err
}
