// Command egress-router-agent runs in every pod of an HA egress router ("ha":
// {"enabled": true}): it competes for the router's Lease and holds the reserved
// addresses on net1 only while it holds the Lease, and is ready only then. See the
// README's "High availability" and package internal/agent.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/egress-router/egress-router/internal/agent"
	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/logging"
	"github.com/egress-router/egress-router/internal/monitor"
	"github.com/egress-router/egress-router/internal/nat"
	"github.com/egress-router/egress-router/internal/plan"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("egress-router-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "/etc/egress-router/config.json", "the router's configuration `file` (the proxies' document)")
	leaseName := fs.String("lease-name", "", "`name` of the router's Lease (required)")
	namespace := fs.String("lease-namespace", os.Getenv("POD_NAMESPACE"), "`namespace` of the Lease and the pod")
	identity := fs.String("identity", os.Getenv("POD_NAME"), "this pod's `name`, its identity in the election")
	ifName := fs.String("interface", "net1", "the `interface` the plugin created")
	listen := fs.String("metrics-listen", ":9091", "`address` of /metrics, /healthz and /readyz")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig `file` (default: the pod's service account)")
	timers := agent.DefaultTimers
	fs.DurationVar(&timers.LeaseDuration, "lease-duration", timers.LeaseDuration, "how long a standby waits after the last renewal it saw (whole seconds)")
	fs.DurationVar(&timers.RenewDeadline, "renew-deadline", timers.RenewDeadline, "how long the leader tries to renew before it gives the addresses up")
	fs.DurationVar(&timers.RetryPeriod, "retry-period", timers.RetryPeriod, "how often standbys poll the Lease (reads) and the leader considers renewing")
	fs.DurationVar(&timers.RenewInterval, "renew-interval", timers.RenewInterval, "the least time between two renewals the leader writes")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "egress-router-agent: unexpected arguments %q\n", fs.Args())
		return 2
	}
	for _, required := range []struct{ flag, value string }{
		{"-lease-name", *leaseName}, {"-lease-namespace (or POD_NAMESPACE)", *namespace}, {"-identity (or POD_NAME)", *identity},
	} {
		if required.value == "" {
			fmt.Fprintf(stderr, "egress-router-agent: %s is required\n", required.flag)
			return 2
		}
	}
	if err := serve(ctx, *configPath, *kubeconfig, *listen, agent.Options{
		LeaseName: *leaseName, Namespace: *namespace, Identity: *identity, Timers: timers,
	}, *ifName, stderr); err != nil {
		fmt.Fprintf(stderr, "egress-router-agent: %v\n", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, configPath, kubeconfig, listen string, o agent.Options, ifName string, stderr io.Writer) error {
	data, err := os.ReadFile(configPath)
	if err != nil {
		return fmt.Errorf("-config: %w", err)
	}
	c, err := config.Load(data)
	if err != nil {
		return fmt.Errorf("-config %s: %w", configPath, err)
	}
	if !c.HA.Enabled {
		return fmt.Errorf("-config %s: \"ha\": {\"enabled\": true} is not set, so the plugin holds the addresses itself and there is nothing to elect", configPath)
	}
	o.Reservation = plan.New(c, nat.Attachment{IfName: ifName}, "", nil).Activation
	o.Log = logging.New(stderr, c.LogLevel).With("lease", o.Namespace+"/"+o.LeaseName, "identity", o.Identity)
	klog.SetSlogLogger(o.Log.With("component", "client-go"))

	restConfig, err := clientConfig(kubeconfig)
	if err != nil {
		return err
	}
	// client-go's default client-side limit, 5 requests a second, is below a standby's
	// polls (a GET every 1 to 2.2 retry periods, 10 a second at most with 100 ms): it
	// delayed takeovers by 0.4 s. The elector's cadence bounds the agent's requests:
	// a GET per poll, and the leader's renewals and events.
	restConfig.QPS = float32(time.Second)/float32(o.Timers.RetryPeriod) + 2
	restConfig.Burst = 2 * int(restConfig.QPS)
	o.Client, err = kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("API client: %w", err)
	}
	registry := prometheus.NewRegistry()
	o.Registry = registry
	a, err := agent.New(o)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("-metrics-listen: %w", err)
	}
	mon := &monitor.Server{Registry: registry, Ready: a.Ready}
	monCtx, stopMon := context.WithCancel(context.Background())
	defer stopMon()
	go func() {
		if err := mon.Serve(monCtx, ln); err != nil {
			o.Log.Error("metrics server", "error", err)
		}
	}()
	o.Log.Info("starting", "addresses", fmt.Sprint(o.Reservation.Addresses), "interface", ifName,
		"leaseDuration", o.Timers.LeaseDuration.String(), "renewDeadline", o.Timers.RenewDeadline.String(), "retryPeriod", o.Timers.RetryPeriod.String())
	err = a.Run(ctx)
	o.Log.Info("stopped")
	return err
}

func clientConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		c, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("-kubeconfig %s: %w", kubeconfig, err)
		}
		return c, nil
	}
	c, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("no -kubeconfig and not in a cluster: %w", err)
	}
	return c, nil
}
