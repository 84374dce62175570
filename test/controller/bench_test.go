package controller_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/egress-router/egress-router/api/v1"
	"github.com/egress-router/egress-router/internal/render"
	"github.com/egress-router/egress-router/test/proxyproc"
	"github.com/egress-router/egress-router/test/topology"
)

// BenchmarkController runs the built controller against the shared API server and
// measures, on this machine (there is no peer to compare with: OpenShift's operator
// cannot run here):
//   - create -> every object applied: from creating one router to its Deployment (the
//     last object applied) reaching a watcher, over routers created one at a time;
//   - 200 routers created at once -> all reconciled (status written for generation 1);
//   - the controller's peak resident memory (VmHWM) over both.
func BenchmarkController(b *testing.B) {
	const sequential, burst = 100, 200
	c := newClient(b, adminConfig())
	bin := topology.Build(b, controllerPkg) + "/egress-router-controller"
	kubeconfig := writeFile(b, "kubeconfig", apiServer.KubeConfig)
	p := (&proxyproc.Process{}).Run(b, nil, bin, "-kubeconfig="+kubeconfig, "-leader-elect=false",
		"-health-probe-bind-address=0", "-metrics-bind-address=0", "-log-level=warning")
	for b.Loop() {
		ns := newNamespace(b, c)
		applied := watchDeployments(b, ns)
		var latencies []time.Duration
		for i := range sequential {
			name := fmt.Sprintf("seq-%d", i)
			start := time.Now()
			if err := c.Create(context.Background(), routerOf(ns, name, *redirectSpec.DeepCopy())); err != nil {
				b.Fatal(err)
			}
			select {
			case at := <-applied(render.Name(name)):
				latencies = append(latencies, at.Sub(start))
			case <-time.After(30 * time.Second):
				b.Fatalf("router %s: no Deployment after 30s\n%s", name, p.Logs.String())
			}
		}
		slices.Sort(latencies)
		p50, p99 := latencies[len(latencies)/2], latencies[len(latencies)*99/100]

		ns = newNamespace(b, c)
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, burst)
		for i := range burst {
			wg.Go(func() {
				spec := *redirectSpec.DeepCopy()
				spec.Addresses = []v1.EgressRouterAddress{{IP: fmt.Sprintf("192.0.2.%d/24", 2+i%250), Gateway: "192.0.2.1"}}
				errs <- c.Create(context.Background(), routerOf(ns, fmt.Sprintf("burst-%d", i), spec))
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		created := time.Since(start)
		reconciled := 0
		for deadline := time.Now().Add(5 * time.Minute); reconciled < burst; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d routers reconciled after 5 minutes", reconciled, burst)
			}
			var list v1.EgressRouterList
			if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
				b.Fatal(err)
			}
			reconciled = 0
			for _, r := range list.Items {
				if r.Status.ObservedGeneration == r.Generation && meta.FindStatusCondition(r.Status.Conditions, v1.ConditionDegraded) != nil {
					reconciled++
				}
			}
		}
		all := time.Since(start)
		peak := p.Memory(b, "VmHWM")

		b.ReportMetric(float64(p50.Microseconds())/1000, "create-to-applied-p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "create-to-applied-p99-ms")
		b.ReportMetric(all.Seconds(), "200-routers-reconciled-s")
		b.ReportMetric(float64(peak)/(1<<20), "controller-peak-MiB")
		fmt.Printf("create -> all objects applied, %d routers one at a time: p50 %v, p99 %v\n", sequential, p50.Round(time.Millisecond/10), p99.Round(time.Millisecond/10))
		fmt.Printf("%d routers created at once (in %v) -> all reconciled: %v\n", burst, created.Round(time.Millisecond), all.Round(time.Millisecond))
		fmt.Printf("controller peak resident memory (VmHWM) with %d routers: %.1f MiB\n", sequential+burst, float64(peak)/(1<<20))
	}
}

// watchDeployments watches the Deployments of namespace and returns, for a name, a
// channel that receives the time its Deployment was first seen.
func watchDeployments(b *testing.B, namespace string) func(name string) <-chan time.Time {
	wc, err := client.NewWithWatch(adminConfig(), client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	w, err := wc.Watch(context.Background(), &appsv1.DeploymentList{}, client.InNamespace(namespace))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.Stop)
	var mu sync.Mutex
	seen := map[string]chan time.Time{}
	channel := func(name string) chan time.Time {
		mu.Lock()
		defer mu.Unlock()
		if seen[name] == nil {
			seen[name] = make(chan time.Time, 1)
		}
		return seen[name]
	}
	go func() {
		for e := range w.ResultChan() {
			if d, ok := e.Object.(*appsv1.Deployment); ok && e.Type == watch.Added {
				channel(d.Name) <- time.Now()
			}
		}
	}()
	return func(name string) <-chan time.Time { return channel(name) }
}
